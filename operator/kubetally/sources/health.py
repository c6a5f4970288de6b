"""What we last knew of the metrics store, so that nothing has to ask it inline to find out.

Why: a hung store (a stopped process, a black-holed network) answers nothing, so any health check
that calls it waits as long as its timeout. `/readyz` must answer within a second, and the ingest
loop must notice when the store is back without polling it in a tight loop. So the state is kept
here, in memory, and fed by:

- every attempt of the Prometheus client (`record_success` / `record_failure`: an answer of any
  kind that is not a retryable failure is a success, a timeout, a connection error or a 5xx a
  failure);
- `probe_loop`, a background task that asks the store a trivial query every `interval` seconds
  (every `interval_down` seconds while it is down), each probe with its own deadline.

`up` is None until the first outcome. `wait_recovery` lets the ingest loop sleep until the store
answers again, so the hours that closed during an outage are backfilled within a probe interval of
its recovery rather than at the next ingest tick.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

#: Seconds between two probes while the store answers, and while it does not.
PROBE_INTERVAL_SECONDS = 5.0
PROBE_INTERVAL_DOWN_SECONDS = 1.0


class StoreHealth:
    """The last known state of one metrics store; cheap to read, never does I/O."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.up: bool | None = None
        self.since: float = clock()
        self.last_error = ""
        #: How many times the store came back after being down.
        self.recoveries = 0
        self._recovery: asyncio.Event | None = None

    def record_success(self) -> None:
        """The store answered."""
        if self.up is False:
            log.warning("the metrics store answers again after %.0f s", self._clock() - self.since)
            self.recoveries += 1
            if self._recovery is not None:
                self._recovery.set()
                self._recovery = None
        if self.up is not True:
            self.up, self.since = True, self._clock()

    def record_failure(self, error: str) -> None:
        """The store did not answer, or answered with a retryable failure; `error` says how."""
        self.last_error = error
        if self.up is not False:
            log.warning("the metrics store is unreachable: %s", error)
            self.up, self.since = False, self._clock()

    async def ready(self) -> bool:
        """Whether the process can answer: the store's state is known (probed at least once).

        A store known to be down does not make us unready: answers then come from the ledger,
        with coverage < 1 and a warning (a 503 Status when the ledger holds nothing of the window),
        which is more use to a user than a Service without endpoints."""
        return self.up is not None

    def describe(self) -> str:
        """One line for /readyz: `ok`, `starting: ...` or `degraded: ...`."""
        if self.up is None:
            return "starting: the metrics store has not been probed yet"
        if self.up:
            return "ok"
        return (
            f"degraded: the metrics store has not answered for {self._clock() - self.since:.0f} s "
            f"({self.last_error}); answers come from the ledger, with coverage < 1 and a warning"
        )

    async def wait_recovery(self, timeout: float) -> None:
        """Sleep `timeout` seconds, or less if the store comes back (down, then up) meanwhile."""
        if self._recovery is None:
            self._recovery = asyncio.Event()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._recovery.wait(), timeout)


async def probe_loop(
    probe: Callable[[], Awaitable[bool]],
    health: StoreHealth,
    *,
    interval: float = PROBE_INTERVAL_SECONDS,
    interval_down: float = PROBE_INTERVAL_DOWN_SECONDS,
) -> None:
    """Probe the store forever; `probe` has its own deadline and records its outcome in `health`
    (as `PrometheusClient.ready` does). A probe that still raises is recorded as a failure."""
    while True:
        try:
            await probe()
        except Exception as error:  # a probe must never end the loop
            health.record_failure(f"probe failed: {type(error).__name__}: {error}")
        await asyncio.sleep(interval if health.up else interval_down)
