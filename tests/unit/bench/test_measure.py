"""The bench's arithmetic and its table, on hand-made numbers (the bench itself is not a test)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest

from kubetally.bench.measure import (
    CountingSource,
    EvalTimes,
    Timing,
    TimingTransport,
    peak_rss_mib,
    reset_peak_rss,
    stats_timings,
)
from kubetally.bench.run import PROFILE_HEADING, write_results
from kubetally.bench.scenarios import Figure, seconds
from kubetally.sources.prometheus import PrometheusClient


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


def test_results_say_only_what_the_run_measured(tmp_path: Path) -> None:
    """Every line of RESULTS.md is the fixed frame (title, table header, profile heading), the run's
    own command/time/machine/data lines, one of its figures, or its profile: no paragraph carried
    over from an earlier run (issue 12 bug 9: a history paragraph with old figures was in every file).
    The data line names only the scales the run measured (here M)."""
    path = tmp_path / "RESULTS.md"
    figures = [Figure("M", "cold backfill", "84.5 s"), Figure("M", "speed-up", "3×", "≥ 20×", False)]
    write_results(path, figures, "PROFILE LINE 1\nPROFILE LINE 2", 60.0, "kubetally bench --scales M")
    lines = [line for line in path.read_text().splitlines() if line]
    frame = {"# kubetally bench results", "| scale | what | measured | target | met |", "|---|---|---|---|---|",
             PROFILE_HEADING}
    run_lines = [line for line in lines if line.startswith(("Made by `kubetally bench --scales M` on ", "Machine: "))]
    assert len(run_lines) == 2
    [data] = [line for line in lines if line.startswith("Data: ")]
    rows = ["| M | cold backfill | 84.5 s |  |  |", "| M | speed-up | 3× | ≥ 20× | **no** |"]
    assert sorted(set(lines) - frame - set(run_lines) - {data}) == sorted([*rows, "PROFILE LINE 1", "PROFILE LINE 2"])
    assert data.startswith("Data: scale M = `presets.medium()` (50 nodes, ~1k pods, 7 days at 300 s). Each figure")
    assert "scale L" not in data
    assert lines.index(PROFILE_HEADING) == lines.index("PROFILE LINE 1") - 1


#: A Prometheus answer to `stats=all` (2.42's field order: result, then stats), with a label value
#: spelling `"timings":` to show it cannot be mistaken for the key.
ANSWER = (b'{"status":"success","data":{"resultType":"matrix","result":[{"metric":{"odd":"\\"timings\\": 9"},'
          b'"values":[[1767225600,"1"]]}],"stats":{"timings":{"evalTotalTime":0.25,"resultSortTime":0,'
          b'"queryPreparationTime":0.01,"innerEvalTime":0.2,"execQueueTime":0.001,"execTotalTime":0.3},'
          b'"samples":{"totalQueryableSamples":12,"peakSamples":3}}}}')


def test_stats_timings_read_from_the_end_of_the_answer() -> None:
    assert stats_timings(ANSWER) == (0.25, 0.3)
    assert stats_timings(b'{"status":"success","data":{"resultType":"matrix","result":[]}}') is None
    assert stats_timings(b'{"data":{"stats":{"timings":{"evalTotalTime":"x"}}}}') is None


def test_timing_transport_records_prometheus_own_time_under_the_real_client() -> None:
    """Two range queries through PrometheusClient over a TimingTransport: both evaluation times
    recorded (0.25 s each), the series and sample count still reach the caller unchanged, and the
    requests asked for an uncompressed body. An instant query is passed through."""
    seen: list[str] = []

    class Server(httpx.AsyncBaseTransport):
        """Answers with an unread stream, as the network transport does."""

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            seen.append(request.headers.get("Accept-Encoding", ""))
            body = ANSWER
            if request.url.path.endswith("/api/v1/query"):
                body = b'{"status":"success","data":{"resultType":"vector","result":[]}}'
            return httpx.Response(200, headers={"Content-Type": "application/json"}, stream=httpx.ByteStream(body))

    async def run() -> tuple[CountingSource, EvalTimes]:
        times = EvalTimes()
        transport = TimingTransport(times, inner=Server())
        async with PrometheusClient("http://prometheus.test", transport=transport) as client:
            source = CountingSource(client, timings=times)
            for _ in range(2):
                [series] = await source.query_range("up", 1767225600, 1767225660, 60)
                assert series.labels == {"odd": '"timings": 9'}
                assert list(series.values) == [1.0]
            assert await client.query("up", 1767225600) == []
        return source, times

    source, times = asyncio.run(run())
    assert (source.queries, source.peak_samples) == (2, 12)
    assert (times.eval_seconds, times.exec_seconds, times.missing) == ([0.25, 0.25], [0.3, 0.3], 0)
    assert seen[:2] == ["identity", "identity"]


def test_reset_peak_rss_of_this_process() -> None:
    """256 MiB made resident then freed: VmHWM keeps it; after a reset it restarts from the current
    RSS, so it drops by (nearly) the 256 MiB."""
    blob = b"\x01" * (256 * 2**20)
    before = peak_rss_mib()
    del blob
    if not reset_peak_rss():
        pytest.skip("this kernel refuses /proc/self/clear_refs")
    assert peak_rss_mib() < before - 200
