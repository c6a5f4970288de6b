"""Issue 15's verdicts on hand-made measurements: each figure next to its goal, met or not."""

from __future__ import annotations

from kubetally.bench.goals import ingest_figures, mix_figures, shape_figures
from kubetally.bench.measure import CountingSource, EvalTimes, Timing
from kubetally.bench.mix import MixStats, Percentile
from kubetally.bench.scenarios import Figure
from kubetally.bench.shapes import Goal, Shape, ShapeResult
from kubetally.sources.prometheus import PrometheusClient

NAMESPACE = Shape("step=1d aggregate=namespace", (), Goal("p95", 0.25))
LABEL = Shape("step=1d aggregate=label:app", (), Goal("p95", 1.0))
REFUSED = Shape("step=1h aggregate=controller: refused with 400", (), Goal("p95", 0.5), expect=400)


def test_shape_figures_with_the_floor_ratio() -> None:
    """namespace: 0.20, 0.22, 0.24 s → median 0.22, p95 (rank 3) 0.24 < 0.25: met; floor median 0.1 →
    0.22 / 0.1 = 2.2× > 2×: missed. label:app timed out after one 81.7 s run: missed, both said.
    The refusal: 0.3 s < 0.5 s with its message clipped to 60 characters."""
    results = [ShapeResult(NAMESPACE, Timing((0.20, 0.22, 0.24))),
               ShapeResult(LABEL, Timing((81.7,)), failure="no answer within 300 s"),
               ShapeResult(REFUSED, Timing((0.3,)), message="x" * 70)]
    figures = shape_figures(results, Timing((0.1, 0.1, 0.1)))
    assert figures == [
        Figure("L", "/v2/cost window=30d step=1d aggregate=namespace", "median 0.220 s, p95 0.240 s (n=3)",
               "p95 < 0.25 s", True),
        Figure("L", "… versus the bare DuckDB floor (median / median)", "2.2×", "≤ 2×", False),
        Figure("L", "/v2/cost window=30d step=1d aggregate=label:app",
               "median 81.700 s, p95 81.700 s (n=1); no answer within 300 s", "p95 < 1 s", False),
        Figure("L", f"/v2/cost window=30d step=1h aggregate=controller: refused with 400 ({'x' * 60}…)",
               "median 0.300 s, p95 0.300 s (n=1)", "p95 < 0.5 s", True),
    ]
    assert shape_figures([ShapeResult(LABEL, None, failure="answered 500")], None)[0].value == "answered 500"


def test_mix_figures() -> None:
    clean = MixStats(planned=128, sent=128, errors=0, unanswered=0, p50=Percentile(0.4, False),
                     p95=Percentile(2.5, False), wall_seconds=40.0)
    names = [f"shape {n}" for n in range(10)]
    latency, errors, rss = mix_figures(clean, 15, 16, 8, names, 900.0, True)
    assert latency == Figure("L", "16-client mix of the 10 shapes, 8 requests each, seed 15: latency from send to "
                                  "last byte", "p50 0.400 s, p95 2.500 s (n=128, 40.0 s wall)")
    assert (errors.value, errors.met) == ("0 unexpected statuses, 0 unanswered (deadline), 0 never sent (budget "
                                          "spent) of 128", True)
    assert (rss.what, rss.value, rss.target, rss.met) == (
        "… serving process peak RSS (VmHWM) during the mix", "900 MiB", "< 1 GiB", True)
    cut = MixStats(planned=128, sent=30, errors=3, unanswered=16, p50=Percentile(60.0, True),
                   p95=Percentile(299.0, True), wall_seconds=300.5, unexpected=((2, 500, 2), (9, 200, 1)))
    latency, errors, rss = mix_figures(cut, 15, 16, 8, names, 1024.0, False)
    assert latency.value == "p50 ≥ 60.000 s, p95 ≥ 299.000 s (n=30, 300.5 s wall)"
    assert errors.value == ("3 unexpected statuses (shape 2: 500 ×2; shape 9: 200 ×1), 16 unanswered (deadline), "
                            "98 never sent (budget spent) of 128")
    assert not errors.met
    assert "whole life" in rss.what
    assert rss.met is False


def _counted(evals: list[float], missing: int = 0) -> CountingSource:
    source = CountingSource(PrometheusClient("http://127.0.0.1:9"), queries=len(evals) + missing,
                            peak_samples=1_271_186, timings=EvalTimes(evals, [e + 0.01 for e in evals], missing))
    source.wall_seconds = 3.25
    return source


def test_ingest_figures() -> None:
    """Runs 4.2, 3.9, 4.8 s → median 4.2 < 5 s; Σ eval 0.6 + 0.9 = 1.5 s (exec 1.52 s) → 4.2 / 1.5 = 2.8×
    ≤ 3×: met; Σ eval 1.0 s → 4.2×: missed. With one answer lacking timings the sum is incomplete:
    not met, and said."""
    figures = ingest_figures(Timing((4.2, 3.9, 4.8)), _counted([0.6, 0.9]), 480.0)
    assert [(f.value, f.target, f.met) for f in figures] == [
        ("median 4.200 s (n=3)", "< 5 s", True),
        ("1.500 s; 1.520 s", "", None),
        ("3.250 s", "", None),
        ("2.8×", "≤ 3×", True),
        ("1,271,186 (2 queries)", "≤ 5,000,000", True),
        ("480 MiB", "< 512 MiB", True),
    ]
    assert "the same 2 queries" in figures[1].what
    slow = ingest_figures(Timing((4.2,)), _counted([1.0]), 480.0)
    assert (slow[3].value, slow[3].met) == ("4.2×", False)
    missing = ingest_figures(Timing((4.2,)), _counted([0.6, 0.9], missing=1), 480.0)
    assert (missing[3].value, missing[3].met) == ("2.8×; 1 answers without timings", False)
    none = ingest_figures(Timing((4.2,)), _counted([], missing=3), 480.0)
    assert none[3].value.startswith("not measured")
    assert none[3].met is False
