"""Where the engine finds its facts: the `Facts` handle on four relations of a DuckDB connection.

The fact vocabulary itself (columns, units, batches, the loader) is `kubetally.facts`; this module
holds only what is the engine's: the handle naming the relations one computation reads, with the
stored rollup rows (`engine.rollup`) for the hours those relations leave out. The ledger hands the
engine its own tables or views with the columns of `kubetally.facts.schema`; `load_facts` builds
them from records (tests, small inputs) through the one loader, `kubetally.facts.load`.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import duckdb

from kubetally.engine.rollup import Stored
from kubetally.facts.batch import Record
from kubetally.facts.load import load_records


@dataclass(frozen=True, slots=True)
class Facts:
    """Where the engine finds the four fact relations: a DuckDB connection and relation names.

    The engine creates (and drops) temporary tables on `con`, so `con` must belong to one
    computation at a time: callers that share a database hand each computation its own cursor
    (`connection.cursor()`). The names are trusted identifiers chosen by our own code (tables or
    views), never user input. With `stored`, the fact relations hold only the hours not stored.
    """

    con: duckdb.DuckDBPyConnection
    containers: str = "container_facts"
    nodes: str = "node_facts"
    volumes: str = "volume_facts"
    quotas: str = "quota_facts"
    #: Stored rollup rows for the hours the four relations leave out (`engine.rollup`), or None.
    stored: Stored | None = None
    #: False when the four relations hold no rows at all (every hour is `stored`, nothing is live): the
    #: engine then reads the stored rows alone and runs no stage over empty facts.
    live: bool = True
    #: True when the caller rolls `con`'s transaction back once the answer is computed
    #: (`DuckDBLedger.facts`): that drops every temporary table and view the engine made, so the
    #: engine leaves them instead of dropping each one (a dozen statements, ~2.5 ms of an answer).
    rolled_back: bool = False


def load_facts(
    *,
    containers: Iterable[Record] = (),
    nodes: Iterable[Record] = (),
    volumes: Iterable[Record] = (),
    quotas: Iterable[Record] = (),
    con: duckdb.DuckDBPyConnection | None = None,
) -> Facts:
    """Load records (dicts keyed by the columns of `kubetally.facts.schema`; missing keys are NULL)
    into DuckDB (`con`, or a new in-memory database) and hand the engine its relations."""
    facts = Facts(con=con if con is not None else duckdb.connect())
    load_records(
        facts.con,
        {"container_facts": containers, "node_facts": nodes, "volume_facts": volumes, "quota_facts": quotas},
        {"container_facts": facts.containers, "node_facts": facts.nodes, "volume_facts": facts.volumes,
         "quota_facts": facts.quotas},
    )
    return facts
