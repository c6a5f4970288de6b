"""The ledger: hourly facts, per-hour coverage and price versions in one DuckDB file.

Invariants:
- One fact per entity per complete hour. `write_hour` replaces an hour as a whole inside one
  transaction, so writing an hour twice changes nothing and an interrupted write leaves no partial
  hour (DuckDB rolls back an uncommitted transaction from its WAL on the next open).
- Every ingested hour has a row in `hours` with its coverage (the fraction of evaluation times at
  which the metrics store had data); an hour without a row was never ingested. A gap is reported as
  coverage < 1, never as cost 0.
- Price versions are appended, never edited: each CostWeights version is kept with the time from
  which it prices (`effective_from`), so every hour is priced by the version in force then.

`facts(...)` hands the engine a private cursor whose temporary views union the ledger's hours of a
window with live facts of the window's edges; given a rollup plan (`engine.plan`, `ledger.rollups`),
it leaves the hours stored for it out of the fact views and hands their stored rows instead. The cursor reads inside
one transaction, so a concurrent `write_hour` or `build_rollups` never shows half an hour.
"""

from __future__ import annotations

import dataclasses
import json
import sys
import threading
from collections.abc import Collection, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, suppress
from pathlib import Path
from typing import Protocol

import duckdb

from kubetally.domain.prices import PriceBook
from kubetally.engine import rollup, stages
from kubetally.engine.facts import Facts
from kubetally.engine.plan import RollupPlan
from kubetally.facts.batch import FactBatch
from kubetally.facts.load import insert
from kubetally.facts.schema import TABLES
from kubetally.ledger import files, rollups
from kubetally.ledger.errors import LedgerDamaged, LedgerError, LedgerNoSpace, LedgerReadOnly
from kubetally.ledger.memo import Memo
from kubetally.ledger.memory import memory_bytes as memory_bytes
from kubetally.ledger.records import HourRecord as HourRecord
from kubetally.ledger.records import PriceRecord as PriceRecord

SCHEMA_VERSION = 1

_META = """
CREATE TABLE IF NOT EXISTS ledger_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
CREATE TABLE IF NOT EXISTS hours (
    cluster VARCHAR, hour_start BIGINT, coverage DOUBLE, ingested_at BIGINT, container_facts BIGINT,
    PRIMARY KEY (cluster, hour_start));
CREATE TABLE IF NOT EXISTS price_versions (
    name VARCHAR, effective_from BIGINT, recorded_at BIGINT, spec VARCHAR);
"""


class Ledger(Protocol):
    """What kubetally needs from a ledger; DuckDBLedger is the embedded implementation."""

    def hours(self, cluster: str, start: int, end: int) -> dict[int, HourRecord]: ...

    def write_hour(
        self, cluster: str, hour_start: int, batch: FactBatch, coverage: float, ingested_at: int
    ) -> None: ...

    def record_price_version(
        self, name: str, spec: Mapping[str, object], effective_from: int, recorded_at: int
    ) -> bool: ...

    def price_versions(self, name: str) -> list[PriceRecord]: ...

    def latest_hour(self, cluster: str) -> int | None: ...

    def facts(
        self, start: int, end: int, live: FactBatch | None = None, *, plan: RollupPlan | None = None,
        hours: Collection[int] | None = None,
    ) -> AbstractContextManager[Facts]: ...


#: Past every hour a ledger holds (unix seconds, year 2286): "all time" for `_stored_runs`.
_END_OF_TIME = 10**10


class DuckDBLedger:
    """The ledger in an embedded DuckDB file (`:memory:` for a throw-away one)."""

    def __init__(self, path: str | Path, *, memory_limit: str | None = None) -> None:
        """Open (or create) the ledger at `path` (`ledger.files.connect`: a `LedgerError` for what a
        user can fix). `memory_limit` (e.g. "1GB") caps DuckDB's memory; larger work spills to
        `<path>.tmp`. Without it DuckDB takes up to 80% of the machine's RAM."""
        if memory_limit is not None:
            memory_limit = f"{memory_bytes(memory_limit)}B"
        self.path = str(path)
        #: Set when the file or this process's database became unusable (damage found by a read or by `ledger.verify`,
        #: a DuckDB fatal error): every later read and write raises it (`_guarded`). `write_error`: the last write
        #: refused for want of space or permission, until the next commit (/readyz shows both).
        self.failure: LedgerError | None = None
        self.write_error: LedgerError | None = None
        self._con = duckdb.connect(self.path) if self.path == ":memory:" else \
            files.connect(self.path, read_only=False, schema_version=SCHEMA_VERSION)
        self._write_lock = threading.Lock()
        #: What requests read before they compute, kept until the next write (`ledger.memo`).
        self._memo = Memo()
        with self._guarded():
            if memory_limit is not None:
                self._con.execute(f"SET memory_limit = '{memory_limit}'")
            self._con.execute(_META)
            for table, columns in TABLES.items():
                body = ", ".join(f"{name} {kind}" for name, kind in columns.items())
                self._con.execute(f"CREATE TABLE IF NOT EXISTS {table} ({body})")
            rollups.ensure_tables(self._con)
            self._con.execute(
                "INSERT INTO ledger_meta VALUES ('schema_version', ?) ON CONFLICT DO NOTHING", [str(SCHEMA_VERSION)])

    @property
    def connection(self) -> duckdb.DuckDBPyConnection:  # for `ledger.verify` and `ledger.backup` (own cursors)
        return self._con

    @contextmanager
    def _guarded(self) -> Iterator[None]:
        """Raise a `LedgerError` for what DuckDB or the OS report that a user can act on (`ledger.files`);
        damage, and any DuckDB fatal error (its database is then invalid in this process), is kept in
        `failure`, which refuses every later read and write."""
        if self.failure is not None:
            raise self.failure
        try:
            yield
        except (duckdb.Error, OSError) as error:
            found = files.classify(error, self.path)
            if isinstance(found, LedgerDamaged) or isinstance(error, duckdb.FatalException):
                self.failure = found or files.damaged(self.path, str(error).split("\n")[0])
            self.write_error = found if isinstance(found, (LedgerNoSpace, LedgerReadOnly)) else self.write_error
            if found is None:
                raise
            raise found from error

    def close(self) -> None:
        self._con.close()

    def hours(self, cluster: str, start: int, end: int) -> dict[int, HourRecord]:
        """The ingested hours of `cluster` that start in [start, end)."""
        return {hour: record for hour, record in self._all_hours(cluster).items() if start <= hour < end}

    def _all_hours(self, cluster: str) -> dict[int, HourRecord]:
        """Every ingested hour of `cluster`, in order (kept until the next write)."""

        if self.failure is not None:
            raise self.failure  # a damaged ledger answers nothing (and no live window is collected for it)

        def read() -> dict[int, HourRecord]:
            cursor = self._con.cursor()
            try:
                rows = cursor.execute("SELECT hour_start, coverage, ingested_at, container_facts FROM hours "
                                      "WHERE cluster = ? ORDER BY hour_start", [cluster]).fetchall()
            finally:
                cursor.close()
            return {int(r[0]): HourRecord(int(r[0]), float(r[1]), int(r[2]), int(r[3])) for r in rows}

        return self._memo.get(("hours", cluster), self._memo.generation, read)

    def prices_stamp(self) -> str:
        """Changes whenever any price version is added: reports computed at another stamp are stale."""

        def read() -> str:
            cursor = self._con.cursor()
            try:
                row = cursor.execute("SELECT count(*), coalesce(max(recorded_at), 0) FROM price_versions").fetchone()
            finally:
                cursor.close()
            return "0-0" if row is None else f"{row[0]}-{row[1]}"

        return self._memo.get(("prices_stamp",), self._memo.generation, read)

    def project_of(self, cluster: str, namespace: str) -> str | None:
        """The project of `namespace` in its newest facts (None if it has none or no facts)."""
        cursor = self._con.cursor()
        try:
            row = cursor.execute(
                "SELECT project FROM container_facts WHERE coalesce(cluster, '') = ? AND namespace = ? "
                "AND project IS NOT NULL ORDER BY segment_start DESC LIMIT 1",
                [cluster, namespace],
            ).fetchone()
        finally:
            cursor.close()
        return None if row is None else str(row[0])

    def latest_hour(self, cluster: str) -> int | None:
        """The start of the newest ingested hour of `cluster`, or None for an empty ledger."""
        return max(self._all_hours(cluster), default=None)

    def namespaces(self, cluster: str) -> dict[str, frozenset[str]]:
        """Every namespace of `cluster` the ledger holds facts of (pods, claims, quotas), with the
        projects it was seen in (empty when none): the candidates an API caller's namespace
        permissions are checked on."""
        cursor = self._con.cursor()
        try:
            rows = cursor.execute(
                " UNION ".join(f"SELECT namespace, coalesce(project, '') FROM {table} WHERE cluster = $c"
                               for table in ("container_facts", "volume_facts", "quota_facts")),
                {"c": cluster},
            ).fetchall()
        finally:
            cursor.close()
        out: dict[str, set[str]] = {}
        for namespace, project in rows:
            out.setdefault(str(namespace), set()).update([str(project)] if project else [])
        return {namespace: frozenset(projects) for namespace, projects in out.items()}

    def write_hour(self, cluster: str, hour_start: int, batch: FactBatch, coverage: float, ingested_at: int) -> None:
        """Replace hour [hour_start, hour_start + 3600) of `cluster` with `batch`, atomically."""
        if hour_start % 3600:
            raise ValueError(f"hour_start {hour_start} is not on an hour boundary")
        with self._transaction() as cursor:
            for table in TABLES:
                cursor.execute(
                    f"DELETE FROM {table} WHERE coalesce(cluster, '') = ? AND segment_start >= ? AND segment_start < ?",
                    [cluster, hour_start, hour_start + 3600],
                )
                insert(cursor, table, table, batch.tables[table])
            rollups.forget_hour(cursor, cluster, hour_start)
            cursor.execute(
                "INSERT OR REPLACE INTO hours VALUES (?, ?, ?, ?, ?)",
                [cluster, hour_start, coverage, ingested_at, batch.rows("container_facts")],
            )

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor inside one transaction, under the write lock: committed if the block ends
        normally, rolled back (temporary tables included) if it raises."""
        with self._write_lock, self._guarded():
            cursor = self._con.cursor()
            try:
                cursor.execute("BEGIN TRANSACTION")
                try:
                    yield cursor
                except BaseException:
                    if not isinstance(sys.exception(), duckdb.FatalException):
                        cursor.execute("ROLLBACK")
                    raise
                cursor.execute("COMMIT")
                self._memo.wrote()
                self.write_error = None
            finally:
                cursor.close()

    def record_price_version(
        self, name: str, spec: Mapping[str, object], effective_from: int, recorded_at: int
    ) -> bool:
        """Append a version of CostWeights `name`, unless its newest version has the same spec and
        start already. Returns True if a version was added."""
        text = json.dumps(spec, sort_keys=True)
        with self._write_lock, self._guarded():
            cursor = self._con.cursor()
            try:
                latest = cursor.execute(
                    "SELECT spec, effective_from FROM price_versions WHERE name = ? "
                    "ORDER BY recorded_at DESC, effective_from DESC LIMIT 1",
                    [name],
                ).fetchone()
                if latest is not None and latest[0] == text and int(latest[1]) == effective_from:
                    return False
                cursor.execute(
                    "INSERT INTO price_versions VALUES (?, ?, ?, ?)", [name, effective_from, recorded_at, text]
                )
                self._memo.wrote()
                return True
            finally:
                cursor.close()

    def price_versions(self, name: str) -> list[PriceRecord]:
        """Every stored version of `name`, in the order they price (by effective_from; for equal
        starts, the later record wins and hides the earlier)."""
        cursor = self._con.cursor()
        try:
            rows = cursor.execute(
                "SELECT name, effective_from, recorded_at, spec FROM price_versions WHERE name = ? "
                "QUALIFY row_number() OVER (PARTITION BY effective_from ORDER BY recorded_at DESC) = 1 "
                "ORDER BY effective_from",
                [name],
            ).fetchall()
        finally:
            cursor.close()
        return [PriceRecord(str(r[0]), int(r[1]), int(r[2]), json.loads(str(r[3]))) for r in rows]

    def build_rollups(self, book: PriceBook, *, chunk_hours: int = 24, rebuild: bool = False) -> int:
        """Store the rollups of every ingested hour not yet stored for `book` (per maintained
        method), a run of at most `chunk_hours` hours per transaction; drop those of other prices
        (with `rebuild`, drop all first). Returns how many hour-builds were done (hours × methods)."""
        fingerprints = {method: rollup.fingerprint(book, method) for method in rollup.METHODS}
        with self._transaction() as cursor:
            rollups.drop_stale(cursor, [] if rebuild else list(fingerprints.values()))
        built = 0
        for method, fingerprint in fingerprints.items():
            cursor = self._con.cursor()
            try:
                spans = rollups.runs(rollups.missing(cursor, fingerprint), chunk_hours)
            finally:
                cursor.close()
            for span in spans:
                with self._transaction() as cursor:
                    facts = self._fact_views(cursor, span[0], span[1], None, [span])
                    rows = stages.build_rollups(cursor, facts, book, method=method, span=span)
                    rollups.write_span(cursor, rows, fingerprint, span)
                built += (span[1] - span[0]) // 3600
            with self._transaction() as cursor:
                rollups.compact(cursor, fingerprint)
        return built

    def _fact_views(self, cursor: duckdb.DuckDBPyConnection, start: int, end: int, live: FactBatch | None,
                    spans: list[tuple[int, int]], base: list[tuple[int, int]] | None = None) -> Facts:
        """Views (on `cursor`) of the ledger's facts with segments in [start, end), container and
        node facts only within `spans`, volume and quota facts only within `base` (if given), plus
        `live` facts, as the engine's four relations."""
        names = {}
        for table in TABLES:
            live_part = ""
            if live is not None and live.rows(table):  # a request without live facts creates no table
                live_table = f"live_{table}"
                body = ", ".join(f"{name} {kind}" for name, kind in TABLES[table].items())
                cursor.execute(f"CREATE TEMP TABLE {live_table} ({body})")
                insert(cursor, table, live_table, live.tables[table])
                live_part = f" UNION ALL SELECT * FROM {live_table}"
            view = f"window_{table}"
            limit = spans if table in ("container_facts", "node_facts") else base
            only = f" AND {rollups.in_runs(limit)}" if limit is not None else ""
            cursor.execute(
                f"CREATE TEMP VIEW {view} AS SELECT * FROM main.{table} "
                f"WHERE segment_start >= {int(start)} AND segment_end <= {int(end)}{only}{live_part}"
            )
            names[table] = view
        return Facts(con=cursor, containers=names["container_facts"], nodes=names["node_facts"],
                     volumes=names["volume_facts"], quotas=names["quota_facts"])

    def _stored_runs(self, cursor: duckdb.DuckDBPyConnection, plan: RollupPlan, start: int, end: int,
                     hours: Collection[int] | None, generation: int | None,
                     ) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The runs of hours `plan` reads as hour rows and as day rows: compacted days whose every
        hour is stored and read from the ledger (`hours`) and that the plan's sets admit
        (`RollupPlan.day_fits`); the other stored hours as hour rows where the level has them. With
        `generation` (the transaction's snapshot is that write generation's state), what is stored for
        the fingerprint is read once per generation (`ledger.memo`), for all time, then cut to the window."""
        fingerprint = plan.fingerprint

        def stored() -> tuple[list[int], list[int]]:
            lo, hi = (start, end) if generation is None else (0, _END_OF_TIME)
            return rollups.covered(cursor, fingerprint, lo, hi), rollups.compacted_days(cursor, fingerprint, lo, hi)

        hour_list, day_list = stored() if generation is None else \
            self._memo.get(("stored", fingerprint), generation, stored)
        covered = {hour for hour in hour_list if start <= hour and hour + 3600 <= end}
        if hours is not None:
            covered &= set(hours)
        days = [day for day in day_list if start <= day and day + rollup.DAY <= end
                and plan.day_fits(day) and all(day + k * 3600 in covered for k in range(rollup.DAY // 3600))]
        in_days = {day + k * 3600 for day in days for k in range(rollup.DAY // 3600)}
        by_hour = sorted(covered - in_days) if plan.level in rollup.HOURLY else []
        return rollups.runs(by_hour), rollups.runs(in_days)

    def _begin(self, cursor: duckdb.DuckDBPyConnection) -> int | None:
        """BEGIN a read transaction on `cursor`; the write generation its snapshot is the state of, if
        the write lock was free to begin under (`ledger.memo`), else None (a reader never waits)."""
        if not self._write_lock.acquire(blocking=False):
            cursor.execute("BEGIN TRANSACTION")
            return None
        try:
            # DuckDB takes a transaction's snapshot at its first read of a table, not at BEGIN.
            cursor.execute("BEGIN TRANSACTION")
            cursor.execute("SELECT count(*) FROM ledger_meta").fetchall()
            return self._memo.generation
        finally:
            self._write_lock.release()

    @contextmanager
    def facts(self, start: int, end: int, live: FactBatch | None = None, *, plan: RollupPlan | None = None,
              hours: Collection[int] | None = None) -> Iterator[Facts]:
        """A private cursor whose views hold the ledger's facts with segments in [start, end),
        plus `live` facts (the window's edges), as the engine's four relations; with `plan` (the
        engine's `RollupPlan`, decided by the caller), the hours stored for it come as
        `Facts.stored` rows instead of facts: bookkeeping only, nothing is decided here. With `hours` (the
        window plan's ledger hours), only those hours are read from the ledger: an hour the plan
        collects live instead (cut by a set boundary) must not be counted twice."""
        with self._guarded():
            cursor = self._con.cursor()
        try:
            generation = self._begin(cursor)
            base = [(start, end)] if hours is None else rollups.runs(hours)
            spans = base
            stored = None
            if plan is not None:
                hour_runs, day_runs = self._stored_runs(cursor, plan, start, end, hours, generation)
                if hour_runs or day_runs:
                    stored = rollups.stored_views(cursor, plan, hour_runs, day_runs)
                    spans = rollups.intersect(base, rollups.complement(sorted(hour_runs + day_runs), start, end))
            facts = self._fact_views(cursor, start, end, live, spans, None if hours is None else base)
            any_live = bool(spans) or (live is not None and any(live.rows(table) for table in TABLES))
            with self._guarded():  # a damaged block read by the engine: the ledger is refused from now on
                yield dataclasses.replace(facts, stored=stored, live=stored is None or any_live, rolled_back=True)
        finally:
            with suppress(duckdb.Error):
                cursor.execute("ROLLBACK")
            cursor.close()
