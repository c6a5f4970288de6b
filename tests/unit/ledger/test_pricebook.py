"""PriceBooks: the books of a ledger are parsed once per price stamp, and follow every new version.

Hand-derived: spec `big` prices nodes labelled instance-type=big at `big` per hour; v1 (0.8) is the
first version (prices from 0), v2 (1.6) is observed at T0 + 30 min and so prices from T0 + 1 h.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest

from kubetally.ledger import pricebook
from kubetally.ledger.pricebook import PriceBooks, record_cost_weights
from kubetally.ledger.store import DuckDBLedger

T0 = 1_748_736_000 + 17  # 2025-06-01T00:00:17Z: unaligned on purpose
H = 3600


def spec(big: str) -> dict[str, object]:
    return {"currency": "CNY", "nodePrices": [
        {"selector": {"matchLabels": {"node.kubernetes.io/instance-type": "big"}}, "hourly": big}]}


def node_prices(book: Any) -> list[tuple[int, Decimal]]:
    return [(int(v.effective_from.timestamp()), v.node_rules[0].hourly) for v in book.versions]


def test_books_are_parsed_once_per_stamp_and_follow_new_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    parsed: list[object] = []
    real = pricebook.parse_cost_weights

    def counting(spec: Any) -> Any:
        parsed.append(spec)
        return real(spec)

    ledger = DuckDBLedger(":memory:")
    books = PriceBooks(ledger)
    assert books.books("default", "custom") == (None, None)
    assert record_cost_weights(ledger, "default", spec("0.8"), observed_at=T0 - 100)
    monkeypatch.setattr(pricebook, "parse_cost_weights", counting)

    first = books.books("default")[0]
    assert first is not None
    assert node_prices(first) == [(0, Decimal("0.8"))]
    assert len(parsed) == 1
    for _ in range(5):  # nothing changed: the same book, no parsing
        assert books.books("default")[0] is first
    assert len(parsed) == 1

    assert record_cost_weights(ledger, "default", spec("1.6"), observed_at=T0 + 1800)
    second = books.books("default")[0]
    assert second is not None
    assert node_prices(second) == [(0, Decimal("0.8")), (1_748_739_600, Decimal("1.6"))]
    assert len(parsed) == 4  # the new spec validated as it is recorded, then both versions once
    assert books.books("default")[0] is second
    assert len(parsed) == 4


def test_missing_names_are_remembered_per_stamp_and_boundedly(monkeypatch: pytest.MonkeyPatch) -> None:
    """A missing name is asked of the ledger once per stamp (a cluster without `default` asks on every
    request); at most MISSES_KEPT (16) of them are kept: after "custom", 15 of 50 random names are kept
    (asked once) and 35 are asked in each of two rounds; a new version forgets every miss, and the name
    now recorded is found."""
    ledger = DuckDBLedger(":memory:")
    books = PriceBooks(ledger)
    asked: list[str] = []
    real = ledger.price_versions

    def counting(name: str) -> Any:
        asked.append(name)
        return real(name)

    monkeypatch.setattr(ledger, "price_versions", counting)
    for _ in range(3):
        assert books.books("custom") == (None,)
    assert asked == ["custom"]
    names = [f"nope-{n}" for n in range(50)]
    for _ in range(2):
        for name in names:
            assert books.books(name) == (None,)
    assert len(asked) == 1 + 15 + 2 * 35  # "custom" took one of the 16 places
    assert len(books._missing) == 16
    assert not books._books
    assert record_cost_weights(ledger, "custom", spec("2"), observed_at=T0)
    found = books.books("custom")[0]
    assert found is not None
    assert node_prices(found) == [(0, Decimal("2"))]
    assert books._missing == set()
    assert set(books._books) == {"custom"}
