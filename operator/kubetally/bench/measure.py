"""Timing and memory: medians and p95 of repeated runs, peak RSS of a process, samples read per query.

Formulas: the median of n sorted durations d₀ ≤ … ≤ dₙ₋₁ is statistics.median; p95 is the
nearest-rank percentile d[⌈0.95·n⌉ − 1] (with 20 runs, the 19th fastest). Peak RSS is the kernel's
`VmHWM` (high-water mark of resident memory, kB → MiB), so it covers the whole life of the process.
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

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


@dataclass(slots=True)
class CountingSource:
    """A RangeSource that asks Prometheus for `stats=all` and keeps the most samples one query read."""

    client: PrometheusClient
    queries: int = 0
    peak_samples: int = 0
    per_query: list[int] = field(default_factory=list)

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        series, samples = await self.client.query_range_stats(query, start, end, step)
        self.queries += 1
        if samples is not None:
            self.per_query.append(samples)
            self.peak_samples = max(self.peak_samples, samples)
        return series
