"""The measurements of `kubetally bench`, each returning `Figure`s (value, target, met or not).

Every HTTP figure is taken against a real `kubetally serve` child process (`_Serve`), so it includes
routing, parsing, the engine, JSON encoding and the socket. Serve processes run with
`--backfill-days 0`, so they never ingest while being measured, and `--now` at the end of the
generated data, so `window=30d` means exactly the generated month.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from kubetally import ingest
from kubetally.bench.measure import CountingSource, EvalTimes, Timing, TimingTransport, timed, timed_async
from kubetally.ledger.store import DuckDBLedger
from kubetally.localprom import source_config
from kubetally.processes import background, free_port, wait_ready
from kubetally.reports import compute_report
from kubetally.service import CostService
from kubetally.sources.prometheus import PrometheusClient, RangeSeries
from kubetally.synthetic import ClusterSpec

ALAUDA = "/platform/cost.alauda.io/v1beta1/costs/usage"


@dataclass(frozen=True, slots=True)
class Figure:
    """One row of bench/RESULTS.md."""

    scale: str
    what: str
    value: str
    target: str = ""
    met: bool | None = None


def seconds(timing: Timing, *, p95: bool = False) -> str:
    text = f"median {timing.median:.3f} s"
    return text + f", p95 {timing.p95:.3f} s (n={len(timing.seconds)})" if p95 else text + f" (n={len(timing.seconds)})"


class NoSource:
    """A RangeSource for a ledger that holds the whole window: any live query is a bench bug."""

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[RangeSeries]:
        raise RuntimeError(f"the bench ledger lacks part of the window: live query over [{start}, {end})")


@dataclass(slots=True)
class _Serve:
    url: str
    pid: int


#: The DuckDB memory cap of the benchmarked `kubetally serve` (bigger work spills to disk).
SERVE_MEMORY_LIMIT = "1GB"
#: Its live budget: "recomputed from Prometheus per request" collects a whole week live (~80 s at M);
#: the default 3 s would answer it from the (empty) ledger with coverage 0 instead.
LIVE_BUDGET = "3600"


@contextmanager
def serving(ledger: Path, spec: ClusterSpec, prometheus: str, workdir: Path) -> Iterator[_Serve]:
    """`kubetally serve` on `ledger`, replaying to the end of `spec`, never ingesting."""
    port = free_port()
    command = [sys.executable, "-m", "kubetally", "serve", "--prometheus-url", prometheus, "--ledger", str(ledger),
               "--port", str(port), "--host", "127.0.0.1", "--cluster", spec.name,
               "--resolution", str(spec.scrape_seconds), "--backfill-days", "0", "--now", str(spec.end),
               "--memory-limit", SERVE_MEMORY_LIMIT, "--live-budget", LIVE_BUDGET]
    url = f"http://127.0.0.1:{port}"
    log_path = workdir / f"serve-{port}.log"
    with background(command, log_path) as process:
        wait_ready(process, lambda: httpx.get(f"{url}/healthz", timeout=2.0).status_code == 200,
                   what="kubetally serve", log_path=log_path, timeout=120)
        yield _Serve(url=url, pid=process.pid)


def _get(client: httpx.Client, path: str, params: dict[str, str], expect: int = 200) -> httpx.Response:
    """One GET, its body read in full; a status other than `expect` fails the bench."""
    response = client.get(path, params=params)
    if response.status_code != expect:
        raise RuntimeError(f"GET {path} {params} answered {response.status_code}: {response.text[:300]}")
    return response


def total_cost(body: dict[str, Any]) -> float:
    return sum(float(item["cost"]) for step in body["data"] for item in step.values())


def floor_query(ledger: DuckDBLedger, spec: ClusterSpec, runs: int) -> Timing:
    """The floor: one bare DuckDB query over the same container rows, grouped by day and namespace.

    cost per row = effective core·s / 3600 × 0.031611 + effective byte·s / 3600 / 2³⁰ × 0.004237
    (OpenCost's default unit prices): a price-and-sum with none of the engine's node pricing, idle,
    sharing or JSON, i.e. the least any answer over these rows can cost."""
    sql = ("SELECT namespace, (segment_start // 86400) AS day, "
           "sum(cpu_effective_core_seconds / 3600 * 0.031611 + memory_effective_byte_seconds / 3600 / 1073741824 "
           "* 0.004237) AS cost FROM container_facts WHERE segment_start >= ? AND segment_end <= ? GROUP BY ALL")
    cursor = ledger._con.cursor()
    try:
        return timed(lambda: cursor.execute(sql, [spec.end - 30 * 86400, spec.end]).fetchall(), runs)
    finally:
        cursor.close()


def report_timing(ledger: DuckDBLedger, spec: ClusterSpec, runs: int) -> Timing:
    """A CostReport status computation (30d, per day, by namespace, idle shown) on the ledger."""
    service = CostService(ledger, NoSource(), source_config(spec), clock=lambda: spec.end)
    body = {"window": "30d", "step": "1d", "aggregate": ["namespace"], "method": "Effective", "topN": 50}

    async def once() -> object:
        return await compute_report(service, body, namespace="bench", name="namespaces-30d", generation=1,
                                    now=datetime.fromtimestamp(spec.end, UTC), project=None, isolated=False)

    async def all_runs() -> Timing:
        return await timed_async(once, runs)

    return asyncio.run(all_runs())


def http_timing(serve: _Serve, path: str, params: dict[str, str], runs: int,
                *, warm_up: bool = True, expect: int = 200) -> tuple[Timing, dict[str, Any]]:
    """Time `runs` GETs answering `expect`, from sending the request to the last byte of the body
    (after one warm-up, unless the figure is minutes long); returns the last body, decoded after
    the timing (decoding 7 MB of JSON in the client is not the server's latency)."""
    responses: list[httpx.Response] = []
    with httpx.Client(base_url=serve.url, timeout=1800.0) as client:
        if warm_up:
            _get(client, path, params, expect)
        timing = timed(lambda: responses.append(_get(client, path, params, expect)), runs)
    body: dict[str, Any] = responses[-1].json()
    return timing, body


def ingest_subprocess(prometheus: str, ledger: Path, spec: ClusterSpec, start: int, end: int) -> tuple[float, float]:
    """`kubetally ingest` of [start, end) into `ledger`: (wall seconds, the process's peak RSS in MiB)."""
    command = [sys.executable, "-m", "kubetally", "ingest", "--prometheus-url", prometheus, "--ledger", str(ledger),
               "--start", str(start), "--end", str(end), "--cluster", spec.name,
               "--resolution", str(spec.scrape_seconds)]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise RuntimeError(f"kubetally ingest failed: {result.stderr[-2000:]}")
    found = re.search(r"peak RSS (\d+) MiB", result.stdout)
    if found is None:
        raise RuntimeError(f"kubetally ingest printed no peak RSS: {result.stdout[-500:]}")
    return elapsed, float(found.group(1))


def rollups_subprocess(ledger: Path) -> tuple[float, float, int]:
    """`kubetally rollups --rebuild` on `ledger`: (wall seconds, peak RSS in MiB, hour-builds)."""
    command = [sys.executable, "-m", "kubetally", "rollups", "--ledger", str(ledger), "--rebuild"]
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, check=False, timeout=3600)
    elapsed = time.perf_counter() - started
    found = re.search(r"stored (\d+) hour-builds .* peak RSS (\d+) MiB", result.stdout)
    if result.returncode != 0 or found is None:
        raise RuntimeError(f"kubetally rollups failed: {result.stdout[-500:]} {result.stderr[-2000:]}")
    return elapsed, float(found.group(2)), int(found.group(1))


def counted_ingest(prometheus: str, ledger_path: Path, spec: ClusterSpec, start: int, end: int) -> CountingSource:
    """Ingest [start, end) in-process through a CountingSource: how many samples each query read,
    Prometheus' own evaluation time of each (`TimingTransport`), and the ingest's wall time."""

    async def run() -> CountingSource:
        times = EvalTimes()
        async with PrometheusClient(prometheus, transport=TimingTransport(times)) as client:
            source = CountingSource(client, timings=times)
            ledger = DuckDBLedger(ledger_path)
            started = time.perf_counter()
            try:
                await ingest.ingest_range(source, ledger, source_config(spec), start, end, now=end)
            finally:
                ledger.close()
            source.wall_seconds = time.perf_counter() - started
            return source

    return asyncio.run(run())

