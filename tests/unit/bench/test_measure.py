"""The bench's arithmetic and its table, on hand-made numbers (the bench itself is not a test)."""

from __future__ import annotations

from pathlib import Path

from kubetally.bench.measure import Timing, peak_rss_mib
from kubetally.bench.run import write_results
from kubetally.bench.scenarios import Figure, seconds


def test_median_and_nearest_rank_p95() -> None:
    """20 runs of 1..20 s: median (10 + 11) / 2 = 10.5; p95 is rank ⌈0.95·20⌉ = 19, i.e. 19 s.
    5 runs of 5, 1, 4, 2, 3: median 3; p95 is rank ⌈4.75⌉ = 5, the slowest."""
    twenty = Timing(tuple(float(n) for n in range(20, 0, -1)))
    assert (twenty.median, twenty.p95) == (10.5, 19.0)
    five = Timing((5.0, 1.0, 4.0, 2.0, 3.0))
    assert (five.median, five.p95) == (3.0, 5.0)
    assert seconds(five, p95=True) == "median 3.000 s, p95 5.000 s (n=5)"


def test_peak_rss_of_this_process_is_plausible() -> None:
    assert 10 < peak_rss_mib() < 64 * 1024


def test_results_table_marks_missed_targets(tmp_path: Path) -> None:
    path = tmp_path / "RESULTS.md"
    write_results(path, [Figure("L", "fast thing", "0.2 s", "< 1 s", True), Figure("M", "slow thing", "30 s", "< 1 s",
                                                                                  False), Figure("M", "info", "7")],
                  "(no profile)", 90.0, "kubetally bench")
    lines = path.read_text().splitlines()
    assert "| L | fast thing | 0.2 s | < 1 s | yes |" in lines
    assert "| M | slow thing | 30 s | < 1 s | **no** |" in lines
    assert "| M | info | 7 |  |  |" in lines
    assert any(line.startswith("Made by `kubetally bench`") and "1.5 minutes" in line for line in lines)
