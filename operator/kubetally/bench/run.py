"""`kubetally bench`: run the scales in order and write the table (see `kubetally.bench`).

Order matters for memory figures: each serve and ingest runs as its own child process and reports
its own peak RSS, so the bench process's own memory (the generated clusters) never counts.
"""

from __future__ import annotations

import os
import platform
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from kubetally import localprom
from kubetally.bench import scenarios
from kubetally.bench.ledgers import generated_ledger
from kubetally.bench.measure import Timing, peak_rss_mib
from kubetally.bench.profile import profile_slowest
from kubetally.bench.scenarios import ALAUDA, Figure, seconds
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import generate, presets

Log = Callable[[str], None]
SCALES = ("L", "L-ingest", "M")
#: The generated month, written out: `window=30d` would follow the replay clock, which runs on.
MONTH = "2026-01-01T00:00:00Z,2026-01-31T00:00:00Z"


@dataclass(frozen=True, slots=True)
class BenchOptions:
    cache: Path
    output: Path
    runs: int = 20
    scales: tuple[str, ...] = SCALES


def _machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem_kib = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                       if line.startswith("MemTotal"))
    except (OSError, StopIteration, ValueError):
        mem_kib = 0
    import duckdb

    return (f"{os.cpu_count()} cores ({cpu}), {mem_kib / 2**20:.0f} GiB RAM, {platform.system()} {platform.release()}, "
            f"Python {platform.python_version()}, DuckDB {duckdb.__version__}, Prometheus 2.42 (Debian)")


def scale_l(options: BenchOptions, workdir: Path, log: Log) -> list[Figure]:
    spec = presets.large()
    log("==> scale L: the generated 30-day ledger")
    ledger_path = generated_ledger(generate(spec), options.cache, log=log)
    log("==> scale L: kubetally rollups --rebuild (every hour, both maintained methods)")
    built_in, built_rss, builds = scenarios.rollups_subprocess(ledger_path)
    size = ledger_path.stat().st_size / 2**20
    ledger = DuckDBLedger(ledger_path)
    try:
        rows = ledger._con.execute("SELECT count(*) FROM container_facts").fetchone()
        log("==> scale L: bare DuckDB floor and CostReport computation")
        floor = scenarios.floor_query(ledger, spec, options.runs)
        report = scenarios.report_timing(ledger, spec, max(3, options.runs // 4))
    finally:
        ledger.close()
    count = rows[0] if rows else 0
    figures = [Figure("L", "ledger: container-hour rows; file size with rollups", f"{count:,} rows, {size:.0f} MiB"),
               Figure("L", f"rollups: {builds} hour-builds (720 h × Request, Effective), `kubetally rollups`",
                      f"{built_in:.1f} s, peak RSS {built_rss:.0f} MiB"),
               Figure("L", "floor: one bare DuckDB query, 30d by day × namespace", seconds(floor, p95=True)),
               Figure("L", "CostReport status: 30d, step 1d, by namespace (in-process)", seconds(report))]
    log("==> scale L: kubetally serve over HTTP")
    with scenarios.serving(ledger_path, spec, "http://127.0.0.1:9", workdir) as serve:
        namespace, body = scenarios.http_timing(
            serve, "/v2/cost", {"window": MONTH, "step": "1d", "aggregate": "namespace"}, options.runs)
        daily, _ = scenarios.http_timing(
            serve, "/v2/cost", {"window": MONTH, "step": "1d", "aggregate": "controller"}, max(3, options.runs // 4))
        hourly, refusal = scenarios.http_timing(
            serve, "/v2/cost", {"window": MONTH, "step": "1h", "aggregate": "controller"}, 3, expect=400)
        alauda, _ = scenarios.http_timing(
            serve, ALAUDA, {"start": "2026-01-01", "end": "2026-01-30", "kind": "namespace_all", "step": "day",
                            "pageSize": "1000"}, options.runs)
        rss = peak_rss_mib(serve.pid)
    ratio = namespace.median / floor.median
    figures += [
        Figure("L", "/v2/cost window=30d step=1d aggregate=namespace", seconds(namespace, p95=True),
               "p95 < 1 s", namespace.p95 < 1.0),
        Figure("L", "… versus the bare DuckDB floor (median / median)", f"{ratio:.1f}×", "≤ 3×", ratio <= 3.0),
        Figure("L", "/v2/cost window=30d step=1d aggregate=controller", seconds(daily, p95=True)),
        Figure("L", "/v2/cost window=30d step=1h aggregate=controller: refused with 400 "
                    f"({str(refusal.get('message', ''))[:60]}…)", seconds(hourly, p95=True)),
        Figure("L", "Alauda kind=namespace_all step=day, 2026-01-01..30", seconds(alauda, p95=True)),
        Figure("L", "serving process peak RSS (VmHWM) over all the above", f"{rss:.0f} MiB"),
        Figure("L", "sanity: 30d/1d/namespace total cost (default prices)", f"{scenarios.total_cost(body):,.2f}"),
    ]
    return figures


def scale_l_ingest(options: BenchOptions, workdir: Path, log: Log) -> list[Figure]:
    spec = presets.large()
    hour = spec.start + 14 * 86400 + 12 * 3600  # day 15, noon
    log("==> scale L: one hour of 60 s samples in a real Prometheus")
    blocks = localprom.cached_blocks(spec, options.cache, log=log, window=(hour, hour + 3600))
    durations, peaks = [], []
    with localprom.serving_copy(blocks, workdir) as url:
        for run in range(3):
            target = workdir / f"l-hour-{run}.duckdb"
            elapsed, rss = scenarios.ingest_subprocess(url, target, spec, hour, hour + 3600)
            durations.append(elapsed)
            peaks.append(rss)
        counted = scenarios.counted_ingest(url, workdir / "l-hour-counted.duckdb", spec, hour, hour + 3600)
    timing = Timing(tuple(durations))
    return [
        Figure("L", "ingest of one hour (`kubetally ingest`, process start to exit)", seconds(timing),
               "< 15 s", timing.median < 15.0),
        Figure("L", "… largest query, samples read (Prometheus stats)", f"{counted.peak_samples:,} "
               f"({counted.queries} queries)", "≤ 5,000,000", counted.peak_samples <= 5_000_000),
        Figure("L", "… ingest process peak RSS", f"{max(peaks):.0f} MiB", "< 512 MiB", max(peaks) < 512),
    ]


def scale_m(options: BenchOptions, workdir: Path, log: Log) -> list[Figure]:
    spec = presets.medium()
    log("==> scale M: 7 days of 300 s samples in a real Prometheus")
    blocks = localprom.cached_blocks(spec, options.cache, log=log)
    figures: list[Figure] = []
    ledger_path, empty_path = workdir / "m.duckdb", workdir / "m-empty.duckdb"
    with localprom.serving_copy(blocks, workdir) as url:
        log("==> scale M: cold backfill of the 7 days")
        started = time.perf_counter()
        counted = scenarios.counted_ingest(url, ledger_path, spec, spec.start, spec.end)
        backfill = time.perf_counter() - started
        figures += [
            Figure("M", "cold backfill of 7 days (168 hours) into an empty ledger", f"{backfill:.1f} s"),
            Figure("M", "… largest query, samples read", f"{counted.peak_samples:,} ({counted.queries} queries)",
                   "≤ 5,000,000", counted.peak_samples <= 5_000_000),
        ]
        DuckDBLedger(empty_path).close()
        params = {"window": "2026-01-01T00:00:00Z,2026-01-08T00:00:00Z", "step": "1d", "aggregate": "namespace"}
        log("==> scale M: /v2/cost from the ledger, then recomputed from Prometheus per request")
        with scenarios.serving(ledger_path, spec, url, workdir) as serve:
            stored, stored_body = scenarios.http_timing(serve, "/v2/cost", params, options.runs)
        with scenarios.serving(empty_path, spec, url, workdir) as serve:
            live, live_body = scenarios.http_timing(serve, "/v2/cost", params, 3, warm_up=False)
    speedup = live.median / stored.median
    same = abs(scenarios.total_cost(stored_body) - scenarios.total_cost(live_body))
    figures += [
        Figure("M", "/v2/cost 7d/1d/namespace served from the ledger", seconds(stored, p95=True)),
        Figure("M", "/v2/cost 7d/1d/namespace recomputed from Prometheus per request", seconds(live)),
        Figure("M", "ledger speed-up (median / median)", f"{speedup:.0f}×", "≥ 20×", speedup >= 20),
        Figure("M", "sanity: |ledger total − recomputed total|", f"{same:.2e}", "< 1e-6", same < 1e-6),
    ]
    return figures


PROFILE_HEADING = "## Where the slowest paths spend their time"
#: The data of each scale, named only when the run measured that scale.
DATA = {
    "L": "scale L = `synthetic.presets.large()` (500 nodes, ~10k concurrent pods, ~32k pods, 500 namespaces, 30 days)",
    "M": "scale M = `presets.medium()` (50 nodes, ~1k pods, 7 days at 300 s)",
}


def write_results(path: Path, figures: list[Figure], profile: str, elapsed: float, command: str) -> None:
    """RESULTS.md: this run's command, time, machine, data, figures and profile, and nothing else.

    No prose is carried from one run to the next: a paragraph written once states an earlier run's
    figures (and verdicts) as if every later run had measured them."""
    measured = [text for scale, text in DATA.items() if any(f.scale == scale for f in figures)]
    lines = [
        "# kubetally bench results",
        "",
        f"Made by `{command}` on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC in {elapsed / 60:.1f} minutes.",
        f"Machine: {_machine()}.",
        "",
        "Data: " + ("; ".join(measured) or "no scale measured")
        + ". Each figure is the median (and p95, nearest rank) of n runs in this one invocation; HTTP figures"
        " are measured against a real `kubetally serve` process with one warm-up request first.",
        "",
        "| scale | what | measured | target | met |",
        "|---|---|---|---|---|",
    ]
    for f in figures:
        met = "" if f.met is None else ("yes" if f.met else "**no**")
        lines.append(f"| {f.scale} | {f.what} | {f.value} | {f.target} | {met} |")
    lines += ["", PROFILE_HEADING, "", profile, ""]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines))


def run_bench(options: BenchOptions, command: str, log: Log = print) -> int:
    started = time.monotonic()
    localprom.ensure_binaries(log=log)
    workdir = Path(tempfile.mkdtemp(prefix="kubetally-bench-"))
    figures: list[Figure] = []
    try:
        steps = {"M": scale_m, "L-ingest": scale_l_ingest, "L": scale_l}
        for scale in ("M", "L-ingest", "L"):
            if scale in options.scales:
                figures += steps[scale](options, workdir, log)
                for figure in figures[-3:]:
                    log(f"    {figure.scale} {figure.what}: {figure.value}")
        profile = profile_slowest(options.cache, log) if "L" in options.scales else "(scale L not run)"
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_results(options.output, figures, profile, time.monotonic() - started, command)
    log(f"==> wrote {options.output}")
    return 0

