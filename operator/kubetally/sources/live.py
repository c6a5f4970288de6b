"""Live collection under a budget: an API request never waits on the metrics store for long.

Why: the live parts of a window (its partial edge hours, hours the ledger has not got yet) are
collected from the store while the request waits. A store that hangs (a stopped process) or
refuses connections must not hang the request: the whole live collection of one request gets
`SourceConfig.live_budget_seconds` (default 3 s), on top of the client's per-attempt deadline.

When the budget runs out, or the store is unavailable, the segments collected so far are kept and
the rest are answered as *not collected*: their hours count with coverage 0 and the answer carries
a warning saying which parts are missing. The ledger's hours still answer exactly, so a user gets
`cost(ledger hours)` with coverage < 1 rather than a hang or an error; only when nothing of the
window can be said (no ledger hour and no live part) does the caller answer 503.

Segments are collected one after the other (each one's queries run concurrently within the
client's slots), so a budget cut keeps every segment finished before it.

Sixteen clients asking "the last 7 days by day" in the same minute ask for the very same live
parts: the partial hour 7 days ago and the current hour up to the minute. Each part is therefore
collected once for all of them (`SharedSegments`: concurrent requests for one segment of one store
await one collection; a collected segment is reused for `REUSE_SECONDS`, bounded to `REUSE_ENTRIES`
segments). Without it, under load most answers lost their live edges to the budget while the store
was healthy. A request that gives up (its budget ran out) leaves the collection running for the
others; the last one to give up cancels it. Failures are never reused.
"""

from __future__ import annotations

import asyncio
import time
import weakref
from collections.abc import Sequence
from dataclasses import dataclass

from kubetally.domain.errors import SourceUnavailable
from kubetally.domain.timeparse import format_rfc3339
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.collect import RangeSource, Segment, collect_segment

#: Parts of a window named one by one in a warning; more are summarised by their count.
_NAMED_PARTS = 3


@dataclass(frozen=True, slots=True)
class LiveFacts:
    """One entry per requested segment (None where it was not collected), the segments missing,
    and why they are (`reason`, None when every segment was collected)."""

    segments: tuple[Segment | None, ...]
    missing: tuple[tuple[int, int], ...] = ()
    reason: str | None = None

    @property
    def collected(self) -> int:
        """How many segments were collected."""
        return sum(segment is not None for segment in self.segments)

    @property
    def warning(self) -> str | None:
        """The warning an answer carries for its missing live parts (None when none is missing)."""
        if self.reason is None:
            return None
        named = ", ".join(f"{format_rfc3339(a)}–{format_rfc3339(b)}" for a, b in self.missing[:_NAMED_PARTS])
        more = len(self.missing) - _NAMED_PARTS
        several = len(self.missing) != 1
        return (
            f"{self.reason}: the live part{'s' if several else ''} {named}{f' and {more} more' if more > 0 else ''} "
            f"of the window count{'' if several else 's'} with coverage 0 (cost missing, not 0); "
            "the rest comes from the ledger"
        )


#: How long a collected live segment is reused by later requests, in seconds (monotonic clock).
REUSE_SECONDS = 30.0
#: Most collected segments kept for reuse per store.
REUSE_ENTRIES = 256


class SharedSegments:
    """One store's live segments: collected once for every concurrent request, reused briefly."""

    def __init__(self) -> None:
        self._done: dict[tuple[str, int, int], tuple[float, Segment]] = {}
        self._running: dict[tuple[str, int, int], tuple[asyncio.Task[Segment], list[int]]] = {}

    async def get(self, source: RangeSource, config: SourceConfig, a: int, b: int) -> Segment:
        """The segment [a, b) of `config.cluster`: reused, joined, or collected now."""
        key = (config.cluster, a, b)
        now = time.monotonic()
        found = self._done.get(key)
        if found is not None and now - found[0] < REUSE_SECONDS:
            return found[1]
        if key not in self._running:
            task = asyncio.get_running_loop().create_task(collect_segment(source, config, a, b))
            self._running[key] = (task, [0])
            task.add_done_callback(lambda done: self._finish(key, done))
        task, waiters = self._running[key]
        waiters[0] += 1
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            waiters[0] -= 1
            if waiters[0] == 0 and not task.done():
                task.cancel()
            raise

    def _finish(self, key: tuple[str, int, int], task: asyncio.Task[Segment]) -> None:
        self._running.pop(key, None)
        if task.cancelled() or task.exception() is not None:
            return
        self._done[key] = (time.monotonic(), task.result())
        while len(self._done) > REUSE_ENTRIES:
            self._done.pop(next(iter(self._done)))


_SHARED: weakref.WeakKeyDictionary[RangeSource, SharedSegments] = weakref.WeakKeyDictionary()


def shared(source: RangeSource) -> SharedSegments:
    """The shared segments of `source` (one per store client, gone with it)."""
    try:
        found = _SHARED.get(source)
        if found is None:
            found = _SHARED[source] = SharedSegments()
    except TypeError:  # a source that cannot be weakly referenced or hashed shares nothing
        return SharedSegments()
    return found


async def collect_live(
    source: RangeSource, config: SourceConfig, segments: Sequence[tuple[int, int]]
) -> LiveFacts:
    """Collect `segments` within `config.live_budget_seconds` in all; never raises SourceUnavailable.

    Returns every segment collected before the budget ran out or the store failed, None for the
    others, and why they are missing."""
    done: list[Segment] = []
    budget = config.live_budget_seconds
    segments_of = shared(source)
    try:
        async with asyncio.timeout(budget):
            for a, b in segments:
                done.append(await segments_of.get(source, config, a, b))
        return LiveFacts(segments=tuple(done))
    except TimeoutError:
        reason = f"the metrics store did not answer within the live budget of {budget:g} s"
    except SourceUnavailable as error:
        reason = f"the metrics store is unavailable ({str(error).split('; query: ')[0]})"
    missing = tuple(segments[len(done):])
    return LiveFacts(segments=(*done, *(None for _ in missing)), missing=missing, reason=reason)
