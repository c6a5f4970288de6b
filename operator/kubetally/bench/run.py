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
from kubetally.bench import mix, scenarios
from kubetally.bench.goals import ingest_figures, mix_figures, rss_figure, shape_figures
from kubetally.bench.ledgers import generated_ledger
from kubetally.bench.measure import Timing, peak_rss_mib, reset_peak_rss
from kubetally.bench.mix import mix_plan, run_mix
from kubetally.bench.profile import profile_slowest
from kubetally.bench.scenarios import ALAUDA, Figure, seconds
from kubetally.bench.shapes import MONTH as MONTH
from kubetally.bench.shapes import cost_shapes, time_shapes
from kubetally.engine import rollup
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import generate, presets

Log = Callable[[str], None]
SCALES = ("L", "L-ingest", "M")


@dataclass(frozen=True, slots=True)
class BenchOptions:
    cache: Path
    output: Path
    runs: int = 20
    scales: tuple[str, ...] = SCALES
    #: The seed of the 16-client mix's request sequences (fixed, so runs compare; printed with the figures).
    mix_seed: int = 15


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
    cluster = generate(spec)
    ledger_path = generated_ledger(cluster, options.cache, log=log)
    shapes = cost_shapes(cluster)
    del cluster
    log("==> scale L: kubetally rollups --rebuild (every hour, every maintained method)")
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
               Figure("L", f"rollups: {builds} hour-builds (720 h × {', '.join(m.value for m in rollup.METHODS)}), "
                           "`kubetally rollups`",
                      f"{built_in:.1f} s, peak RSS {built_rss:.0f} MiB"),
               Figure("L", "floor: one bare DuckDB query, 30d by day × namespace", seconds(floor, p95=True)),
               Figure("L", "CostReport status: 30d, step 1d, by namespace (in-process)", seconds(report))]
    log(f"==> scale L: kubetally serve --memory-limit {scenarios.SERVE_MEMORY_LIMIT} over HTTP, one client, "
        f"{len(shapes)} shapes")
    with scenarios.serving(ledger_path, spec, "http://127.0.0.1:9", workdir) as serve:
        results = time_shapes(serve.url, shapes, options.runs, log)
        namespace = results[0]
        alauda, _ = scenarios.http_timing(
            serve, ALAUDA, {"start": "2026-01-01", "end": "2026-01-30", "kind": "namespace_all", "step": "day",
                            "pageSize": "1000"}, options.runs)
        _, body = scenarios.http_timing(serve, "/v2/cost", dict(namespace.shape.params), 1, warm_up=False)
        rss = peak_rss_mib(serve.pid)
        plan = mix_plan(options.mix_seed, mix.CLIENTS, mix.REQUESTS_PER_CLIENT, len(shapes))
        log(f"==> scale L: {mix.CLIENTS} clients at once, {mix.REQUESTS_PER_CLIENT} requests each, seed "
            f"{options.mix_seed}, at most {mix.MIX_BUDGET_SECONDS:.0f} s")
        reset = reset_peak_rss(serve.pid)
        stats = run_mix(serve.url, shapes, plan)
        mix_rss = peak_rss_mib(serve.pid)
    figures += shape_figures(results, floor)
    figures += [
        Figure("L", "Alauda kind=namespace_all step=day, 2026-01-01..30", seconds(alauda, p95=True)),
        rss_figure("serving process peak RSS (VmHWM), one client, over all the above", rss),
        Figure("L", "sanity: 30d/1d/namespace total cost (default prices)", f"{scenarios.total_cost(body):,.2f}"),
    ]
    figures += mix_figures(stats, options.mix_seed, mix.CLIENTS, mix.REQUESTS_PER_CLIENT,
                           [shape.name for shape in shapes], mix_rss, reset)
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
        log("==> scale L: the same hour in-process, asking Prometheus for its own timings (stats=all)")
        counted = scenarios.counted_ingest(url, workdir / "l-hour-counted.duckdb", spec, hour, hour + 3600)
    return ingest_figures(Timing(tuple(durations)), counted, max(peaks))


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
        # The ledger as it serves in steady state: its rollups built (serve would otherwise build them
        # in the background while it is being measured).
        scenarios.rollups_subprocess(ledger_path)
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
        Figure("M", "ledger speed-up (median / median)", f"{speedup:.0f}×", "≥ 1000×", speedup >= 1000),
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
        " are measured against a real `kubetally serve` process, after one warm-up request when that first"
        " answer took under 2 s (a slower first answer is counted: bench/README.md).",
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


def _profile(options: BenchOptions, log: Log) -> str:
    """The profile section; a profile that fails (it calls engine internals directly) is reported, and
    does not cost the figures already measured."""
    if "L" not in options.scales:
        return "(scale L not run)"
    try:
        return profile_slowest(options.cache, log)
    except Exception as exc:  # any failure is written into RESULTS.md instead
        log(f"    profile failed: {type(exc).__name__}: {exc}")
        return f"(the profile failed: {type(exc).__name__}: {str(exc)[:300]})"


def run_bench(options: BenchOptions, command: str, log: Log = print) -> int:
    started = time.monotonic()
    localprom.ensure_binaries(log=log)
    workdir = Path(tempfile.mkdtemp(prefix="kubetally-bench-"))
    figures: list[Figure] = []
    try:
        steps = {"M": scale_m, "L-ingest": scale_l_ingest, "L": scale_l}
        for scale in ("M", "L-ingest", "L"):
            if scale in options.scales:
                measured = steps[scale](options, workdir, log)
                for figure in measured:
                    log(f"    {figure.scale} {figure.what}: {figure.value}")
                figures += measured
        profile = _profile(options, log)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    write_results(options.output, figures, profile, time.monotonic() - started, command)
    log(f"==> wrote {options.output}")
    return 0

