"""Every call to the store has a deadline, and its outcome is known state (issue 12, bug 5).

A *hung* store is a loopback socket that listens but never accepts: the kernel completes the TCP
handshake into its backlog, exactly as for a Prometheus stopped with SIGSTOP, and no byte ever comes
back. A *dead* store is a loopback port nobody listens on (connection refused). Bounds are asserted
with generous slack (a loaded CI machine), the point being "a fraction of a second", not "forever".
"""

from __future__ import annotations

import asyncio
import itertools
import socket
import time
from collections.abc import Iterator
from random import Random

import httpx
import pytest

from kubetally.domain.errors import SourceUnavailable
from kubetally.processes import free_port
from kubetally.sources.health import StoreHealth, probe_loop
from kubetally.sources.prometheus import PrometheusClient
from tests.unit.sources.test_prometheus import RecordingSleep, matrix, sequence


@pytest.fixture
def hung_url() -> Iterator[str]:
    """A store that accepts connections (backlog) and never answers."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(64)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"


def dead_url() -> str:
    return f"http://127.0.0.1:{free_port()}"


async def test_each_attempt_on_a_hung_store_ends_at_its_deadline(hung_url: str) -> None:
    """2 attempts of 0.3 s (the backoff is recorded, not slept): about 0.6 s, then one clear error."""
    health = StoreHealth()
    sleep = RecordingSleep()
    async with PrometheusClient(hung_url, timeout_seconds=0.3, retries=1, sleep=sleep, random=Random(1),
                                health=health) as client:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match=r"after 2 attempts; last error: no answer within 0.3s"):
            await client.query_range("up", 0, 60, 60)
        elapsed = time.monotonic() - started
    assert 0.55 < elapsed < 2.0
    assert len(sleep.delays) == 1
    assert health.up is False
    assert health.last_error == "no answer within 0.3s"


async def test_a_probe_of_a_hung_store_answers_false_within_its_own_deadline(hung_url: str) -> None:
    health = StoreHealth()
    async with PrometheusClient(hung_url, timeout_seconds=60, probe_timeout_seconds=0.3, health=health) as client:
        started = time.monotonic()
        assert await client.ready() is False
        assert time.monotonic() - started < 1.5
    assert (health.up, health.last_error) == (False, "no answer to a probe within 0.3s")


async def test_a_dead_store_fails_fast_and_says_so() -> None:
    health = StoreHealth()
    async with PrometheusClient(dead_url(), retries=2, sleep=RecordingSleep(), health=health) as client:
        started = time.monotonic()
        with pytest.raises(SourceUnavailable, match="after 3 attempts; last error: ConnectError"):
            await client.query_range("up", 0, 60, 60)
        assert await client.ready() is False
        assert time.monotonic() - started < 2.0
    assert health.up is False
    assert health.last_error.startswith("ConnectError")


def test_connecting_has_its_own_shorter_deadline() -> None:
    client = PrometheusClient("http://prometheus.test:9090", timeout_seconds=60, connect_timeout_seconds=2)
    assert (client._client.timeout.connect, client._client.timeout.read) == (2.0, 60.0)
    tiny = PrometheusClient("http://prometheus.test:9090", timeout_seconds=0.5, connect_timeout_seconds=2)
    assert tiny._client.timeout.connect == 0.5  # never longer than the whole attempt


@pytest.mark.parametrize("bad", [{"timeout_seconds": 0}, {"connect_timeout_seconds": -1}, {"probe_timeout_seconds": 0}])
def test_deadlines_must_be_positive(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="timeouts must be > 0"):
        PrometheusClient("http://prometheus.test:9090", **bad)


async def test_answers_and_failures_are_recorded_and_a_recovery_counted() -> None:
    handler, _ = sequence(httpx.ConnectError("refused"), httpx.Response(503, text="starting"), matrix())
    health = StoreHealth()
    async with PrometheusClient("http://prometheus.test:9090", transport=httpx.MockTransport(handler),
                                sleep=RecordingSleep(), random=Random(7), health=health) as client:
        assert health.up is None
        assert await client.query_range("up", 0, 60, 60) == []
    assert (health.up, health.recoveries) == (True, 1)
    assert health.last_error.startswith("HTTP 503")


async def test_the_state_reads_from_memory_and_says_what_is_known() -> None:
    now = [100.0]
    health = StoreHealth(clock=lambda: now[0])
    assert (await health.ready(), health.describe()) == (False, "starting: the metrics store has not been probed yet")
    health.record_success()
    assert (await health.ready(), health.describe()) == (True, "ok")
    health.record_failure("no answer within 3s")
    now[0] = 142.4
    assert await health.ready() is True  # answers then come from the ledger: still worth routing to
    assert health.describe() == ("degraded: the metrics store has not answered for 42 s (no answer within 3s); "
                                 "answers come from the ledger, with coverage < 1 and a warning")


async def test_wait_recovery_ends_when_the_store_comes_back() -> None:
    health = StoreHealth()
    health.record_failure("refused")
    waiter = asyncio.create_task(health.wait_recovery(30))
    await asyncio.sleep(0.01)
    health.record_failure("refused again")  # still down: keeps waiting
    await asyncio.sleep(0.01)
    assert not waiter.done()
    health.record_success()
    await asyncio.wait_for(waiter, 1)
    assert health.recoveries == 1
    started = time.monotonic()
    await health.wait_recovery(0.05)  # no outage: simply the timeout
    assert time.monotonic() - started >= 0.05


async def test_the_probe_loop_keeps_the_state_current_and_survives_a_raising_probe() -> None:
    health = StoreHealth()
    outcomes = itertools.chain([True, False, RuntimeError("boom")], itertools.repeat(True))

    async def probe() -> bool:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        if outcome:
            health.record_success()
        else:
            health.record_failure("no")
        return outcome

    task = asyncio.create_task(probe_loop(probe, health, interval=0.01, interval_down=0.01))
    seen: list[bool | None] = [health.up]
    try:
        async with asyncio.timeout(5):
            while health.recoveries == 0:
                await asyncio.sleep(0)
                if seen[-1] != health.up:
                    seen.append(health.up)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
    assert seen == [None, True, False, True]
    assert health.last_error == "probe failed: RuntimeError: boom"
