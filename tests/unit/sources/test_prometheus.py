"""The Prometheus client against httpx.MockTransport: parsing, request shape, retries, limits (P3, P9, R2).

No network and no real waiting: a recording `sleep` stands in for asyncio.sleep, so backoff delays
are asserted, not slept. `chunk_range` is checked by properties over random ranges.
"""

from __future__ import annotations

import asyncio
import itertools
import math
from collections.abc import Callable, Coroutine
from random import Random
from typing import Any
from urllib.parse import parse_qs

import httpx
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetally.domain.errors import SourceUnavailable
from kubetally.sources.prometheus import (
    MAX_POINTS_PER_SERIES,
    PrometheusClient,
    PromQLError,
    chunk_range,
    points_per_series,
)

Handler = Callable[[httpx.Request], httpx.Response] | Callable[[httpx.Request], Coroutine[None, None, httpx.Response]]
BASE = "http://prometheus.test:9090"
QUERY = 'sum by (namespace) (rate(container_cpu_usage_seconds_total{namespace="a&b=c",container!=""}[5m]))'


class RecordingSleep:
    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def make_client(handler: Handler, sleep: RecordingSleep | None = None, **options: Any) -> PrometheusClient:
    options.setdefault("base_url", BASE)
    return PrometheusClient(
        transport=httpx.MockTransport(handler), sleep=sleep or RecordingSleep(), random=Random(7), **options
    )


def success(data: Any, **extra: Any) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data, **extra})


def matrix(*series: tuple[dict[str, str], list[list[Any]]], stats: Any = None) -> httpx.Response:
    data: dict[str, Any] = {"resultType": "matrix", "result": [{"metric": m, "values": v} for m, v in series]}
    if stats is not None:
        data["stats"] = stats
    return success(data)


def error(status: int, error_type: str, message: str, headers: dict[str, str] | None = None) -> httpx.Response:
    body = {"status": "error", "errorType": error_type, "error": message}
    return httpx.Response(status, json=body, headers=headers)


def form(request: httpx.Request) -> dict[str, list[str]]:
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    return parse_qs(request.content.decode(), keep_blank_values=True, strict_parsing=True)


def sequence(*responses: httpx.Response | Exception) -> tuple[Handler, list[httpx.Request]]:
    """A handler answering the given responses in order (raising the exceptions); records requests."""
    seen: list[httpx.Request] = []
    queue = list(responses)

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return handler, seen


async def test_query_range_parses_a_matrix_with_nan_and_infinities() -> None:
    handler, _ = sequence(
        matrix(
            ({"namespace": "shop", "pod": "web-1"}, [[1000, "1.5"], [1060, "NaN"], [1120, "+Inf"], [1180, "-Inf"]]),
            ({}, [[1000.0, "0"]]),
        )
    )
    async with make_client(handler) as client:
        series = await client.query_range(QUERY, 1000, 1180, 60)
    assert [s.labels for s in series] == [{"namespace": "shop", "pod": "web-1"}, {}]
    first = series[0]
    assert first.timestamps.dtype == np.int64
    assert first.values.dtype == np.float64
    assert first.timestamps.tolist() == [1000, 1060, 1120, 1180]
    assert first.values[0] == 1.5
    assert math.isnan(first.values[1])
    assert np.isposinf(first.values[2])
    assert np.isneginf(first.values[3])
    assert not first.values.flags.writeable
    assert not first.timestamps.flags.writeable
    assert series[1].timestamps.tolist() == [1000]


async def test_query_range_posts_the_exact_form() -> None:
    handler, seen = sequence(matrix())
    async with make_client(handler, timeout_seconds=30) as client:
        assert await client.query_range(QUERY, 1_700_000_000, 1_700_003_600, 60) == []
    (request,) = seen
    assert request.method == "POST"
    assert request.url.path == "/api/v1/query_range"
    assert form(request) == {
        "query": [QUERY],
        "start": ["1700000000"],
        "end": ["1700003600"],
        "step": ["60"],
        "timeout": ["30000ms"],
    }


@pytest.mark.parametrize(("options", "encoding"), [({}, "identity"), ({"compressed": True}, "gzip, deflate"),
                                                   ({"headers": {"Accept-Encoding": "br"}}, "br")])
async def test_answers_are_asked_for_uncompressed_unless_told(options: dict[str, Any], encoding: str) -> None:
    handler, seen = sequence(matrix())
    async with make_client(handler, **options) as client:
        await client.query_range("up", 0, 60, 60)
    assert seen[0].headers["Accept-Encoding"] == encoding


async def test_base_url_prefix_is_kept_for_mimir() -> None:
    handler, seen = sequence(matrix())
    async with make_client(handler, base_url="http://mimir.test/prometheus") as client:
        await client.query_range("up", 0, 60, 60)
    assert seen[0].url.path == "/prometheus/api/v1/query_range"


async def test_query_range_stats_sends_stats_all_and_reads_the_samples() -> None:
    handler, seen = sequence(
        matrix(({}, [[0, "1"]]), stats={"samples": {"totalQueryableSamples": 1234, "peakSamples": 9}})
    )
    async with make_client(handler) as client:
        series, samples = await client.query_range_stats("up", 0, 0, 60)
    assert len(series) == 1
    assert samples == 1234
    assert form(seen[0])["stats"] == ["all"]


@pytest.mark.parametrize("stats", [None, {"seriesFetched": "3", "executionTimeMsec": 1}, {"samples": {}}])
async def test_query_range_stats_is_none_without_samples(stats: Any) -> None:
    handler, _ = sequence(matrix(stats=stats))
    async with make_client(handler) as client:
        assert await client.query_range_stats("up", 0, 60, 60) == ([], None)


async def test_query_range_without_stats_does_not_ask_for_them() -> None:
    handler, seen = sequence(matrix())
    async with make_client(handler) as client:
        await client.query_range("up", 0, 60, 60)
    assert "stats" not in form(seen[0])


@pytest.mark.parametrize("status", [400, 422])
async def test_a_rejected_query_raises_promql_error_without_retry(status: int) -> None:
    handler, seen = sequence(error(status, "bad_data", '1:4: parse error: unexpected "{"'))
    sleep = RecordingSleep()
    async with make_client(handler, sleep) as client:
        with pytest.raises(PromQLError, match="parse error") as caught:
            await client.query_range("up{", 0, 60, 60)
    assert len(seen) == 1
    assert sleep.delays == []
    assert isinstance(caught.value, ValueError)
    assert caught.value.status_code == status
    assert caught.value.error_type == "bad_data"


async def test_503_then_200_succeeds_after_one_jittered_retry() -> None:
    handler, seen = sequence(error(503, "unavailable", "overloaded"), matrix(({}, [[0, "1"]])))
    sleep = RecordingSleep()
    async with make_client(handler, sleep, backoff_base_seconds=2.0) as client:
        series = await client.query_range("up", 0, 0, 60)
    assert len(series) == 1
    assert len(seen) == 2
    assert len(sleep.delays) == 1
    assert 0.0 <= sleep.delays[0] <= 2.0


async def test_backoff_grows_exponentially_with_full_jitter_and_a_cap() -> None:
    handler, seen = sequence(*[httpx.Response(502)] * 6, matrix())
    sleep = RecordingSleep()
    async with make_client(handler, sleep, retries=6, backoff_base_seconds=1.0, backoff_max_seconds=5.0) as client:
        await client.query_range("up", 0, 60, 60)
    assert len(seen) == 7
    ceilings = [1, 2, 4, 5, 5, 5]
    assert all(0.0 <= delay <= ceiling for delay, ceiling in zip(sleep.delays, ceilings, strict=True))
    assert len(set(sleep.delays)) == len(sleep.delays)  # jittered, not a fixed ladder


@pytest.mark.parametrize(
    ("header", "expected"), [("7", 7.0), ("10000", 300.0), ("0.5", 0.5), ("Wed, 21 Oct 2015 07:28:00 GMT", None)]
)
async def test_retry_after_is_honoured_and_capped(header: str, expected: float | None) -> None:
    handler, _ = sequence(error(429, "unavailable", "slow down", {"Retry-After": header}), matrix())
    sleep = RecordingSleep()
    async with make_client(handler, sleep, backoff_base_seconds=0.1) as client:
        await client.query_range("up", 0, 60, 60)
    (delay,) = sleep.delays
    if expected is None:
        assert 0.0 <= delay <= 0.1  # an HTTP date is not read (no clock here): plain jittered backoff
    else:
        assert delay == expected


async def test_connection_errors_exhaust_retries_into_a_helpful_source_unavailable() -> None:
    handler, seen = sequence(httpx.ConnectError("connection refused"))
    sleep = RecordingSleep()
    long_query = "sum(" + "x" * 1000 + "_SECRET_TAIL)"
    client = make_client(handler, sleep, base_url="http://user:hunter2@prometheus.test:9090", retries=4)
    with pytest.raises(SourceUnavailable) as caught:
        await client.query_range(long_query, 0, 60, 60)
    await client.aclose()
    message = str(caught.value)
    assert len(seen) == 5
    assert len(sleep.delays) == 4
    assert "http://prometheus.test:9090/api/v1/query_range" in message
    assert "5 attempts" in message
    assert "ConnectError: connection refused" in message
    assert "hunter2" not in message
    assert "_SECRET_TAIL" not in message
    assert "sum(xxx" in message
    assert len(message) < 600


@pytest.mark.parametrize("status", [200, 422])
@pytest.mark.parametrize("error_type", ["timeout", "unavailable"])
async def test_api_errors_of_type_timeout_or_unavailable_are_retried(status: int, error_type: str) -> None:
    handler, seen = sequence(error(status, error_type, "query timed out in expression evaluation"), matrix())
    async with make_client(handler) as client:
        assert await client.query_range("up", 0, 60, 60) == []
    assert len(seen) == 2


async def test_a_slow_answer_hits_the_per_request_deadline() -> None:
    async def handler(request: httpx.Request) -> httpx.Response:
        await asyncio.sleep(5)
        return matrix()

    sleep = RecordingSleep()
    async with make_client(handler, sleep, timeout_seconds=0.05, retries=1) as client:
        with pytest.raises(SourceUnavailable, match=r"2 attempts; last error: no answer within 0.05s"):
            await client.query_range("up", 0, 60, 60)
    assert len(sleep.delays) == 1


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (httpx.Response(401, text="Unauthorized"), "refused the request .HTTP 401"),
        (httpx.Response(404, text="404 page not found"), "HTTP 404"),
        (httpx.Response(200, text="<html>login</html>"), "without a Prometheus API response"),
        (success({"resultType": "vector", "result": []}), "malformed result"),
        (success({"resultType": "matrix", "result": [{"metric": {}, "values": [[0]]}]}), "malformed result"),
    ],
)
async def test_non_transient_failures_are_not_retried(response: httpx.Response, match: str) -> None:
    handler, seen = sequence(response)
    async with make_client(handler) as client:
        with pytest.raises(SourceUnavailable, match=match):
            await client.query_range("up", 0, 60, 60)
    assert len(seen) == 1


async def test_concurrency_never_exceeds_max_concurrency() -> None:
    in_flight = peak = 0

    async def handler(request: httpx.Request) -> httpx.Response:
        nonlocal in_flight, peak
        in_flight += 1
        peak = max(peak, in_flight)
        await asyncio.sleep(0.01)
        in_flight -= 1
        return matrix()

    async with make_client(handler, max_concurrency=2) as client:
        await asyncio.gather(*(client.query_range("up", 0, 60, 60) for _ in range(12)))
    assert peak == 2


async def test_too_many_points_fail_before_any_request() -> None:
    handler, seen = sequence(matrix())
    async with make_client(handler) as client:
        with pytest.raises(ValueError, match=r"11001 points per series.*chunk_range"):
            await client.query_range("up", 0, 11_000 * 60, 60)
        with pytest.raises(ValueError, match="step"):
            await client.query_range("up", 0, 60, 0)
        with pytest.raises(ValueError, match="before start"):
            await client.query_range("up", 60, 0, 60)
        assert seen == []
        await client.query_range("up", 0, 10_999 * 60, 60)  # exactly 11,000 points pass
    assert len(seen) == 1


async def test_instant_query_parses_vectors_and_scalars() -> None:
    vector = success({"resultType": "vector", "result": [{"metric": {"node": "n1"}, "value": [1700000000, "+Inf"]}]})
    scalar = success({"resultType": "scalar", "result": [1700000000.0, "2.5"]})
    handler, seen = sequence(vector, scalar)
    async with make_client(handler) as client:
        (sample,) = await client.query("kube_node_info", 1_700_000_000)
        (number,) = await client.query("2.5", 1_700_000_000)
    assert sample.labels == {"node": "n1"}
    assert sample.timestamp == 1_700_000_000
    assert math.isinf(sample.value)
    assert number.labels == {}
    assert number.value == 2.5
    assert seen[0].url.path == "/api/v1/query"
    assert form(seen[0])["time"] == ["1700000000"]


async def test_series_uses_get_with_repeated_match() -> None:
    handler, seen = sequence(success([{"__name__": "kube_pod_labels", "namespace": "shop"}]))
    async with make_client(handler) as client:
        labels = await client.series(['kube_pod_labels{cluster="c1"}', "kube_namespace_labels"], 0, 3600)
        with pytest.raises(ValueError, match="non-empty"):
            await client.series([], 0, 1)
    assert labels == [{"__name__": "kube_pod_labels", "namespace": "shop"}]
    (request,) = seen
    assert request.method == "GET"
    assert request.url.path == "/api/v1/series"
    assert request.url.params.get_list("match[]") == ['kube_pod_labels{cluster="c1"}', "kube_namespace_labels"]
    assert request.url.params["start"] == "0"
    assert request.url.params["end"] == "3600"


@pytest.mark.parametrize(
    ("answer", "ready"),
    [
        (success({"resultType": "scalar", "result": [0, "1"]}), True),
        (error(503, "unavailable", "starting"), False),
        (httpx.Response(200, text="ok"), False),
        (httpx.ConnectError("refused"), False),
    ],
)
async def test_ready_is_one_attempt_and_never_raises(answer: httpx.Response | Exception, ready: bool) -> None:
    handler, seen = sequence(answer)
    sleep = RecordingSleep()
    async with make_client(handler, sleep) as client:
        assert await client.ready() is ready
    assert len(seen) == 1
    assert sleep.delays == []


@pytest.mark.parametrize("url", ["prometheus:9090", "ftp://prometheus", "http://"])
def test_invalid_base_urls_are_rejected(url: str) -> None:
    with pytest.raises(ValueError, match="http"):
        PrometheusClient(url)


@given(
    start=st.integers(0, 2_000_000_000),
    step=st.integers(1, 86_400),
    points=st.integers(1, 60_000),
    extra=st.integers(0, 86_399),
    max_points=st.integers(1, 20_000),
    hint=st.integers(1, 2_000_000),
    max_samples=st.integers(1, 10_000_000),
)
def test_chunk_range_covers_every_evaluation_time_once(
    start: int, step: int, points: int, extra: int, max_points: int, hint: int, max_samples: int
) -> None:
    end = start + (points - 1) * step + extra % step
    chunks = chunk_range(start, end, step, max_points=max_points, max_series_hint=hint, max_samples=max_samples)
    assert points_per_series(start, end, step) == points
    assert chunks[0][0] == start
    assert chunks[-1][1] == start + (points - 1) * step
    for (_, previous_end), (next_start, _) in itertools.pairwise(chunks):
        assert next_start == previous_end + step  # contiguous, no overlap
    per_chunk = max(1, min(max_points, max_samples // hint))
    for chunk_start, chunk_end in chunks:
        assert (chunk_start - start) % step == 0
        assert (chunk_end - start) % step == 0
        assert chunk_start <= chunk_end
        size = points_per_series(chunk_start, chunk_end, step)
        assert size <= max_points
        assert size * hint <= max_samples or size == 1
    assert sum(points_per_series(a, b, step) for a, b in chunks) == points
    assert len(chunks) == math.ceil(points / per_chunk)  # as few chunks as the limits allow


def test_default_chunks_fit_the_server_limit() -> None:
    chunks = chunk_range(0, 30 * 86_400, 60)
    assert all(points_per_series(a, b, 60) <= MAX_POINTS_PER_SERIES for a, b in chunks)
    assert chunks == [(0, 659_940), (660_000, 1_319_940), (1_320_000, 1_979_940), (1_980_000, 2_592_000)]


@pytest.mark.parametrize(
    ("args", "kwargs"),
    [((0, 60, 0), {}), ((60, 0, 60), {}), ((0, 60, 60), {"max_points": 0}), ((0, 60, 60), {"max_series_hint": 0})],
)
def test_chunk_range_rejects_invalid_arguments(args: tuple[int, int, int], kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError):  # noqa: PT011 - each case has its own message
        chunk_range(*args, **kwargs)
