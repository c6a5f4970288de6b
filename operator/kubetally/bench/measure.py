"""Timing and memory: medians and p95 of repeated runs, peak RSS of a process, samples read per query,
and Prometheus' own evaluation time of each query.

Formulas: the median of n sorted durations d₀ ≤ … ≤ dₙ₋₁ is statistics.median; p95 is the
nearest-rank percentile d[⌈0.95·n⌉ − 1] (with 20 runs, the 19th fastest). Peak RSS is the kernel's
`VmHWM` (high-water mark of resident memory, kB → MiB), so it covers the whole life of the process
unless `reset_peak_rss` lowered it to the current RSS (Linux ≥ 4.0: `5` into /proc/<pid>/clear_refs).
Prometheus' own time for a query is `data.stats.timings.evalTotalTime` (seconds) of its answer
to `stats=all`; `execTotalTime` adds the queue wait, preparation and result sort.
"""

from __future__ import annotations

import json
import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from kubetally.sources.prometheus import PrometheusClient, RangeSeries


@dataclass(frozen=True, slots=True)
class Timing:
    """Durations of repeated runs, in seconds."""

    seconds: tuple[float, ...]

    @property
    def median(self) -> float:
        return statistics.median(self.seconds)

    @property
    def p95(self) -> float:
        ordered = sorted(self.seconds)
        return ordered[math.ceil(0.95 * len(ordered)) - 1]


def timed(run: Callable[[], object], runs: int) -> Timing:
    """Run `run` `runs` times; their wall-clock durations."""
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        run()
        durations.append(time.perf_counter() - started)
    return Timing(tuple(durations))


async def timed_async(run: Callable[[], Awaitable[object]], runs: int) -> Timing:
    durations = []
    for _ in range(runs):
        started = time.perf_counter()
        await run()
        durations.append(time.perf_counter() - started)
    return Timing(tuple(durations))


def _status_kib(pid: int | str, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return float(line.split()[1])
    raise RuntimeError(f"/proc/{pid}/status has no {key}")


def peak_rss_mib(pid: int | str = "self") -> float:
    """The peak resident set size of process `pid` so far, in MiB (VmHWM)."""
    return _status_kib(pid, "VmHWM") / 1024


def reset_peak_rss(pid: int | str = "self") -> bool:
    """Lower the VmHWM of `pid` to its current RSS, so that a later `peak_rss_mib` covers only what
    came after; False when the kernel refuses (then VmHWM keeps the whole life of the process)."""
    try:
        Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


_TIMINGS_KEY = b'"timings":'


def stats_timings(body: bytes) -> tuple[float, float] | None:
    """(evalTotalTime, execTotalTime) in seconds from a Prometheus answer to `stats=all`, or None.

    Prometheus writes `stats` after `result`, so the object is found from the end (`rfind`) without
    decoding the (large) result; inside a JSON string a quote is escaped, so the bare key `"timings":`
    cannot come from a label value."""
    at = body.rfind(_TIMINGS_KEY)
    if at < 0:
        return None
    try:
        timings, _ = json.JSONDecoder().raw_decode(body[at + len(_TIMINGS_KEY):].decode("utf-8").lstrip())
        return float(timings["evalTotalTime"]), float(timings["execTotalTime"])
    except (ValueError, KeyError, TypeError):
        return None


@dataclass(slots=True)
class EvalTimes:
    """Prometheus' own timings of the range queries it answered, in seconds; `missing` counts answers
    without them (a server that ignores `stats=all`)."""

    eval_seconds: list[float] = field(default_factory=list)
    exec_seconds: list[float] = field(default_factory=list)
    missing: int = 0

    def record(self, body: bytes) -> None:
        found = stats_timings(body)
        if found is None:
            self.missing += 1
            return
        self.eval_seconds.append(found[0])
        self.exec_seconds.append(found[1])


class TimingTransport(httpx.AsyncBaseTransport):
    """An httpx transport that hands every `/api/v1/query_range` answer to `times.record`.

    It sits under the real `PrometheusClient`, so the ingest sends exactly its own queries and the
    timings are those of the very evaluations it waited for (no second query). It asks for an
    uncompressed body (`Accept-Encoding: identity`, on loopback) so the bytes it reads are the JSON."""

    def __init__(self, times: EvalTimes, inner: httpx.AsyncBaseTransport | None = None) -> None:
        self.times = times
        self._inner = inner if inner is not None else httpx.AsyncHTTPTransport()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        ranged = request.url.path.endswith("/api/v1/query_range")
        if ranged:
            request.headers["Accept-Encoding"] = "identity"
        response = await self._inner.handle_async_request(request)
        if not ranged:
            return response
        try:
            body = b"".join([chunk async for chunk in response.aiter_raw()])
        finally:
            await response.aclose()
        if 200 <= response.status_code < 300:
            self.times.record(body)
        return httpx.Response(response.status_code, headers=response.headers, stream=httpx.ByteStream(body),
                              extensions=response.extensions)

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass(slots=True)
class CountingSource:
    """A RangeSource that asks Prometheus for `stats=all` and keeps the most samples one query read;
    `timings` holds Prometheus' own evaluation times when the client sends through a `TimingTransport`."""

    client: PrometheusClient
    queries: int = 0
    peak_samples: int = 0
    per_query: list[int] = field(default_factory=list)
    timings: EvalTimes = field(default_factory=EvalTimes)
    wall_seconds: float = 0.0

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        series, samples = await self.client.query_range_stats(query, start, end, step)
        self.queries += 1
        if samples is not None:
            self.per_query.append(samples)
            self.peak_samples = max(self.peak_samples, samples)
        return series
