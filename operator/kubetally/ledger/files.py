"""The one place a ledger file is opened, and every user-causable failure named (`ledger.errors`).

Why: DuckDB reports a second writer, a file that is not ours, a full disk or a cut-short file as
tracebacks of `IOException`s whose text is meant for DuckDB's developers. A user needs a sentence:
which file, what is wrong, what to do next. `connect` opens; `classify` maps any DuckDB or OS error
met later (a write, a checkpoint, a read of a damaged block) to the same sentences.

Decisions:
- The holder of a lock is named from DuckDB's own message ("… (PID n)") and `/proc/n/cmdline` when
  readable (another mount namespace, or hidepid, leaves just the PID). The attempt never disturbs
  the holder: DuckDB's lock is an fcntl lock, and the failed attempt holds none.
- A file's first bytes are read only after DuckDB refused it as "not a valid DuckDB database file",
  never before: closing any descriptor of a file drops every fcntl lock this process holds on it, so
  reading the header of a ledger this process (another DuckDBLedger) has open would unlock it.
- A DuckDB database without our `ledger_meta` table is not written into: kubetally never creates
  its tables inside a database it did not create. An empty DuckDB database (no table at all) is a
  new ledger.
- `schema_version` above ours refuses the file (it may hold what we cannot read correctly); a newer
  DuckDB storage format says the same.
"""

from __future__ import annotations

import errno
import os
import re
from pathlib import Path

import duckdb

from kubetally.ledger.errors import (
    LedgerDamaged,
    LedgerError,
    LedgerLocked,
    LedgerNoSpace,
    LedgerReadOnly,
    NewerLedger,
    NotALedger,
)

_PID = re.compile(r"\(PID (\d+)\)")
_CHECKSUM = re.compile(r"checksum \d+ does not match stored checksum \d+ in block at location (\d+)")
_SHORT = re.compile(r"attempted to read (\d+) bytes from location (\d+)")
_DAMAGE = ("Corrupt database file", "Could not read enough bytes", "No more data remaining in MetadataReader",
           "Failed to load metadata pointer", "corrupt database file", "Bitpacking offset is out of range")
_NEWER_FORMAT = re.compile(r"database file with version number (\d+), but we can only read version")


def holder(pid: int) -> str:
    """`PID n (command line)`, or `PID n` when /proc does not show its command line."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return f"PID {pid}"
    command = " ".join(" ".join(part.decode(errors="replace").split()) for part in raw.split(b"\0") if part)
    if len(command) > 160:
        command = command[:157] + "..."
    return f"PID {pid} ({command})" if command else f"PID {pid}"


def _damage_detail(text: str) -> str:
    """What a DuckDB damage message says, in a few words (bytes are offsets from the file's start)."""
    if found := _CHECKSUM.search(text):
        return f"the block at byte {found.group(1)} fails its checksum"
    if found := _SHORT.search(text):
        return f"the file ends before byte {int(found.group(2)) + int(found.group(1))}: it was cut short"
    return text.split("\n")[0].removeprefix("IO Error: ").removeprefix("INTERNAL Error: ")


def damaged(path: str, detail: str) -> LedgerDamaged:
    return LedgerDamaged(path, f"the ledger {path} is damaged ({detail}); `kubetally ledger verify --ledger {path}` "
                               "lists the damage; `kubetally ledger repair` re-ingests hours Prometheus still holds, "
                               "`kubetally ledger restore` puts back a backup")


def classify(error: BaseException, path: str) -> LedgerError | None:
    """The user-facing failure `error` (from DuckDB or the OS, about the ledger at `path`) is, or None
    when it is none of those (a bug: let it surface as it is)."""
    if isinstance(error, LedgerError):
        return error
    text = str(error)
    code = error.errno if isinstance(error, OSError) else None
    if "Could not set lock on file" in text:
        pid = _PID.search(text)
        who = holder(int(pid.group(1))) if pid else "another process"
        return LedgerLocked(path, f"the ledger {path} is in use by {who}: DuckDB lets one process open it; stop that "
                                  "process first, or let it finish (`kubetally ledger backup` asks a running "
                                  "kubetally for a snapshot)", int(pid.group(1)) if pid else None)
    if code == errno.ENOSPC or "No space left on device" in text:
        return LedgerNoSpace(path, f"no space left on the volume of the ledger {path}: free space or grow the volume "
                                   "(PVC), then start again; the ledger keeps every hour committed before")
    if code in (errno.EROFS, errno.EACCES, errno.EPERM) or "Read-only file system" in text \
            or "Permission denied" in text:
        why = "the volume is read-only" if code == errno.EROFS or "Read-only" in text else "permission denied"
        return LedgerReadOnly(path, f"the ledger {path} cannot be written: {why} (uid {os.getuid()}); mount the "
                                    "volume read-write for this user; `kubetally ledger verify` and `backup` only read")
    if found := _NEWER_FORMAT.search(text):
        return NewerLedger(path, f"the ledger {path} was written by a newer kubetally (DuckDB storage version "
                                 f"{found.group(1)}); upgrade kubetally, or restore a backup")
    if "not a valid DuckDB database file" in text:
        return _not_duckdb(path)
    if any(mark in text for mark in _DAMAGE):
        return damaged(path, _damage_detail(text))
    return None


def _not_duckdb(path: str) -> NotALedger:
    """DuckDB refused the file: say what it holds (safe to read now: no DuckDB of ours has it open)."""
    try:
        size = os.path.getsize(path)
    except OSError:
        size = -1
    what = "an empty file" if size == 0 else "not a DuckDB file"
    return NotALedger(path, f"{path} is not a kubetally ledger ({what}); point --ledger at the ledger file, or put a "
                            "backup there with `kubetally ledger restore`")


def connect(path: str, *, read_only: bool, schema_version: int) -> duckdb.DuckDBPyConnection:
    """Open the ledger file at `path` (creating it and its directory unless `read_only`), checked to
    be ours and not newer; every user-causable failure raises a `LedgerError`."""
    if read_only and not os.path.exists(path):
        raise NotALedger(path, f"no ledger at {path}: the file does not exist; check --ledger")
    try:
        if not read_only:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        con = duckdb.connect(path, read_only=read_only)
    except (duckdb.Error, OSError) as error:
        raise (classify(error, path) or error) from error
    try:
        check(con, path, schema_version)
    except BaseException:
        con.close()
        raise
    return con


def check(con: duckdb.DuckDBPyConnection, path: str, schema_version: int) -> None:
    """The database is a kubetally ledger (or empty), of a schema version we can read."""
    try:
        tables = {str(row[0]) for row in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()").fetchall()}
        if not tables:
            return
        if "ledger_meta" not in tables:
            some = ", ".join(sorted(tables)[:5])
            raise NotALedger(path, f"{path} is a DuckDB database but not a kubetally ledger (no ledger_meta table; it "
                                   f"has {some}); point --ledger at the ledger file: kubetally never writes into a "
                                   "database it did not create")
        row = con.execute("SELECT value FROM ledger_meta WHERE key = 'schema_version'").fetchone()
    except duckdb.Error as error:
        raise (classify(error, path) or error) from error
    found = int(row[0]) if row is not None and str(row[0]).isdigit() else None
    if found is not None and found > schema_version:
        raise NewerLedger(path, f"the ledger {path} was written by a newer kubetally (schema version {found}; this one "
                                f"reads up to {schema_version}); upgrade kubetally, or restore a backup")
