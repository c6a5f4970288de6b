"""Stored rollups of the ledger's hours (`engine.rollup` says what they are and why).

Tables, next to the facts in the ledger file:

    rollup_pods_<level>   engine.rollup.POD_COLUMNS per fingerprint, hour and group (hourly levels)
    rollup_days_<level>   the same per UTC day (every level; labels too at the labels and pod levels)
    rollup_nodes          engine.rollup.NODE_COLUMNS per fingerprint and node-hour
    rollup_days_nodes     the same per node-day
    rollup_hours          (cluster, hour_start, fingerprint, unmatched): the hours built
    rollup_days           (cluster, day_start, fingerprint): the days compacted, whose day rows answer

Invariants:
- The tables have the shape of the running code's `ROLLUP_VERSION` (recorded in `ledger_meta`);
  opening a ledger written by another version drops its rollups, which are then built again.
- An hour's rollup is written in the same transaction as its `rollup_hours` row, for every level
  at once, so an hour is either fully stored for a fingerprint or not at all.
- `write_hour` deletes the rollups of a rewritten hour's whole day (every level, every grain) in its
  own transaction: rewritten facts are never read through stale rollups (the next `build` redoes the
  day). A new hour has no rollups, and nothing else is touched.
- A day's rows are read only once the day is compacted (`compact`): all 24 of its hours are in
  `hours` and built for the fingerprint. Until then a daily level holds one part per build run of the
  day (rows by pod for the run's hours), and compaction folds the parts into one row per group.
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
        for table in [*_tables(), *_bookkeeping(), *(f"rollup_pods_{level}" for level in rollup.LEVELS)]:
            con.execute(f"DROP TABLE IF EXISTS {table}")
        con.execute("INSERT OR REPLACE INTO ledger_meta VALUES ('rollup_version', ?)", [rollup.ROLLUP_VERSION])
    pods = ", ".join(f"{name} {kind}" for name, kind in rollup.POD_COLUMNS.items())
    nodes = ", ".join(f"{name} {kind}" for name, kind in rollup.NODE_COLUMNS.items())
    for level in rollup.HOURLY:
        con.execute(f"CREATE TABLE IF NOT EXISTS {_hours_of(level)} (fingerprint VARCHAR, {pods})")
    for level, kept in rollup.LEVELS.items():
        labels = f", labels {rollup.LABELS_TYPE}" if "labels" in kept else ""
        con.execute(f"CREATE TABLE IF NOT EXISTS {_days_of(level)} (fingerprint VARCHAR, {pods}{labels})")
    con.execute(f"CREATE TABLE IF NOT EXISTS rollup_nodes (fingerprint VARCHAR, {nodes})")
    con.execute(f"CREATE TABLE IF NOT EXISTS rollup_days_nodes (fingerprint VARCHAR, {nodes})")
    con.execute("CREATE TABLE IF NOT EXISTS rollup_hours (cluster VARCHAR, hour_start BIGINT, "
                "fingerprint VARCHAR, unmatched BIGINT)")
    con.execute("CREATE TABLE IF NOT EXISTS rollup_days (cluster VARCHAR, day_start BIGINT, fingerprint VARCHAR)")


def _hours_of(level: str) -> str:
    return f"rollup_pods_{_level(level)}"


def _days_of(level: str) -> str:
    return f"rollup_days_{_level(level)}"


def _tables() -> list[str]:
    """Every table of stored rows (not the bookkeeping)."""
    return ([_hours_of(level) for level in rollup.HOURLY] + [_days_of(level) for level in rollup.LEVELS]
            + ["rollup_nodes", "rollup_days_nodes"])


def _bookkeeping() -> list[str]:
    return ["rollup_hours", "rollup_days"]


def forget_hour(cursor: duckdb.DuckDBPyConnection, cluster: str, hour_start: int) -> None:
    """Before one cluster's hour is rewritten (inside the caller's transaction): if it was built,
    delete every rollup of that cluster's UTC day, so the next build redoes the day."""
    built = cursor.execute("SELECT count(*) FROM rollup_hours WHERE cluster = ? AND hour_start = ?",
                           [cluster, hour_start]).fetchone()
    if not built or not built[0]:
        return  # a new hour: no stored row sums it
    day = hour_start - hour_start % rollup.DAY
    for table in _tables():
        cursor.execute(f"DELETE FROM {table} WHERE coalesce(cluster, '') = ? AND segment_start >= ? "
                       "AND segment_start < ?", [cluster, day, day + rollup.DAY])
    cursor.execute("DELETE FROM rollup_hours WHERE cluster = ? AND hour_start >= ? AND hour_start < ?",
                   [cluster, day, day + rollup.DAY])
    cursor.execute("DELETE FROM rollup_days WHERE cluster = ? AND day_start = ?", [cluster, day])


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


def compacted_days(cursor: duckdb.DuckDBPyConnection, fingerprint: str, start: int, end: int) -> list[int]:
    """Starts of the UTC days within [start, end) compacted for `fingerprint` by every cluster that
    has hours in them (so their day rows hold every cluster's whole day)."""
    rows = cursor.execute(
        f"SELECT h.day FROM (SELECT DISTINCT cluster, hour_start - hour_start % {rollup.DAY} AS day FROM hours "
        "WHERE hour_start >= ? AND hour_start < ?) AS h LEFT JOIN rollup_days AS d "
        "ON d.cluster = h.cluster AND d.day_start = h.day AND d.fingerprint = ? "
        "GROUP BY h.day HAVING count(d.day_start) = count(*) ORDER BY h.day",
        [start, end, fingerprint],
    ).fetchall()
    return [int(row[0]) for row in rows if start <= int(row[0]) and int(row[0]) + rollup.DAY <= end]


def stored_views(cursor: duckdb.DuckDBPyConnection, plan: RollupPlan, hours: list[tuple[int, int]],
                 days: list[tuple[int, int]]) -> rollup.Stored:
    """Temporary views on `cursor` of the rows stored for `plan` (its level and fingerprint): hour
    rows in the runs `hours` (hourly levels only) and day rows in the runs `days` (disjoint from
    `hours`), as `engine.rollup.Stored` names them."""
    stored = rollup.Stored(method=plan.method, level=plan.level)
    mine = f"fingerprint = '{_checked(plan.fingerprint)}'"
    columns = [*rollup.POD_COLUMNS, *(["labels"] if stored.labels else [])]
    pods, nodes = ", ".join(columns), ", ".join(rollup.NODE_COLUMNS)
    parts = [f"SELECT {pods} FROM main.{_days_of(plan.level)} WHERE {mine} AND {in_runs(days)}"]
    if plan.level in rollup.HOURLY:
        parts.append(f"SELECT {pods} FROM main.{_hours_of(plan.level)} WHERE {mine} AND {in_runs(hours)}")
    elif hours:
        raise ValueError(f"the {plan.level} level is stored per day only")
    cursor.execute(f"CREATE TEMP VIEW {stored.pods} AS {' UNION ALL '.join(parts)}")
    cursor.execute(f"CREATE TEMP VIEW {stored.nodes} AS SELECT {nodes} FROM main.rollup_nodes "
                   f"WHERE {mine} AND {in_runs(hours)} UNION ALL SELECT {nodes} FROM main.rollup_days_nodes "
                   f"WHERE {mine} AND {in_runs(days)}")
    cursor.execute(f"CREATE TEMP VIEW {stored.unmatched} AS SELECT unmatched FROM main.rollup_hours "
                   f"WHERE {mine} AND {in_runs(sorted(hours + days), 'hour_start')}")
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
    for table in [*_tables(), *_bookkeeping()]:
        cursor.execute(f"DELETE FROM {table} WHERE {where}", keep)


def write_span(cursor: duckdb.DuckDBPyConnection, built: rollup.Built, fingerprint: str,
               span: tuple[int, int]) -> None:
    """Store the rollups the engine built for [span) (`stages.build_rollups`) under `fingerprint`,
    and record the span's hours as built, in the caller's transaction; then drop `built`'s tables.
    The span's hours are not built for `fingerprint` (`missing`): its days hold no compacted rows,
    and the daily levels' parts of them are other hours' (they are kept)."""
    a, b = span
    for level in rollup.HOURLY:
        cursor.execute(f"INSERT INTO {_hours_of(level)} BY NAME SELECT ? AS fingerprint, * FROM {built.pods(level)}",
                       [fingerprint])
    for level in rollup.DAILY:
        cursor.execute(f"INSERT INTO {_days_of(level)} BY NAME SELECT ? AS fingerprint, * FROM {built.days(level)}",
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


def compact(cursor: duckdb.DuckDBPyConnection, fingerprint: str) -> int:
    """Fold every complete day stored for `fingerprint` into day rows (inside the caller's
    transaction): the days of a cluster with all 24 hours in `hours`, all built for `fingerprint`,
    not yet compacted. Hourly levels and nodes get day rows from their hour rows; the daily levels'
    parts are replaced by their fold (`rollup.rows_sql` over its own output). Returns the days."""
    mine = f"fingerprint = '{_checked(fingerprint)}'"
    cursor.execute(
        f"CREATE TEMP TABLE compacting AS SELECT h.cluster, h.hour_start - h.hour_start % {rollup.DAY} AS day_start "
        f"FROM hours AS h JOIN rollup_hours AS r ON r.cluster = h.cluster AND r.hour_start = h.hour_start AND r.{mine} "
        f"GROUP BY ALL HAVING count(*) = {rollup.DAY // HOUR} "
        f"EXCEPT SELECT cluster, day_start FROM rollup_days WHERE {mine}")
    try:
        found = cursor.execute("SELECT count(*) FROM compacting").fetchone()
        days = int(found[0]) if found else 0
        if not days:
            return 0

        def rows_of(table: str) -> str:
            return (f"(SELECT t.* EXCLUDE (fingerprint) FROM {table} AS t SEMI JOIN compacting AS c "
                    f"ON c.cluster = coalesce(t.cluster, '') AND c.day_start = t.segment_start - t.segment_start % "
                    f"{rollup.DAY} WHERE t.{mine})")

        for level in rollup.HOURLY:
            cursor.execute(f"INSERT INTO {_days_of(level)} BY NAME SELECT '{_checked(fingerprint)}' AS fingerprint, * "
                           f"FROM ({rollup.rows_sql(level, rows_of(_hours_of(level)), rollup.DAY)})")
        cursor.execute(f"INSERT INTO rollup_days_nodes BY NAME SELECT '{_checked(fingerprint)}' AS fingerprint, * "
                       f"FROM ({rollup.node_rows_sql(rows_of('rollup_nodes'), rollup.DAY)})")
        for level in rollup.DAILY:
            table = _days_of(level)
            cursor.execute(f"CREATE TEMP TABLE folded AS {rollup.rows_sql(level, rows_of(table), rollup.DAY)}")
            cursor.execute(f"DELETE FROM {table} AS t WHERE t.{mine} AND EXISTS (SELECT 1 FROM compacting AS c "
                           f"WHERE c.cluster = coalesce(t.cluster, '') AND c.day_start = t.segment_start)")
            cursor.execute(f"INSERT INTO {table} BY NAME SELECT '{_checked(fingerprint)}' AS fingerprint, * "
                           "FROM folded")
            cursor.execute("DROP TABLE folded")
        cursor.execute(f"INSERT INTO rollup_days SELECT cluster, day_start, '{_checked(fingerprint)}' FROM compacting")
        return days
    finally:
        cursor.execute("DROP TABLE IF EXISTS compacting")
