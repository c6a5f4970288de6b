"""Hung and dead store drills (issue 12, bug 5): a real Prometheus stopped with SIGSTOP, or killed
and restarted, under a real `kubetally serve`, whose clock starts at the unaligned 02:59:07.

The cluster is the tiny preset over 5 hours without its gap (T = 2026-01-01T00:00Z .. T+5h), so every
hour has coverage 1 while the store answers. Timeline of one drill:

1. Prometheus and `kubetally serve --now T+02:59:07` start; serve backfills h0 and h1 (2 ledger hours).
2. The store is stopped (SIGSTOP: it accepts connections and never answers) or killed (SIGKILL:
   connection refused). At once and every second while it is out: /healthz and /readyz must answer
   within 1 s, `/v2/cost?window=2h` and `window=today` within 5 s with status 200, coverage < 1, a
   warning naming the missing live parts, and exactly the ledger's hours: the plain-Python oracle
   (tests/reference.py) on the generator's facts of h0 and h1 (those inside the window).
3. The serve clock passes 03:00: h2 closes while the store is out; serve's ingest loop (here every
   10 s, `--ingest-interval`) tries it at least once, and it stays missing from the ledger.
4. The store resumes (SIGCONT) or restarts on the same port: /readyz says "ok" again, the ingest loop
   backfills h2 (3 ledger hours), and the same queries answer coverage 1 and the oracle on every
   piece of the window: the ledger hours and the live edges' exact facts.

Both drills run at once, each with its own Prometheus and serve, so the suite waits for one clock
crossing (~1.5 min) rather than two. The measured latencies are printed (run with -s to see them)
and asserted against the bounds.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import statistics
import subprocess
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetally import localprom
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.prices import PriceBook, PriceVersion
from kubetally.domain.window import Window
from kubetally.engine.query import CostQuery
from kubetally.processes import free_port
from kubetally.synthetic import Cluster, expected_facts, generate, presets
from tests.reference import reference_costs
from tests.support.serve import running_serve
from tests.support.weights import WEIGHTS_YAML

pytestmark = pytest.mark.integration
HOUR = 3600
#: The serve clock at start: 02:59:07, 53 s before h2 closes.
CLOCK_OFFSET = 2 * HOUR + 59 * 60 + 7
HEALTH_BOUND, QUERY_BOUND = 1.0, 5.0
#: serve's --ingest-interval here (seconds), so that its loop tries h2 while the store is out.
INGEST_INTERVAL = 10
BOOK = PriceBook(versions=(PriceVersion(
    currency="CNY", cpu_core_hour=Decimal("0.031611"), memory_gib_hour=Decimal("0.004237"),
    storage_gib_hour=Decimal("0.0000548"), weights=(Decimal("0.7"), Decimal("0.3"))),))  # = WEIGHTS_YAML


@dataclass
class Figures:
    """Latencies (s) measured during one drill."""

    healthz: list[float] = field(default_factory=list)
    readyz: list[float] = field(default_factory=list)
    cost: list[float] = field(default_factory=list)
    cost_after: list[float] = field(default_factory=list)  # /v2/cost once the store is back
    known_down_after: float = 0.0  # from the outage to /readyz saying "degraded"
    backfilled_after: float = 0.0  # from the store's return to the gap hour in the ledger

    def summary(self, kind: str) -> str:
        def stats(values: list[float]) -> str:
            return f"n={len(values)} median {statistics.median(values):.3f} s max {max(values):.3f} s"

        return (f"{kind} drill: /healthz {stats(self.healthz)}; /readyz {stats(self.readyz)}; "
                f"/v2/cost {stats(self.cost)}; /readyz degraded after {self.known_down_after:.1f} s; "
                f"gap hour backfilled {self.backfilled_after:.1f} s after the store returned; "
                f"/v2/cost afterwards {stats(self.cost_after)}")


@pytest.fixture(scope="module")
def blocks(tmp_path_factory: pytest.TempPathFactory) -> tuple[Cluster, Path]:
    """The tiny cluster over 5 hours without gaps, as TSDB blocks (copied per drill)."""
    if not localprom.binaries_present():
        pytest.fail("prometheus and promtool are missing: run scripts/test.sh, which installs them")
    cluster = generate(replace(presets.tiny(), hours=5, gaps=()))
    data = tmp_path_factory.mktemp("drill-blocks") / "data"
    localprom.load_cluster(cluster, data)
    return cluster, data


def reference(cluster: Cluster, start: int, end: int, pieces: list[tuple[int, int]]) -> dict[str, float]:
    """Cost per namespace (and `__idle__`) of /v2/cost `aggregate=namespace` over [start, end), from
    the generator's exact facts of `pieces` only (what the answer may hold), by the plain oracle."""
    parts = [expected_facts(cluster, a, b) for a, b in pieces]
    query = CostQuery(window=Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)),
                      aggregate=parse_aggregate("namespace"))
    rows = reference_costs([c for p in parts for c in p.containers], [n for p in parts for n in p.nodes], BOOK, query)
    return {row["key"][0] if row["kind"] == "workload" else "__idle__": row["cost"] for row in rows}


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def hours_touched(start: int, end: int) -> list[int]:
    return sorted({t - t % HOUR for t in range(start, end, 60)})


def timed(client: httpx.Client, path: str, **params: str) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = client.get(path, params=params)
    return response, time.monotonic() - started


def ledger_hours(client: httpx.Client, cluster: str) -> int:
    found = re.search(rf'kubetally_ledger_hours\{{cluster="{cluster}"\}} (\d+)', client.get("/metrics").text)
    return int(float(found.group(1))) if found else 0


def check_degraded(cluster: Cluster, body: dict[str, Any], ledger: set[int]) -> int:
    """A degraded answer holds exactly the ledger hours inside its window; returns the window end."""
    start, end = epoch(body["window"]["start"]), epoch(body["window"]["end"])
    inside = [(h, h + HOUR) for h in sorted(ledger) if start <= h and h + HOUR <= end]
    costs = {name: row["cost"] for name, row in body["data"][0].items()}
    assert costs == pytest.approx(reference(cluster, start, end, inside), rel=1e-9), body["window"]
    assert body["coverage"] == pytest.approx(len(inside) / len(hours_touched(start, end)), rel=1e-9)
    assert body["coverage"] < 1
    assert any("count with coverage 0" in w or "counts with coverage 0" in w for w in body["warnings"]), body
    return end


def check_complete(cluster: Cluster, body: dict[str, Any]) -> None:
    """A complete answer: coverage 1 and the oracle on the window cut at hour boundaries."""
    start, end = epoch(body["window"]["start"]), epoch(body["window"]["end"])
    pieces = [(max(start, h), min(end, h + HOUR)) for h in hours_touched(start, end)]
    costs = {name: row["cost"] for name, row in body["data"][0].items()}
    assert costs == pytest.approx(reference(cluster, start, end, pieces), rel=1e-9), body["window"]
    assert body["coverage"] == 1.0
    assert not [w for w in body["warnings"] if "coverage" in w], body["warnings"]


def until(condition: Callable[[], bool], what: str, timeout: float, step: float = 0.5) -> float:
    """Poll `condition` until true; return the seconds it took (fail after `timeout`)."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > timeout:
            pytest.fail(f"{what} did not happen within {timeout:.0f} s")
        time.sleep(step)
    return time.monotonic() - started


def probe_all(client: httpx.Client, cluster: Cluster, figures: Figures, ledger: set[int]) -> int:
    """One round during the outage: health, readiness, window=2h and window=today; returns the
    serve clock's minute (the end of `today`)."""
    for path, sink in (("/healthz", figures.healthz), ("/readyz", figures.readyz)):
        response, seconds = timed(client, path)
        assert response.status_code == 200, response.text
        assert seconds < HEALTH_BOUND, f"{path} took {seconds:.3f} s"
        sink.append(seconds)
    end = 0
    for window in ("2h", "today"):
        response, seconds = timed(client, "/v2/cost", window=window, aggregate="namespace")
        assert seconds < QUERY_BOUND, f"window={window} took {seconds:.3f} s"
        figures.cost.append(seconds)
        body = response.json()
        if response.status_code == 503:  # window=2h with no whole ledger hour left in it: nothing to say
            assert window == "2h", body
            assert "the ledger holds no complete hour" in body["message"], body
            continue
        assert response.status_code == 200, body
        end = max(end, check_degraded(cluster, body, ledger))
    return end


def resume(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)


def drill(kind: str, cluster: Cluster, blocks: Path, workdir: Path) -> Figures:
    """One drill (see the module docstring); `kind` is "sigstop" or "kill"."""
    workdir.mkdir()
    data = workdir / "prometheus"
    shutil.copytree(blocks, data)  # Prometheus writes into its data folder: a private copy
    spec = cluster.spec
    h0, h1, h2 = spec.start, spec.start + HOUR, spec.start + 2 * HOUR
    port = free_port()
    figures = Figures()
    with ExitStack() as stack:
        url, process = stack.enter_context(localprom.prometheus_process(data, port=port, log_dir=workdir))
        stack.callback(resume, process)  # never leave it stopped, whatever happens
        serve_url = stack.enter_context(running_serve(
            url, workdir, now=spec.start + CLOCK_OFFSET, weights=WEIGHTS_YAML, cluster=spec.name, hours=2,
            extra_args=("--ingest-interval", str(INGEST_INTERVAL))))
        client = stack.enter_context(httpx.Client(base_url=serve_url, timeout=30.0))
        assert ledger_hours(client, spec.name) == 2, f"{kind}: h2 was ingested before the drill could stop the store"

        outage = time.monotonic()
        if kind == "sigstop":
            os.kill(process.pid, signal.SIGSTOP)
        else:
            process.kill()
            process.wait()
        clock_minute = probe_all(client, cluster, figures, {h0, h1})
        until(lambda: client.get("/readyz").text.startswith("degraded: "), f"{kind}: /readyz saying degraded", 15)
        figures.known_down_after = time.monotonic() - outage
        assert "kubetally_store_up 0.0" in client.get("/metrics").text
        while clock_minute < h2 + HOUR:  # until the serve clock reads 03:00: h2 closed while the store is out
            assert time.monotonic() - outage < 150, f"{kind}: the serve clock did not reach 03:00"
            clock_minute = max(clock_minute, probe_all(client, cluster, figures, {h0, h1}))
            time.sleep(0.5)
        crossed = time.monotonic()
        while time.monotonic() - crossed < INGEST_INTERVAL + 2:  # the ingest loop ticks at least once meanwhile
            probe_all(client, cluster, figures, {h0, h1})
            time.sleep(0.5)
        assert ledger_hours(client, spec.name) == 2, f"{kind}: h2 must be missing while the store is out"
        if kind == "kill":
            log = next(workdir.glob("serve-*.log")).read_text()
            assert "ingest failed, retrying when the store answers again" in log

        back = time.monotonic()
        if kind == "sigstop":
            os.kill(process.pid, signal.SIGCONT)
        else:
            restart_logs = workdir / "restart"
            restart_logs.mkdir()
            stack.enter_context(localprom.prometheus_process(data, port=port, log_dir=restart_logs))
        until(lambda: client.get("/readyz").text == "ok", f"{kind}: /readyz saying ok", 30)
        until(lambda: ledger_hours(client, spec.name) == 3, f"{kind}: the backfill of h2", 90)
        figures.backfilled_after = time.monotonic() - back
        for window in ("2h", "today"):
            response, seconds = timed(client, "/v2/cost", window=window, aggregate="namespace")
            assert response.status_code == 200, response.text
            figures.cost_after.append(seconds)
            check_complete(cluster, response.json())
    return figures


def test_hung_and_dead_store_drills(blocks: tuple[Cluster, Path], tmp_path: Path) -> None:
    """Both drills at once (each has its own Prometheus and serve), so they cost one clock crossing."""
    cluster, data = blocks
    with ThreadPoolExecutor(max_workers=2) as pool:
        futures = {kind: pool.submit(drill, kind, cluster, data, tmp_path / kind) for kind in ("sigstop", "kill")}
        results = {kind: future.result() for kind, future in futures.items()}
    for kind, figures in results.items():
        print(figures.summary(kind))
        assert max(figures.healthz + figures.readyz) < HEALTH_BOUND
        assert max(figures.cost) < QUERY_BOUND
