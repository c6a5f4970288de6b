"""Backups of the ledger: a consistent snapshot into a new ledger file, a schedule's rotation, restore.

Decisions:
- A backup is itself a ledger file (DuckDB), made by `ATTACH` of a new file and `COPY FROM DATABASE`
  inside one read transaction of the ledger's connection: one snapshot of every table (DuckDB's
  MVCC), taken while the ledger's own process goes on writing. EXPORT DATABASE to Parquet would be
  a directory to re-import; a ledger file is verified and restored as it is (`verify`, a rename).
- It is written as `<target>.partial`, checkpointed (DETACH), fsynced and then renamed, so a backup
  that exists is complete; a failed one leaves no file named like a backup.
- DuckDB lets one process open the file, so a snapshot is taken by that process: `kubetally ledger
  backup` takes it itself when the file is free, else asks the holder over its control socket
  (`ledger.control`). The backup is verified (`ledger.verify`) before it is reported made.
- Names in a directory: `kubetally-ledger-YYYYMMDDTHHMMSSZ.duckdb` (UTC, sortable); the schedule
  keeps the newest `keep` of them and deletes only files named so.
- Restore refuses a damaged backup and a ledger another process has open; it keeps the file it
  replaces (`<ledger>.replaced-<stamp>`, with its WAL) rather than deleting it: a restore is the
  moment a mistake would be costliest.
"""

from __future__ import annotations

import itertools
import os
import re
import shutil
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from kubetally.ledger import files, verify
from kubetally.ledger.errors import LedgerError

PATTERN = re.compile(r"kubetally-ledger-\d{8}T\d{6}Z\.duckdb")
_SEQUENCE = itertools.count()


@dataclass(frozen=True, slots=True)
class Backup:
    path: Path
    bytes: int
    hours: int
    seconds: float

    def line(self, source: str) -> str:
        return (f"backed up {source} to {self.path} ({self.hours} hours, {self.bytes / 2**20:.1f} MiB, verified clean) "
                f"in {self.seconds:.1f} s")


def target_of(to: str, now: float) -> Path:
    """`to` itself, or a dated file in it when it is a directory (existing, or written with a trailing /)."""
    if to.endswith("/") or Path(to).is_dir():
        return Path(to) / f"kubetally-ledger-{datetime.fromtimestamp(now, UTC).strftime('%Y%m%dT%H%M%SZ')}.duckdb"
    return Path(to)


def snapshot(con: duckdb.DuckDBPyConnection, source: str, to: str, *, schema_version: int) -> Backup:
    """Copy the ledger open on `con` (the file `source`) into the new ledger file `to` (or a dated file
    in the directory `to`), in one read transaction; verified before it is returned."""
    started = time.perf_counter()
    target = target_of(to, time.time())
    partial = target.with_name(target.name + ".partial")
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            raise LedgerError(source, f"{target} exists already; give another --to (a directory gets a dated file)")
        partial.unlink(missing_ok=True)
    except OSError as error:
        raise (files.classify(error, str(target)) or error) from error
    alias = f"kubetally_backup_{os.getpid()}_{next(_SEQUENCE)}"
    cursor = con.cursor()
    try:
        database = str((cursor.execute("SELECT current_database()").fetchone() or ("",))[0])
        cursor.execute(f"ATTACH '{_quoted(str(partial))}' AS {alias} (READ_ONLY false)")
        try:
            cursor.execute("BEGIN TRANSACTION")
            cursor.execute(f'COPY FROM DATABASE "{database}" TO {alias}')
            cursor.execute("COMMIT")
        finally:
            cursor.execute(f"DETACH {alias}")  # checkpoints the copy into its file
    except (duckdb.Error, OSError) as error:
        partial.unlink(missing_ok=True)
        known = files.classify(error, str(target) if str(partial) in str(error) else source)
        if known is None:
            raise
        raise known from error
    finally:
        cursor.close()
    _fsync(partial)
    checked = _verified(partial, schema_version)
    os.replace(partial, target)
    _fsync(target.parent)
    return Backup(target, target.stat().st_size, checked.hours, time.perf_counter() - started)


def _quoted(text: str) -> str:
    return text.replace("'", "''")


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def verify_file(path: Path, schema_version: int) -> verify.Report:
    """`verify` of the ledger file at `path`, opened read-only for it and closed again (a file no
    DuckDB of this process holds: a backup, a repaired copy)."""
    con = files.connect(str(path), read_only=True, schema_version=schema_version)
    try:
        return verify.verify(con, str(path))
    finally:
        con.close()


def _verified(path: Path, schema_version: int) -> verify.Report:
    """`verify_file`, or LedgerDamaged naming the first finding."""
    report = verify_file(path, schema_version)
    if not report.clean:
        raise files.damaged(str(path), f"{len(report.findings)} finding(s), first: {report.findings[0]}")
    return report


def rotate(directory: Path, keep: int) -> list[Path]:
    """Delete all but the newest `keep` backups in `directory` (only files named as backups)."""
    found = sorted(p for p in directory.iterdir() if PATTERN.fullmatch(p.name))
    gone = found[:-keep] if keep > 0 else found
    for path in gone:
        path.unlink(missing_ok=True)
    return gone


def restore(backup: Path, ledger: Path, *, schema_version: int) -> tuple[verify.Report, Path | None]:
    """Put `backup` (verified first) in place of `ledger`; the replaced file is kept and returned.
    Refuses (LedgerLocked) while another process has `ledger` open."""
    report = _verified(backup, schema_version)
    if ledger.exists():
        try:  # a lock test: read-only takes DuckDB's shared lock, refused while anyone writes
            duckdb.connect(str(ledger), read_only=True).close()
        except duckdb.Error as error:
            known = files.classify(error, str(ledger))
            if known is not None and known.exit_code == 3:
                raise known from error  # in use: never pull a file from under its writer
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    staging = ledger.with_name(ledger.name + ".restoring")
    try:
        ledger.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(backup, staging)
        _fsync(staging)
        kept = None
        if ledger.exists():
            kept = ledger.with_name(f"{ledger.name}.replaced-{stamp}")
            os.replace(ledger, kept)
        wal = ledger.with_name(ledger.name + ".wal")
        if wal.exists():  # the old file's WAL must never be replayed onto the restored one
            os.replace(wal, ledger.with_name(f"{ledger.name}.replaced-{stamp}.wal"))
        os.replace(staging, ledger)
        _fsync(ledger.parent)
    except OSError as error:
        staging.unlink(missing_ok=True)
        raise (files.classify(error, str(ledger)) or error) from error
    return report, kept
