"""CostWeights versions in the ledger, and the PriceBook they make.

`record_cost_weights` validates a CostWeights spec and appends it as a version when it changed:
the first version of a name prices every hour (there is no other price list); a later change
prices from its `effectiveFrom`, or else from the next full hour after it was observed, so hours
already priced keep their prices (history is never silently rewritten). `price_book` rebuilds the
engine's PriceBook from the stored versions; `PriceBooks` keeps the books of one ledger and rebuilds
them only when a version is added, so answering a request does no pydantic work.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from typing import Protocol

from kubetally.domain.prices import PriceBook
from kubetally.domain.resources import parse_cost_weights
from kubetally.domain.timeparse import from_epoch
from kubetally.ledger.store import Ledger, PriceRecord

HOUR = 3600


def record_cost_weights(ledger: Ledger, name: str, spec: Mapping[str, object], *, observed_at: int) -> bool:
    """Validate `spec` (SpecError if invalid) and store it as a new version if it changed."""
    parsed = parse_cost_weights(spec)
    existing = ledger.price_versions(name)
    if existing and existing[-1].spec == dict(spec) and parsed.effective_from is None:
        return False
    if parsed.effective_from is not None:
        effective = int(parsed.effective_from.timestamp())
    elif existing:
        effective = -(-observed_at // HOUR) * HOUR
    else:
        effective = 0
    return ledger.record_price_version(name, dict(spec), effective_from=effective, recorded_at=observed_at)


class PriceVersions(Protocol):
    """The part of a ledger a PriceBook is built from (a `Ledger`, or `DuckDBLedger`)."""

    def price_versions(self, name: str) -> list[PriceRecord]: ...


def price_book(ledger: PriceVersions, name: str) -> PriceBook | None:
    """The PriceBook of CostWeights `name`, or None if it was never recorded."""
    records = ledger.price_versions(name)
    if not records:
        return None
    return PriceBook(versions=tuple(
        parse_cost_weights(record.spec).to_price_version(name=name, effective_from=from_epoch(record.effective_from))
        for record in records
    ))


class _StampedVersions(PriceVersions, Protocol):
    def prices_stamp(self) -> str: ...


class PriceBooks:
    """The PriceBook of each CostWeights name of one ledger, rebuilt only when its prices change.

    Why: `price_book` reads every version (a DuckDB query, ~1.2 ms) and validates each spec with
    pydantic (~50 µs a version), and every request needs one or two books that change only when a
    CostWeights does. The ledger's `prices_stamp` (count and newest `recorded_at` of the append-only
    price_versions table) changes with every version added, so books are kept per stamp: while
    nothing changed a request costs one stamp query and no parsing. A book is stored under a stamp
    read before its versions were, so it is never older than its stamp (threads may race: the worst
    is one more rebuild). A name found missing is remembered too (a cluster without a `default`
    CostWeights asks for it on every request), but only `MISSES_KEPT` of them per stamp: a request
    naming random CostWeights must not grow this cache.
    """

    MISSES_KEPT = 16

    def __init__(self, ledger: _StampedVersions) -> None:
        self._ledger = ledger
        self._lock = threading.Lock()
        self._stamp = ""
        self._books: dict[str, PriceBook] = {}
        self._missing: set[str] = set()

    def books(self, *names: str) -> tuple[PriceBook | None, ...]:
        """The PriceBook of each CostWeights of `names` as the ledger holds it now (None for a name
        never recorded), all at one stamp."""
        stamp = self._ledger.prices_stamp()
        with self._lock:
            if stamp != self._stamp:
                self._stamp, self._books, self._missing = stamp, {}, set()
            cached = [self._books.get(name) for name in names]
            missing = [name in self._missing for name in names]
        out: list[PriceBook | None] = []
        for name, book, known_missing in zip(names, cached, missing, strict=True):
            if book is None and not known_missing:
                book = price_book(self._ledger, name)
                with self._lock:
                    if stamp == self._stamp and book is not None:
                        self._books[name] = book
                    elif stamp == self._stamp and len(self._missing) < self.MISSES_KEPT:
                        self._missing.add(name)
            out.append(book)
        return tuple(out)
