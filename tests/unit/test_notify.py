"""Budget webhook notifications (issue 17) against a real HTTP receiver on 127.0.0.1 (aiohttp).

The bodies are compared with JSON written out by hand; the Slack lines' figures by hand:
1612.5 / 2000 × 100 = 80.625 → 80.6 (rounded down); 2137.125 → 2,137.13 (half-up cents),
2137.125 / 2000 × 100 = 106.85625 → 106.8; 1999.99 / 2000 × 100 = 99.9995 → 99.9;
123456.789 / 1000 × 100 = 12345.6789 → 12,345.6. Schedules are shortened by injecting delays and
attempt deadlines; every test runs under an `asyncio.timeout`, so a broken bound fails, never hangs.
Nothing is random.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from prometheus_client import CollectorRegistry, Counter

from kubetally.notify import Crossing, Notifier, Outcome, Target, body, classify, generic_body, slack_text

HANG = 0  # a scripted "status" meaning: never answer (until the receiver is torn down)
TOKEN = "T0001/B0002/s3cr3tT0ken"
FAST = (0.01, 0.01, 0.01, 0.01, 0.01)


@dataclass(frozen=True)
class Post:
    path: str
    headers: dict[str, str]
    body: Any
    at: float


class Receiver:
    """A webhook receiver: answers the scripted statuses in turn (200 once they run out)."""

    def __init__(self, script: list[int]) -> None:
        self.script = script
        self.posts: list[Post] = []
        self.released = asyncio.Event()
        app = web.Application()
        app.router.add_post("/{tail:.*}", self.handle)
        self.server = TestServer(app, host="127.0.0.1")
        self.port = 0  # known once started (and kept after the server is closed)

    async def handle(self, request: web.Request) -> web.Response:
        self.posts.append(Post(request.path, dict(request.headers), json.loads(await request.read()), time.monotonic()))
        status = self.script.pop(0) if self.script else 200
        if status == HANG:
            await self.released.wait()
        return web.Response(status=status or 200)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/services/{TOKEN}"

    async def posted(self, count: int) -> None:
        while len(self.posts) < count:
            await asyncio.sleep(0.005)


@asynccontextmanager
async def receiving(*script: int) -> AsyncIterator[Receiver]:
    receiver = Receiver(list(script))
    await receiver.server.start_server()
    receiver.port = receiver.server.port or 0
    try:
        yield receiver
    finally:
        receiver.released.set()
        await receiver.server.close()


def crossing(url: str = "http://127.0.0.1:9/hook", fmt: str = "json", **changes: Any) -> Crossing:
    """shop/monthly, 80 % of 2000 CNY on spent, crossed at 1612.5 in November 2026 (Asia/Shanghai)."""
    base = Crossing(namespace="shop", name="monthly", threshold="spent-80", percent=Decimal(80), basis="spent",
                    amount=Decimal(2000), value=1612.5, currency="CNY", period_start="2026-11-01T00:00:00+08:00",
                    period_end="2026-12-01T00:00:00+08:00", crossed_at="2026-11-24T05:17:09Z",
                    target=Target(url, fmt))  # type: ignore[arg-type]
    return replace(base, **changes)


GENERIC = {
    "apiVersion": "kubetally.io/v1alpha1", "kind": "CostBudgetThresholdCrossed",
    "id": "shop/monthly/2026-10-31T16:00:00Z/spent-80", "namespace": "shop", "name": "monthly",
    "threshold": "spent-80", "percent": 80, "basis": "spent", "value": 1612.5, "amount": 2000, "currency": "CNY",
    "periodStart": "2026-11-01T00:00:00+08:00", "periodEnd": "2026-12-01T00:00:00+08:00",
    "crossedAt": "2026-11-24T05:17:09Z",
}
SLACK_LINE = ("CostBudget shop/monthly: spent 1,612.50 CNY is 80.6% of 2,000.00 CNY (threshold 80% on spent), "
              "period 2026-11-01..2026-12-01")


def test_bodies_are_the_documented_json() -> None:
    assert json.loads(body(crossing())) == GENERIC
    assert body(crossing()) == json.dumps(GENERIC, separators=(",", ":")).encode()  # key order too
    assert json.loads(body(crossing(fmt="slack"))) == {"text": SLACK_LINE}
    assert "url" not in json.dumps(generic_body(crossing())).lower()


@pytest.mark.parametrize(("changes", "line"), [
    ({"threshold": "forecast-100", "percent": Decimal(100), "basis": "forecast", "value": 2137.125,
      "period_start": "2026-11-01T00:00:00Z", "period_end": "2026-12-01T00:00:00Z"},
     "CostBudget shop/monthly: forecast 2,137.13 CNY is 106.8% of 2,000.00 CNY (threshold 100% on forecast), "
     "period 2026-11-01..2026-12-01"),
    ({"threshold": "spent-99.5", "percent": Decimal("99.5"), "value": 1999.99, "period_start": "2026-10-31T16:00:00Z",
      "period_end": "2026-11-30T16:00:00Z"},
     "CostBudget shop/monthly: spent 1,999.99 CNY is 99.9% of 2,000.00 CNY (threshold 99.5% on spent), "
     "period 2026-10-31T16:00:00Z..2026-11-30T16:00:00Z"),
    ({"threshold": "spent-1000", "percent": Decimal(1000), "amount": Decimal(1000), "value": 123456.789,
      "currency": "JPY"},
     "CostBudget shop/monthly: spent 123,456.79 JPY is 12,345.6% of 1,000.00 JPY (threshold 1000% on spent), "
     "period 2026-11-01..2026-12-01"),
])
def test_slack_lines(changes: dict[str, Any], line: str) -> None:
    assert slack_text(crossing(**changes)) == line


@pytest.mark.parametrize(("status", "outcome"), [
    (200, Outcome.DELIVERED), (202, Outcome.DELIVERED), (204, Outcome.DELIVERED), (408, None), (429, None),
    (500, None), (502, None), (503, None), (301, Outcome.FAILED), (400, Outcome.FAILED), (401, Outcome.FAILED),
    (403, Outcome.FAILED), (404, Outcome.FAILED), (410, Outcome.FAILED),
])
def test_classify(status: int, outcome: Outcome | None) -> None:
    assert classify(status) is outcome


@pytest.mark.parametrize(("changes", "message"), [
    ({"basis": "both"}, "basis='both' is not accepted; accepted: spent, forecast"),
    ({"threshold": "spent-50"}, 'threshold "spent-50" does not name percent 80 on spent'),
    ({"amount": Decimal(0)}, "percent (80) and amount (0) must be more than 0"),
    ({"value": float("nan")}, "value must be a finite amount ≥ 0, got nan"),
    ({"crossed_at": "2026-11-24 05:17"}, '"2026-11-24 05:17" is not an RFC3339 time'),
])
def test_bad_crossings_are_named(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        crossing(**changes)


def test_bad_targets_never_quote_the_url() -> None:
    with pytest.raises(ValueError, match='scheme "ftp" given') as caught:
        Target(f"ftp://example.com/{TOKEN}")
    assert TOKEN not in str(caught.value)
    with pytest.raises(ValueError, match="accepted: json, slack"):
        Target("https://example.com/x", "teams")  # type: ignore[arg-type]
    target = Target(f"https://hooks.example.com/{TOKEN}", "slack")
    assert TOKEN not in repr(target)
    assert TOKEN not in repr(crossing(f"https://hooks.example.com/{TOKEN}"))
    assert target.host == "hooks.example.com:443"


async def test_one_post_per_crossing_even_when_submitted_twice() -> None:
    async with asyncio.timeout(10), receiving() as receiver:
        notifier = Notifier(delays=FAST)
        generic, slack = crossing(receiver.url), crossing(receiver.url, "slack", threshold="spent-100",
                                                          percent=Decimal(100), value=2000.0)
        notifier.submit(generic)
        notifier.submit(generic)
        notifier.submit(replace(generic, period_start="2026-10-31T16:00:00Z"))  # the same instant, written in UTC
        notifier.submit(slack)
        assert await notifier.join(5)
        notifier.submit(generic)  # recomputed by the handler after delivery
        notifier.submit(slack)
        assert notifier.pending == 0
        await notifier.close()
    assert [post.body for post in receiver.posts] == [GENERIC, {"text": (
        "CostBudget shop/monthly: spent 2,000.00 CNY is 100.0% of 2,000.00 CNY (threshold 100% on spent), "
        "period 2026-11-01..2026-12-01")}]
    assert [post.headers["Idempotency-Key"] for post in receiver.posts] == [
        "shop/monthly/2026-10-31T16:00:00Z/spent-80", "shop/monthly/2026-10-31T16:00:00Z/spent-100"]
    assert {post.path for post in receiver.posts} == {f"/services/{TOKEN}"}
    assert {post.headers["Content-Type"] for post in receiver.posts} == {"application/json"}
    assert notifier.counts == {Outcome.DELIVERED: 2}
    assert notifier.outcome(generic) is notifier.outcome(slack) is Outcome.DELIVERED


async def test_two_500s_then_200_is_three_posts_and_one_delivery() -> None:
    registry = CollectorRegistry()
    outcomes = Counter("kubetally_budget_notifications", "budget webhook notifications by outcome", ["outcome"],
                       registry=registry)
    async with asyncio.timeout(10), receiving(500, 500, 200) as receiver:
        notifier = Notifier(delays=FAST, outcomes=outcomes)
        notifier.submit(crossing(receiver.url))
        assert await notifier.join(5)
        await notifier.close()
    assert len(receiver.posts) == 3
    assert [post.body for post in receiver.posts] == [GENERIC] * 3
    assert {post.headers["Idempotency-Key"] for post in receiver.posts} == {GENERIC["id"]}
    assert notifier.counts == {Outcome.DELIVERED: 1}
    samples = {o: registry.get_sample_value("kubetally_budget_notifications_total", {"outcome": o})
               for o in ("delivered", "failed", "dropped")}
    assert samples == {"delivered": 1.0, "failed": 0.0, "dropped": 0.0}


async def test_a_404_is_not_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kubetally.notify")
    async with asyncio.timeout(10), receiving(404, 404) as receiver:
        notifier = Notifier(delays=FAST)
        notifier.submit(crossing(receiver.url))
        assert await notifier.join(5)
        notifier.submit(crossing(receiver.url))  # given up is settled too
        await asyncio.sleep(0.1)
        await notifier.close()
    assert len(receiver.posts) == 1
    assert notifier.counts == {Outcome.FAILED: 1}
    assert notifier.outcome(crossing(receiver.url)) is Outcome.FAILED
    assert [r.getMessage() for r in caplog.records] == [
        f"budget notification {GENERIC['id']} to 127.0.0.1:{receiver.port} given up: answered 404 (not retried)"]


async def test_a_hung_receiver_delays_nothing() -> None:
    """Each attempt is cut at 0.3 s, so the second POST arrives 0.3 + 0.05 s after the first;
    `submit` returns at once, the loop keeps ticking, `close` cancels the hung attempt in time."""
    async with asyncio.timeout(10), receiving(*[HANG] * 6) as receiver:
        notifier = Notifier(attempt_seconds=0.3, delays=(0.05,) * 5)
        ticks: list[float] = []

        async def ticker() -> None:
            while True:
                ticks.append(time.monotonic())
                await asyncio.sleep(0.01)

        ticking = asyncio.create_task(ticker())
        started = time.perf_counter()
        notifier.submit(crossing(receiver.url))
        assert time.perf_counter() - started < 0.05
        await receiver.posted(2)
        gap = receiver.posts[1].at - receiver.posts[0].at
        assert 0.3 <= gap < 1.0, gap
        started = time.monotonic()
        await notifier.close(timeout=0.5)
        closed_in = time.monotonic() - started
        ticking.cancel()
    assert closed_in < 0.7, closed_in
    assert max(b - a for a, b in itertools.pairwise(ticks)) < 0.2
    assert notifier.pending == 0
    assert notifier.counts == {Outcome.DROPPED: 1}
    print(f"attempt gap {gap:.3f} s, close {closed_in:.3f} s")


async def test_a_hung_receiver_does_not_hold_up_another() -> None:
    async with asyncio.timeout(10), receiving(*[HANG] * 6) as hung, receiving() as healthy:
        notifier = Notifier(attempt_seconds=5.0)
        notifier.submit(crossing(hung.url))
        await hung.posted(1)
        notifier.submit(crossing(healthy.url, threshold="spent-100", percent=Decimal(100)))
        started = time.monotonic()
        await healthy.posted(1)
        while notifier.pending > 1:
            await asyncio.sleep(0.005)
        delivered_in = time.monotonic() - started
        await notifier.close(timeout=1.0)
    assert delivered_in < 1.0, delivered_in
    assert notifier.counts == {Outcome.DELIVERED: 1, Outcome.DROPPED: 1}


async def test_a_receiver_that_never_answers_is_given_up_after_the_last_attempt(
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kubetally.notify")
    async with asyncio.timeout(10), receiving(*[HANG] * 3) as receiver:
        notifier = Notifier(attempt_seconds=0.1, delays=(0.01, 0.01))
        started = time.monotonic()
        notifier.submit(crossing(receiver.url))
        assert await notifier.join(5)
        took = time.monotonic() - started
        await notifier.close()
    assert len(receiver.posts) == 3
    assert 0.3 <= took < 1.5, took  # 3 × 0.1 s attempts + 2 × 0.01 s waits (0.32 s), plus connects
    assert notifier.counts == {Outcome.FAILED: 1}
    assert [r.getMessage() for r in caplog.records] == [
        f"budget notification {GENERIC['id']} to 127.0.0.1:{receiver.port} given up after 3 attempts; "
        "last: no answer within 0.1 s"]


async def test_connection_errors_are_retried(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="kubetally.notify")
    with socket.socket() as unused:  # a port nothing listens on: bound, never listening
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
        async with asyncio.timeout(10):
            notifier = Notifier(attempt_seconds=1.0, delays=(0.01, 0.01))
            notifier.submit(crossing(f"http://127.0.0.1:{port}/{TOKEN}"))
            assert await notifier.join(5)
            await notifier.close()
    messages = [r.getMessage() for r in caplog.records]
    assert [m for m in messages if "attempt" in m and "next in" in m] == [
        f"budget notification {GENERIC['id']} to 127.0.0.1:{port}, attempt {n}/3: ConnectError; next in 0.01 s"
        for n in (1, 2)]
    assert messages[-1] == (f"budget notification {GENERIC['id']} to 127.0.0.1:{port} given up after 3 attempts; "
                            "last: ConnectError")
    assert notifier.counts == {Outcome.FAILED: 1}


async def test_the_pending_bound_drops_the_newest(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="kubetally.notify")
    async with asyncio.timeout(10), receiving(*[HANG] * 6) as receiver:
        notifier = Notifier(max_pending=2, attempt_seconds=5.0)
        first, second, third = (crossing(receiver.url, threshold=f"spent-{p}", percent=Decimal(p)) for p in (50, 80, 90))
        for each in (first, second, third):
            notifier.submit(each)
        assert notifier.pending == 2
        await receiver.posted(2)
        await asyncio.sleep(0.05)
        await notifier.close(timeout=1.0)
    assert sorted(post.headers["Idempotency-Key"] for post in receiver.posts) == [first.id, second.id]
    assert notifier.counts == {Outcome.DROPPED: 3}  # the newest at once, the two hung ones at close
    assert [r.getMessage() for r in caplog.records] == [
        f"budget notification {third.id} to 127.0.0.1:{receiver.port} dropped: 2 notifications are pending",
        "closing the budget notifier: 2 undelivered notification(s) abandoned"]
    notifier.submit(replace(third, threshold="spent-95", percent=Decimal(95)))
    assert notifier.counts[Outcome.DROPPED] == 4


async def test_the_url_is_never_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Every logger at DEBUG (httpx logs each request's URL at INFO, httpcore traces at DEBUG); the
    receiver's own access log (aiohttp, in this process only because the test is) is left out."""
    caplog.set_level(logging.DEBUG)
    async with asyncio.timeout(10), receiving(500, 200, 404) as receiver:
        notifier = Notifier(delays=FAST)
        notifier.submit(crossing(receiver.url))
        notifier.submit(crossing(receiver.url, "slack", threshold="forecast-100", percent=Decimal(100), basis="forecast"))
        assert await notifier.join(5)
        await notifier.close()
    assert len(receiver.posts) == 3
    messages = [r.getMessage() for r in caplog.records if not r.name.startswith("aiohttp")]
    assert not [m for m in messages if "s3cr3t" in m]
    assert sum(m.startswith(f"HTTP Request: POST http://127.0.0.1:{receiver.port}/… ") for m in messages) == 3
    assert not logging.getLogger("httpx").filters  # close() took its filter away
