"""Is this ledger whole? Every block read, and the bookkeeping checked against the facts.

Why: past Prometheus' retention the ledger is the only copy of what was spent. DuckDB checks a
block's checksum only when it reads the block, so a file cut short or a flipped byte in a block no
query happens to read stays unnoticed, and is served, until a write trips over it (issue 19).

What `verify` checks, in order (each finding is one line):

1. Blocks. Every column of every row of every table is read (`count(*)`, `bit_xor(hash(COLUMNS(*)))`
   per table), so DuckDB reads, and checksums, every data block; the metadata blocks were read
   when the file was opened. DuckDB has no integrity pragma: `PRAGMA verify_*` settings verify query
   plans and serialisation (developer checks), `CHECKPOINT` writes (and a read-only check must not),
   `storage_info` lists blocks without reading them; a full scan is what reads them all. Free blocks
   hold nothing and are not read.
2. Hours. Per (cluster, hour), `hours.container_facts` equals the container facts stored for the
   hour; no fact of any table lies in an hour that `hours` does not hold; every fact's segment lies
   in its hour (`segment_start <= segment_end <= hour + 3600`); coverage is in [0, 1].
3. Rollups (`ledger.rollups`). Every hour in `rollup_hours` is in `hours`; every compacted day has
   its 24 hours built. Per fingerprint and hour (hourly levels) or UTC day (every level's day
   table), the stored Σ of the four integrals (`cpu_request_core_seconds`, `cpu_usage_core_seconds`,
   `memory_request_byte_seconds`, `memory_usage_byte_seconds`; core-seconds, byte-seconds) equals
   their Σ over the container facts of the hours built for that fingerprint (pod rows sum every
   container the engine counts, i.e. all but `""` and `POD`, which the ingest never stores), and Σ
   cost is the same at every level. Tolerance: |a − b| ≤ 1e-9·|b| + 1e-6 (sums taken in another order).
   That is comparing sums, not re-deriving: a rebuild would cost as much as `kubetally rollups`.

Cost, measured (README): the L ledger (720 h, 9.2M container facts, 21M rows, 1.4 GB) in 3.8–4.1 s on 2 cores,
so `serve` and `run` run all of it when they open the ledger. Nothing here writes: the checks
only read, through their own cursor (a read-only connection for `kubetally ledger verify`).
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import duckdb

from kubetally.engine import rollup
from kubetally.facts.schema import TABLES
from kubetally.ledger import files
from kubetally.ledger.errors import LedgerError

HOUR = 3600
_INTEGRALS = ("cpu_request_core_seconds", "cpu_usage_core_seconds", "memory_request_byte_seconds",
              "memory_usage_byte_seconds")


@dataclass
class Report:
    """What `verify` found: `findings` (one line each; none means whole), what it read, how long."""

    path: str
    findings: list[str] = field(default_factory=list)
    tables: int = 0
    rows: int = 0
    hours: int = 0
    seconds: float = 0.0
    #: Hours (cluster, hour start) whose facts are missing or damaged: what `kubetally ledger repair` re-ingests.
    bad_hours: set[tuple[str, int]] = field(default_factory=set)
    #: Set when the fact tables themselves could not be read: every hour is suspect.
    unreadable_facts: bool = False

    @property
    def clean(self) -> bool:
        return not self.findings

    def summary(self) -> str:
        state = "clean" if self.clean else f"DAMAGED: {len(self.findings)} finding(s)"
        return (f"{self.path}: {state}; {self.tables} tables, {self.rows} rows, {self.hours} hours read in "
                f"{self.seconds:.1f} s")


def stamp(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%dT%H:%MZ")


def verify(con: duckdb.DuckDBPyConnection, path: str) -> Report:
    """Run every check on `con` (the ledger at `path`) through a cursor of its own; never writes."""
    started = time.perf_counter()
    report = Report(path)
    cursor = con.cursor()
    try:
        _blocks(cursor, report)
        _guard(cursor, report, "the hours' bookkeeping", lambda: _hours(cursor, report))
        _guard(cursor, report, "the rollups' bookkeeping", lambda: _rollups(cursor, report))
    finally:
        cursor.close()
    report.seconds = time.perf_counter() - started
    return report


def _snapshot(cursor: duckdb.DuckDBPyConnection, check: Callable[[], None]) -> None:
    """Run `check` in a read transaction of its own: one snapshot for all it compares (a writer may
    commit meanwhile in the holding process), and an aborted transaction ends with it."""
    cursor.execute("BEGIN TRANSACTION")
    try:
        check()
    finally:
        with contextlib.suppress(duckdb.Error):
            cursor.execute("ROLLBACK")


def _guard(cursor: duckdb.DuckDBPyConnection, report: Report, what: str, check: Callable[[], None]) -> None:
    """Run `check` in its snapshot; a read failure becomes a finding (the block check named the table)."""
    try:
        _snapshot(cursor, check)
    except duckdb.Error as error:
        known = files.classify(error, report.path)
        report.findings.append(f"{what} could not be checked: {_short(known, error)}")


def _short(known: LedgerError | None, error: Exception) -> str:
    if known is None:
        return str(error).split("\n")[0]
    text = str(known)
    return text[text.find("(") + 1:text.find(");")] if "(" in text and ");" in text else text


def _tables(cursor: duckdb.DuckDBPyConnection) -> list[str]:
    return [str(row[0]) for row in cursor.execute(
        "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() AND NOT temporary "
        "ORDER BY table_name").fetchall()]


def _blocks(cursor: duckdb.DuckDBPyConnection, report: Report) -> None:
    """Read every column of every row of every table (module docstring, 1)."""
    for table in _tables(cursor):
        report.tables += 1
        found: list[int] = []

        def scan(table: str = table, found: list[int] = found) -> None:
            row = cursor.execute(f'SELECT count(*), bit_xor(hash(COLUMNS(*))) FROM "{table}"').fetchone()
            found.append(int(row[0]) if row else 0)

        try:
            _snapshot(cursor, scan)
        except duckdb.Error as error:
            report.findings.append(f"table {table}: {_short(files.classify(error, report.path), error)}")
            if table in TABLES or table == "hours":
                report.unreadable_facts = True
            continue
        report.rows += sum(found)


def _hours(cursor: duckdb.DuckDBPyConnection, report: Report) -> None:
    """Hours against facts (module docstring, 2)."""
    report.hours = int((cursor.execute("SELECT count(*) FROM hours").fetchone() or (0,))[0])
    for cluster, hour, coverage in cursor.execute(
            "SELECT cluster, hour_start, coverage FROM hours WHERE NOT (coverage BETWEEN 0 AND 1) "
            "OR coverage IS NULL OR hour_start % 3600 <> 0 ORDER BY 1, 2").fetchall():
        report.findings.append(f"hour {stamp(int(hour))} of cluster {cluster!r}: coverage {coverage} or its start is "
                               "not a whole hour")
        report.bad_hours.add((str(cluster), int(hour)))
    rows = cursor.execute(
        "WITH f AS (SELECT coalesce(cluster, '') AS cluster, segment_start - segment_start % 3600 AS hour_start, "
        "count(*) AS n FROM container_facts GROUP BY ALL) "
        "SELECT coalesce(h.cluster, f.cluster), coalesce(h.hour_start, f.hour_start), h.container_facts, "
        "coalesce(f.n, 0) FROM hours AS h FULL JOIN f ON f.cluster = h.cluster AND f.hour_start = h.hour_start "
        "WHERE h.hour_start IS NULL OR h.container_facts <> coalesce(f.n, 0) ORDER BY 1, 2").fetchall()
    for cluster, hour, recorded, held in rows:
        where = f"hour {stamp(int(hour))} of cluster {cluster!r}"
        if recorded is None:
            report.findings.append(f"{where}: {held} container facts of an hour never recorded as ingested")
        else:
            report.findings.append(f"{where}: hours records {recorded} container facts, the ledger holds {held}")
        report.bad_hours.add((str(cluster), int(hour)))
    for table in TABLES:
        for cluster, hour, outside, bad in cursor.execute(
                f"SELECT coalesce(t.cluster, ''), t.segment_start - t.segment_start % 3600 AS hour, "
                "count(*) FILTER (WHERE h.hour_start IS NULL), "
                "count(*) FILTER (WHERE t.segment_end < t.segment_start OR t.segment_end > "
                f"t.segment_start - t.segment_start % 3600 + 3600) FROM {table} AS t LEFT JOIN hours AS h "
                "ON h.cluster = coalesce(t.cluster, '') AND h.hour_start = t.segment_start - t.segment_start % 3600 "
                "GROUP BY ALL HAVING count(*) FILTER (WHERE h.hour_start IS NULL) > 0 OR count(*) FILTER (WHERE "
                "t.segment_end < t.segment_start OR t.segment_end > t.segment_start - t.segment_start % 3600 + 3600) "
                "> 0 ORDER BY 1, 2").fetchall():
            if table == "container_facts" and outside:
                continue  # named above
            what = f"{outside} outside any ingested hour" if outside else f"{bad} with a segment outside their hour"
            report.findings.append(f"hour {stamp(int(hour))} of cluster {cluster!r}: {table}: {what}")
            report.bad_hours.add((str(cluster), int(hour)))


def _rollups(cursor: duckdb.DuckDBPyConnection, report: Report) -> None:
    """Rollup bookkeeping and sums against the facts (module docstring, 3)."""
    for cluster, hour, fingerprint in cursor.execute(
            "SELECT r.cluster, r.hour_start, r.fingerprint FROM rollup_hours AS r ANTI JOIN hours AS h "
            "ON h.cluster = r.cluster AND h.hour_start = r.hour_start ORDER BY 1, 2").fetchall():
        report.findings.append(f"hour {stamp(int(hour))} of cluster {cluster!r}: rollups {fingerprint} are stored for "
                               "an hour never ingested")
    for cluster, day, fingerprint, count in cursor.execute(
            f"SELECT d.cluster, d.day_start, d.fingerprint, count(r.hour_start) FROM rollup_days AS d "
            f"LEFT JOIN rollup_hours AS r ON r.cluster = d.cluster AND r.fingerprint = d.fingerprint AND "
            f"r.hour_start >= d.day_start AND r.hour_start < d.day_start + {rollup.DAY} GROUP BY ALL "
            f"HAVING count(r.hour_start) <> {rollup.DAY // HOUR} ORDER BY 1, 2").fetchall():
        report.findings.append(f"day {stamp(int(day))[:10]} of cluster {cluster!r}: rollups {fingerprint} are "
                               f"compacted with {count} of 24 hours built")
    sums = ", ".join(f"sum({name})" for name in _INTEGRALS)
    facts = {(str(r[0]), int(r[1])): tuple(float(v or 0) for v in r[2:]) for r in cursor.execute(
        f"SELECT coalesce(cluster, ''), segment_start - segment_start % 3600, {sums} FROM container_facts "
        "WHERE coalesce(container, '') NOT IN ('', 'POD') GROUP BY ALL").fetchall()}
    built: dict[str, list[tuple[str, int]]] = {}
    for fingerprint, cluster, hour in cursor.execute(
            "SELECT fingerprint, cluster, hour_start FROM rollup_hours ORDER BY 1, 2, 3").fetchall():
        built.setdefault(str(fingerprint), []).append((str(cluster), int(hour)))
    compacted = {(str(r[0]), str(r[1]), int(r[2])) for r in cursor.execute(
        "SELECT fingerprint, cluster, day_start FROM rollup_days").fetchall()}
    zero = (0.0,) * len(_INTEGRALS)
    # What each table sums, by kind: hour rows every built hour; the daily levels' day rows every built
    # hour of their day (parts until the day is compacted); the hourly levels' day rows compacted days only.
    kinds = {**{f"rollup_pods_{level}": "hour" for level in rollup.HOURLY},
             **{f"rollup_days_{level}": "day" for level in rollup.DAILY},
             **{f"rollup_days_{level}": "compacted day" for level in rollup.HOURLY}}
    for fingerprint, hours in built.items():
        expected: dict[str, dict[tuple[str, int], tuple[float, ...]]] = {kind: {} for kind in set(kinds.values())}
        for cluster, hour in hours:
            day = hour - hour % rollup.DAY
            for kind, key in (("hour", (cluster, hour)), ("day", (cluster, day)), ("compacted day", (cluster, day))):
                if kind != "compacted day" or (fingerprint, cluster, day) in compacted:
                    expected[kind][key] = _add(expected[kind].get(key, zero), facts.get((cluster, hour), zero))
        costs: dict[tuple[str, tuple[str, int]], tuple[str, float]] = {}
        for table, kind in kinds.items():
            grain = HOUR if kind == "hour" else rollup.DAY
            stored = {(str(r[0]), int(r[1])): (float(r[2] or 0), tuple(float(v or 0) for v in r[3:]))
                      for r in cursor.execute(
                          f"SELECT coalesce(cluster, ''), segment_start - segment_start % {grain}, sum(cost), {sums} "
                          f"FROM {table} WHERE fingerprint = ? GROUP BY ALL", [fingerprint]).fetchall()}
            for key in sorted(set(stored) | set(expected[kind])):
                cost, got = stored.get(key, (0.0, zero))
                want = expected[kind].get(key, zero)
                when = stamp(key[1]) if grain == HOUR else stamp(key[1])[:10]
                if not all(_close(a, b) for a, b in zip(got, want, strict=True)):
                    report.findings.append(f"{table} {when} of cluster {key[0]!r} ({fingerprint}): stored integrals "
                                           f"{_fmt(got)} but the facts of its built hours sum to {_fmt(want)}")
                    report.bad_hours.update((key[0], h) for c, h in hours if c == key[0] and h - h % grain == key[1])
                first = costs.setdefault((kind, key), (table, cost))
                if not _close(cost, first[1]):
                    report.findings.append(f"{table} {when} of cluster {key[0]!r} ({fingerprint}): Σ cost {cost!r} "
                                           f"but {first[0]} holds {first[1]!r}")


def _add(a: tuple[float, ...], b: tuple[float, ...]) -> tuple[float, ...]:
    return tuple(x + y for x, y in zip(a, b, strict=True))


def _close(a: float, b: float) -> bool:
    return math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * abs(b) + 1e-6


def _fmt(values: tuple[float, ...]) -> str:
    return "(" + ", ".join(f"{v:.6g}" for v in values) + ")"
