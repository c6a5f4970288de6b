"""Bookkeeping read from the ledger, kept until the next write.

Why: every request reads the same small facts about the ledger before it computes anything (which
hours are ingested, the newest one, the prices stamp, which hours and days are stored for its
rollup fingerprint): five queries, ~6 ms of a 37 ms answer at scale M (issue 15). They change only
when the ledger is written, and this process is the ledger's only writer: DuckDB's file lock keeps
every other process out, and every write of `DuckDBLedger` ends in `Memo.wrote`, under the ledger's
write lock, after its COMMIT.

Each value is kept with the write generation it was read at; the next write forgets them all.
Consistency, the two uses:

- Reads outside a transaction (hours, newest hour, prices stamp) take the generation *before* they
  query. A value is stored only if no write was counted meanwhile; if a write committed but was not
  counted yet, the stored value is newer than its generation, which is harmless: a later reader gets
  what it would have read a moment later.
- Reads inside `DuckDBLedger.facts` must match that transaction's snapshot exactly (a stored day
  whose rollups a rewrite just dropped would otherwise be read as stored, and its facts left out).
  There the transaction begins, and takes its snapshot (DuckDB takes it at the first read of a
  table, not at BEGIN), while the write lock is held (only if it is free at that moment: a reader
  never waits for a writer), so no write is half done and the snapshot is the state of the
  generation read then; values are computed with that transaction's cursor. When the lock is busy,
  the request reads without the memo.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable
from typing import TypeVar

_T = TypeVar("_T")


class Memo:
    """Values keyed by what they answer, valid for one write generation."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._generation = 0
        self._values: dict[Hashable, tuple[int, object]] = {}

    @property
    def generation(self) -> int:
        return self._generation

    def wrote(self) -> None:
        """A write committed: forget everything (call under the ledger's write lock, after COMMIT)."""
        with self._lock:
            self._generation += 1
            self._values.clear()

    def get(self, key: Hashable, generation: int, compute: Callable[[], _T]) -> _T:
        """The value of `key` at `generation` (read by the caller before `compute` queries), computed
        and kept if it is not known yet and no write was counted since."""
        with self._lock:
            hit = self._values.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]  # type: ignore[return-value]
        value = compute()
        with self._lock:
            if self._generation == generation:
                self._values[key] = (generation, value)
        return value
