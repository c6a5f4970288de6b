"""A bounded, expiring cache of answers that also merges identical lookups in flight.

Why cache at all: every request would otherwise cost one TokenReview and one or more
SubjectAccessReviews (one per namespace for a partial viewer) before any cost is computed. Why only
for `ttl_seconds`: a cached "allowed" outlives a revoked RoleBinding or a deleted token for at most
that long; the expiry counts from when the question was sent (not when the answer came), so an
answer is never used more than `ttl_seconds` after the moment it describes. Denials are cached the
same way (a caller without a grant retrying in a loop costs one review per TTL), so a new grant also
takes up to `ttl_seconds` to show. Failures are never cached: the next request asks again.

Why bounded: the keys come from callers (any string can be sent as a token), so without a bound a
stream of made-up tokens would grow memory without end; past `max_entries` the least recently used
entry goes. Why single-flight: a dashboard opening 20 panels at once sends 20 identical requests;
they share one review instead of 20 (and a burst cannot multiply the load on the apiserver).
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class AnswerCache(Generic[K, V]):
    """`get(key, fetch)`: the cached answer for `key`, else the answer of `fetch()`, shared by every
    concurrent caller of the same key and kept for `ttl_seconds` by `clock` (seconds, monotonic)."""

    def __init__(self, *, ttl_seconds: float, max_entries: int, clock: Callable[[], float]) -> None:
        if ttl_seconds < 0 or max_entries < 0:
            raise ValueError("ttl_seconds and max_entries must be >= 0")
        self.ttl_seconds = ttl_seconds
        self.max_entries = max_entries
        self._clock = clock
        #: key → (expiry instant by `clock`, answer); oldest use first.
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._inflight: dict[K, asyncio.Task[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def peek(self, key: K) -> tuple[V] | None:
        """(answer,) when a fresh answer is cached (and marks it recently used), else None."""
        entry = self._entries.get(key)
        if entry is None:
            return None
        expires, value = entry
        if self._clock() >= expires:
            del self._entries[key]
            return None
        self._entries.move_to_end(key)
        return (value,)

    async def get(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        hit = self.peek(key)
        if hit is not None:
            return hit[0]
        task = self._inflight.get(key)
        if task is None:
            task = asyncio.create_task(self._fetch(key, fetch))
            self._inflight[key] = task
            task.add_done_callback(_consume)
        # shield: one caller giving up (a client hung up) must not cancel the lookup the others wait on.
        return await asyncio.shield(task)

    async def _fetch(self, key: K, fetch: Callable[[], Awaitable[V]]) -> V:
        asked = self._clock()
        try:
            value = await fetch()
        finally:
            self._inflight.pop(key, None)
        if self.max_entries and self.ttl_seconds > 0:
            self._entries[key] = (asked + self.ttl_seconds, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)
        return value


def _consume(task: asyncio.Task[object]) -> None:
    """Mark a failure as seen even when every waiter was cancelled (no 'never retrieved' noise)."""
    if not task.cancelled():
        task.exception()
