"""Stored rollups of the ledger's hours (`engine.rollup` says what they are and why).

Tables, next to the facts in the ledger file:

    rollup_pods_<level>   engine.rollup.POD_COLUMNS per fingerprint, hour and group of the level
    rollup_nodes          engine.rollup.NODE_COLUMNS per fingerprint and node-hour
    rollup_hours          (cluster, hour_start, fingerprint, unmatched): the hours built

Invariants:
- The tables have the shape of the running code's `ROLLUP_VERSION` (recorded in `ledger_meta`);
  opening a ledger written by another version drops its rollups, which are then built again.
- An hour's rollup is written in the same transaction as its `rollup_hours` row, for every level
  at once, so an hour is either fully stored for a fingerprint or not at all.
- `write_hour` deletes the hour's rollups in its own transaction: rewritten facts are never read
  through stale rollups (the next `build` redoes the hour).
- An hour counts as stored for a fingerprint only when every cluster that has the hour in `hours`
  has it built (`covered`), so a query never mixes stored and live rows within one segment.

The ledger keeps the books only: which hours are built for which fingerprint (`missing`,
`covered`), the stored rows of a query's `engine.plan.RollupPlan` for the hours it holds
(`stored_views`), and the rows the engine built (`stages.build_rollups`) written in (`write_span`).
`DuckDBLedger.build_rollups` has them built over runs of at most `chunk_hours` missing hours at a
time (a day by default: at scale L ~240k container-hours, a few hundred MiB), so memory stays
bounded however long the ledger is.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb

from kubetally.engine import rollup
from kubetally.engine.plan import RollupPlan

HOUR = 3600


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Create the rollup tables; where a ledger holds those of another `ROLLUP_VERSION` (another
    shape), drop them first: rollups are derived data, and `build` stores them again."""
    row = con.execute("SELECT value FROM ledger_meta WHERE key = 'rollup_version'").fetchone()
    if row is None or row[0] != rollup.ROLLUP_VERSION:
        for table in [*_tables(), "rollup_hours"]:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute("INSERT OR REPLACE INTO ledger_meta VALUES ('rollup_version', ?)", [rollup.ROLLUP_VERSION])
    pods = ", ".join(f"{name} {kind}" for name, kind in rollup.POD_COLUMNS.items())
    nodes = ", ".join(f"{name} {kind}" for name, kind in rollup.NODE_COLUMNS.items())
    for level in rollup.LEVELS:
        con.execute(f"CREATE TABLE IF NOT EXISTS rollup_pods_{level} (fingerprint VARCHAR, {pods})")
    con.execute(f"CREATE TABLE IF NOT EXISTS rollup_nodes (fingerprint VARCHAR, {nodes})")
    con.execute("CREATE TABLE IF NOT EXISTS rollup_hours (cluster VARCHAR, hour_start BIGINT, "
                "fingerprint VARCHAR, unmatched BIGINT)")


def _tables() -> list[str]:
    return [f"rollup_pods_{level}" for level in rollup.LEVELS] + ["rollup_nodes"]


def forget_hour(cursor: duckdb.DuckDBPyConnection, cluster: str, hour_start: int) -> None:
    """Delete every rollup of one cluster's hour (inside the caller's transaction)."""
    for table in _tables():
        cursor.execute(f"DELETE FROM {table} WHERE coalesce(cluster, '') = ? AND segment_start >= ? "
                       "AND segment_start < ?", [cluster, hour_start, hour_start + HOUR])
    cursor.execute("DELETE FROM rollup_hours WHERE cluster = ? AND hour_start = ?", [cluster, hour_start])


def runs(hours: Iterable[int], limit: int | None = None) -> list[tuple[int, int]]:
    """Sorted hour starts → [start, end) runs of consecutive hours, each at most `limit` hours long."""
    out: list[tuple[int, int]] = []
    for hour in sorted(set(hours)):
        if out and out[-1][1] == hour and (limit is None or (hour - out[-1][0]) // HOUR < limit):
            out[-1] = (out[-1][0], hour + HOUR)
        else:
            out.append((hour, hour + HOUR))
    return out


def complement(spans: list[tuple[int, int]], start: int, end: int) -> list[tuple[int, int]]:
    """The parts of [start, end) outside the sorted, disjoint `spans`."""
    out: list[tuple[int, int]] = []
    cursor = start
    for a, b in spans:
        if a > cursor:
            out.append((cursor, min(a, end)))
        cursor = max(cursor, b)
    if cursor < end:
        out.append((cursor, end))
    return [(a, b) for a, b in out if a < b]


def intersect(a: list[tuple[int, int]], b: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """The parts common to two sorted lists of disjoint [start, end) spans."""
    out = [(max(x0, y0), min(x1, y1)) for x0, x1 in a for y0, y1 in b]
    return [(lo, hi) for lo, hi in out if lo < hi]


def in_runs(spans: list[tuple[int, int]], column: str = "segment_start") -> str:
    """SQL predicate: `column` lies in one of `spans` (integers from our own tables)."""
    if not spans:
        return "FALSE"
    return "(" + " OR ".join(f"({column} >= {int(a)} AND {column} < {int(b)})" for a, b in spans) + ")"


def covered(cursor: duckdb.DuckDBPyConnection, fingerprint: str, start: int, end: int) -> list[int]:
    """Hour starts within [start, end) (whole hours) stored for `fingerprint` for every cluster."""
    rows = cursor.execute(
        "SELECT h.hour_start FROM hours AS h LEFT JOIN rollup_hours AS r "
        "ON r.cluster = h.cluster AND r.hour_start = h.hour_start AND r.fingerprint = ? "
        "WHERE h.hour_start >= ? AND h.hour_start + 3600 <= ? "
        "GROUP BY h.hour_start HAVING count(r.hour_start) = count(*) ORDER BY h.hour_start",
        [fingerprint, start, end],
    ).fetchall()
    return [int(row[0]) for row in rows]


def stored_views(cursor: duckdb.DuckDBPyConnection, plan: RollupPlan, spans: list[tuple[int, int]]) -> rollup.Stored:
    """Temporary views on `cursor` of the rows stored for `plan` (its level and fingerprint) in
    `spans`, as `engine.rollup.Stored` names them."""
    stored = rollup.Stored(method=plan.method, level=plan.level)
    mine = f"fingerprint = '{_checked(plan.fingerprint)}'"
    pods, nodes = ", ".join(rollup.POD_COLUMNS), ", ".join(rollup.NODE_COLUMNS)
    cursor.execute(f"CREATE TEMP VIEW {stored.pods} AS SELECT {pods} FROM main.rollup_pods_{_level(plan.level)} "
                   f"WHERE {mine} AND {in_runs(spans)}")
    cursor.execute(f"CREATE TEMP VIEW {stored.nodes} AS SELECT {nodes} FROM main.rollup_nodes "
                   f"WHERE {mine} AND {in_runs(spans)}")
    cursor.execute(f"CREATE TEMP VIEW {stored.unmatched} AS SELECT unmatched FROM main.rollup_hours "
                   f"WHERE {mine} AND {in_runs(spans, 'hour_start')}")
    return stored


def _level(level: str) -> str:
    """A level is a key of `rollup.LEVELS`; anything else never reaches SQL text."""
    if level not in rollup.LEVELS:
        raise ValueError(f"not a rollup level: {level!r}; levels are {', '.join(rollup.LEVELS)}")
    return level


def _checked(fingerprint: str) -> str:
    """A fingerprint is hex from `rollup.fingerprint`; anything else never reaches SQL text."""
    if not fingerprint or any(ch not in "0123456789abcdef" for ch in fingerprint):
        raise ValueError(f"not a rollup fingerprint: {fingerprint!r}")
    return fingerprint


def missing(cursor: duckdb.DuckDBPyConnection, fingerprint: str) -> list[int]:
    """Hour starts that some cluster has in `hours` but not built for `fingerprint`."""
    rows = cursor.execute(
        "SELECT DISTINCT h.hour_start FROM hours AS h ANTI JOIN rollup_hours AS r "
        "ON r.cluster = h.cluster AND r.hour_start = h.hour_start AND r.fingerprint = ? ORDER BY 1",
        [fingerprint],
    ).fetchall()
    return [int(row[0]) for row in rows]


def drop_stale(cursor: duckdb.DuckDBPyConnection, keep: list[str]) -> None:
    """Delete the rows of every fingerprint not in `keep` (old prices, old rollup versions)."""
    marks = ", ".join("?" for _ in keep)
    where = f"fingerprint NOT IN ({marks})" if keep else "TRUE"
    for table in [*_tables(), "rollup_hours"]:
        cursor.execute(f"DELETE FROM {table} WHERE {where}", keep)


def write_span(cursor: duckdb.DuckDBPyConnection, built: rollup.Built, fingerprint: str,
               span: tuple[int, int]) -> None:
    """Store the rollups the engine built for [span) (`stages.build_rollups`) under `fingerprint`,
    replacing those stored for it, and record the span's hours as built, in the caller's transaction;
    then drop `built`'s tables."""
    a, b = span
    for table in _tables():
        cursor.execute(f"DELETE FROM {table} WHERE fingerprint = ? AND segment_start >= ? AND segment_start < ?",
                       [fingerprint, a, b])
    cursor.execute("DELETE FROM rollup_hours WHERE fingerprint = ? AND hour_start >= ? AND hour_start < ?",
                   [fingerprint, a, b])
    for level in rollup.LEVELS:
        cursor.execute(f"INSERT INTO rollup_pods_{level} BY NAME SELECT ? AS fingerprint, * FROM {built.pods(level)}",
                       [fingerprint])
    cursor.execute(f"INSERT INTO rollup_nodes BY NAME SELECT ? AS fingerprint, * FROM {built.nodes}", [fingerprint])
    cursor.execute(
        "INSERT INTO rollup_hours SELECT h.cluster, h.hour_start, ?, coalesce(u.unmatched, 0) FROM hours AS h "
        f"LEFT JOIN {built.unmatched} AS u ON u.cluster = h.cluster AND u.segment_start = h.hour_start "
        "WHERE h.hour_start >= ? AND h.hour_start < ?",
        [fingerprint, a, b],
    )
    for table in built.tables:
        cursor.execute(f"DROP TABLE {table}")
