"""Issue 15's goals applied to what a run measured: each figure with its target and whether it was met.

Kept apart from the measuring so the verdicts are plain functions of numbers (unit-tested on
hand-made results). Units: seconds, MiB (1 GiB = 1024 MiB). Ratios are median / median, or the
ingest's median wall time (process start to exit) / Σ Prometheus `evalTotalTime` of the same queries
(taken in a separate, in-process run of the same hour: `scenarios.counted_ingest`).
"""

from __future__ import annotations

from collections.abc import Sequence

from kubetally.bench.measure import CountingSource, Timing
from kubetally.bench.mix import MixStats
from kubetally.bench.scenarios import Figure, seconds
from kubetally.bench.shapes import ShapeResult

GIB_MIB = 1024.0
FLOOR_RATIO = 2.0
INGEST_SECONDS = 5.0
INGEST_OVER_PROMETHEUS = 3.0


def shape_figures(results: Sequence[ShapeResult], floor: Timing | None) -> list[Figure]:
    """One figure per shape; after the first shape (aggregate=namespace), its ratio to the floor."""
    figures = []
    for position, result in enumerate(results):
        shape, timing = result.shape, result.timing
        what = f"/v2/cost window=30d {shape.name}"
        if result.message:
            what += f" ({result.message[:60]}…)"
        value = seconds(timing, p95=True) if timing is not None else ""
        if result.failure:
            value = f"{value}; {result.failure}" if value else result.failure
        figures.append(Figure("L", what, value, shape.goal.text, result.met))
        if position == 0 and floor is not None and timing is not None:
            ratio = timing.median / floor.median
            figures.append(Figure("L", "… versus the bare DuckDB floor (median / median)", f"{ratio:.1f}×",
                                  f"≤ {FLOOR_RATIO:g}×", ratio <= FLOOR_RATIO))
    return figures


def rss_figure(what: str, mib: float) -> Figure:
    return Figure("L", what, f"{mib:.0f} MiB", "< 1 GiB", mib < GIB_MIB)


def mix_figures(stats: MixStats, seed: int, clients: int, requests: int, shapes: Sequence[str], rss_mib: float,
                rss_reset: bool) -> list[Figure]:
    """The 16-client mix: latency, errors (by shape and status) and the serving process's peak RSS during it."""
    head = f"{clients}-client mix of the {len(shapes)} shapes, {requests} requests each, seed {seed}"
    latency = ("no request sent" if stats.p50 is None or stats.p95 is None else
               f"p50 {stats.p50.text}, p95 {stats.p95.text} (n={stats.sent}, {stats.wall_seconds:.1f} s wall)")
    which = "; ".join(f"{shapes[shape]}: {status} ×{count}" for shape, status, count in stats.unexpected)
    problems = (f"{stats.errors} unexpected statuses{f' ({which})' if which else ''}, {stats.unanswered} unanswered "
                f"(deadline), {stats.unsent} never sent (budget spent) of {stats.planned}")
    memory = "peak RSS (VmHWM) during the mix" if rss_reset else "peak RSS (VmHWM) of its whole life, mix included"
    return [
        Figure("L", head + ": latency from send to last byte", latency),
        Figure("L", "… errors (a status other than the shape's; the refused shape's 400 is expected)", problems,
               "0 of each", stats.clean),
        rss_figure(f"… serving process {memory}", rss_mib),
    ]


def ingest_figures(timing: Timing, counted: CountingSource, peak_rss_mib: float) -> list[Figure]:
    """One L hour: the ingest's wall time, Prometheus' own time for the same queries, samples and RSS."""
    times = counted.timings
    evaluated, executed = sum(times.eval_seconds), sum(times.exec_seconds)
    missing = f"; {times.missing} answers without timings" if times.missing else ""
    figures = [
        Figure("L", "ingest of one hour (`kubetally ingest`, process start to exit)", seconds(timing),
               f"< {INGEST_SECONDS:g} s", timing.median < INGEST_SECONDS),
        Figure("L", f"… Prometheus' own time for the same {counted.queries} queries (Σ evalTotalTime; "
                    "Σ execTotalTime), `stats=all`", f"{evaluated:.3f} s; {executed:.3f} s{missing}"),
        Figure("L", "… the same hour ingested in-process (wall, the run that asked for stats)",
               f"{counted.wall_seconds:.3f} s"),
    ]
    if evaluated > 0:
        ratio = timing.median / evaluated
        figures.append(Figure("L", "… ingest median / Σ Prometheus evalTotalTime", f"{ratio:.1f}×{missing}",
                              f"≤ {INGEST_OVER_PROMETHEUS:g}×", ratio <= INGEST_OVER_PROMETHEUS and not times.missing))
    else:
        figures.append(Figure("L", "… ingest median / Σ Prometheus evalTotalTime",
                              f"not measured: no evaluation time reported{missing}", f"≤ {INGEST_OVER_PROMETHEUS:g}×",
                              False))
    figures += [
        Figure("L", "… largest query, samples read (Prometheus stats)", f"{counted.peak_samples:,} "
               f"({counted.queries} queries)", "≤ 5,000,000", counted.peak_samples <= 5_000_000),
        Figure("L", "… ingest process peak RSS", f"{peak_rss_mib:.0f} MiB", "< 512 MiB", peak_rss_mib < 512),
    ]
    return figures
