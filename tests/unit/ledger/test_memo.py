"""The ledger's memo: bookkeeping read once per write generation, never stale, never across a snapshot.

- `Memo.get`: a value is kept for the generation read before it was computed; a write counted while
  it was computed keeps it out (the next reader computes again); a write forgets every value.
- `DuckDBLedger`: `hours`, `latest_hour` and `prices_stamp` follow every write (an hour written, a
  price version recorded) although they are kept between writes.
- `facts` with a plan: a day stored for the fingerprint is read as day rows; rewriting one of its
  hours drops the day's rollups in the same transaction, and the very next request reads that hour
  from its facts (the answer equals the facts-only engine's, rel 1e-9), memo or not. A request that
  begins while a writer holds the write lock reads without the memo, and its answer is the same.

Cluster: `tiny` over 26 hours from a UTC midnight (one whole day and two hours); prices: the topology's
default book (tests/unit/engine/topology.py); query: 26 h by day by namespace, Request.
"""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

from kubetally.bench.ledgers import batch_of
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.vocabulary import Method
from kubetally.domain.window import Window
from kubetally.engine import plan, rollup
from kubetally.engine.query import CostQuery
from kubetally.ledger.memo import Memo
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, tiny
from tests.unit.engine import topology
from tests.unit.ledger.test_rollups import answer, assert_same

H = 3600


def test_a_value_is_kept_for_its_generation_and_forgotten_by_a_write() -> None:
    memo, calls = Memo(), []

    def compute() -> int:
        calls.append(1)
        return len(calls)

    assert memo.get("k", memo.generation, compute) == 1
    assert memo.get("k", memo.generation, compute) == 1  # kept
    memo.wrote()
    assert memo.get("k", memo.generation, compute) == 2  # forgotten by the write

    def racing() -> int:
        memo.wrote()  # a write counted while the value was being read
        return compute()

    before = memo.generation
    assert memo.get("r", before, racing) == 3
    assert memo.get("r", memo.generation, compute) == 4  # not kept: computed again


def test_the_ledgers_bookkeeping_follows_every_write(tmp_path: Path) -> None:
    spec = dataclasses.replace(tiny(), hours=3)
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    assert ledger.latest_hour(spec.name) is None
    assert ledger.prices_stamp() == "0-0"
    for hour in range(spec.start, spec.end, H):
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 0.5, ingested_at=spec.end)
        assert ledger.latest_hour(spec.name) == hour
        assert sorted(ledger.hours(spec.name, spec.start, spec.end)) == list(range(spec.start, hour + H, H))
    assert list(ledger.hours(spec.name, spec.start + H, spec.start + 2 * H)) == [spec.start + H]
    ledger.write_hour(spec.name, spec.start, batch_of(fact_arrays(cluster, spec.start)), 1.0, ingested_at=spec.end)
    assert ledger.hours(spec.name, spec.start, spec.start + H)[spec.start].coverage == 1.0
    assert ledger.record_price_version("default", {"currency": "CNY"}, effective_from=0, recorded_at=17)
    assert ledger.prices_stamp() == "1-17"
    assert not ledger.record_price_version("default", {"currency": "CNY"}, effective_from=0, recorded_at=18)
    assert ledger.prices_stamp() == "1-17"
    ledger.close()


def test_a_rewritten_hour_is_read_from_its_facts_at_once_memo_or_not(tmp_path: Path) -> None:
    spec = dataclasses.replace(tiny(), hours=26)
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in range(spec.start, spec.end, H):
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    book = topology.default_book()
    ledger.build_rollups(book)
    query = CostQuery(window=Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(spec.end, UTC)),
                      step_seconds=rollup.DAY, aggregate=parse_aggregate("namespace"), method=Method.REQUEST)
    planned = plan.plan_cost(query, book)
    assert planned is not None
    start, end = spec.start, spec.end

    def day_rows() -> int:
        with ledger.facts(start, end, plan=planned) as facts:
            assert facts.stored is not None
            found = facts.con.execute(f"SELECT count(*) FROM {facts.stored.pods} "
                                      f"WHERE segment_end - segment_start > {H}").fetchone()
        return int(found[0]) if found else 0

    assert day_rows() > 0  # the whole first day is read as day rows
    assert day_rows() > 0  # and again, from the memo
    assert_same(answer(ledger, book, query, stored=False)[0], answer(ledger, book, query, stored=True)[0])
    rewritten = spec.start + 7 * H
    ledger.write_hour(spec.name, rewritten, batch_of(fact_arrays(cluster, rewritten)), 1.0, ingested_at=spec.end)
    assert day_rows() == 0  # the day's rollups are gone: no day row may be read
    assert_same(answer(ledger, book, query, stored=False)[0], answer(ledger, book, query, stored=True)[0])
    with ledger._write_lock:  # a writer mid-transaction: the request reads without the memo
        assert day_rows() == 0
        assert_same(answer(ledger, book, query, stored=False)[0], answer(ledger, book, query, stored=True)[0])
    ledger.build_rollups(book)
    assert day_rows() > 0
    assert_same(answer(ledger, book, query, stored=False)[0], answer(ledger, book, query, stored=True)[0])
    ledger.close()
