"""`kubetally ledger verify|backup|restore|repair`: the ledger's integrity and backups by hand.

Exit codes (README "Ledger: integrity, backups, restore"): `verify` 0 whole, 1 damaged, 2 cannot be
opened for another reason (locked by a process that does not answer, not a ledger, newer, no
permission); the others 0 done, else the `LedgerError`'s code (1 damaged, 3 locked, 4 not a ledger,
5 newer, 6 no space, 7 read-only) or 2 for bad input. Every failure is one `kubetally: …` line.

While another kubetally process holds the ledger (DuckDB allows one), `verify` and `backup` ask it
over its control socket (`ledger.control`), so a backup never needs the operator stopped.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from kubetally.ledger import backup, control, files, verify
from kubetally.ledger.errors import LedgerDamaged, LedgerError, LedgerLocked
from kubetally.ledger.store import SCHEMA_VERSION


def _fail(error: LedgerError | str, code: int | None = None) -> int:
    print(f"kubetally: {error}", file=sys.stderr, flush=True)
    return code if code is not None else (error.exit_code if isinstance(error, LedgerError) else 2)


def _asked(path: str, request: dict[str, object], locked: LedgerLocked, timeout: float, *, verifying: bool) -> int:
    """Ask the holder of `path`; its answer printed, or the lock's sentence when nobody answers."""
    try:
        answer = control.ask(path, request, timeout=timeout)
    except (OSError, ValueError) as error:
        return _fail(f"{locked} (its control socket {control.socket_path(path)} did not answer within "
                     f"{timeout:.0f} s: {error})", 2 if verifying else locked.exit_code)
    if answer is None:
        return _fail(f"{locked} (it does not answer on {control.socket_path(path)}: not a kubetally of this version)",
                     2 if verifying else locked.exit_code)
    if not answer.get("ok"):
        return _fail(str(answer.get("error")), int(answer.get("exit", 2)))
    print(answer.get("line", ""), flush=True)
    return int(answer.get("exit", 0))


def verify_command(path: str, timeout: float) -> int:
    try:
        con = files.connect(path, read_only=True, schema_version=SCHEMA_VERSION)
    except LedgerLocked as locked:
        return _asked(path, {"op": "verify"}, locked, timeout, verifying=True)
    except LedgerDamaged as error:
        print(f"damaged: the file cannot be opened: {error}", flush=True)
        print(f"{path}: DAMAGED: it cannot be opened", flush=True)
        return 1
    except LedgerError as error:
        return _fail(error, 2)
    try:
        report = verify.verify(con, path)
    finally:
        con.close()
    for finding in report.findings:
        print(f"damaged: {finding}", flush=True)
    print(report.summary(), flush=True)
    return 0 if report.clean else 1


def backup_command(path: str, to: str, keep: int | None, timeout: float) -> int:
    target = Path(to).absolute()
    wanted = str(target) + ("/" if target.is_dir() or to.endswith("/") else "")
    try:
        con = files.connect(path, read_only=True, schema_version=SCHEMA_VERSION)
    except LedgerLocked as locked:
        code = _asked(path, {"op": "backup", "to": wanted}, locked, timeout, verifying=False)
    except LedgerError as error:
        return _fail(error)
    else:
        try:
            made = backup.snapshot(con, path, wanted, schema_version=SCHEMA_VERSION)
        except LedgerError as error:
            return _fail(error)
        finally:
            con.close()
        print(made.line(path), flush=True)
        code = 0
    if code == 0 and keep is not None and wanted.endswith("/"):
        gone = backup.rotate(target, keep)
        if gone:
            print(f"removed {len(gone)} older backup(s): {', '.join(p.name for p in gone)}", flush=True)
    return code


def restore_command(source: str, path: str) -> int:
    try:
        report, kept = backup.restore(Path(source), Path(path), schema_version=SCHEMA_VERSION)
    except LedgerError as error:
        return _fail(error)
    where = f"; the file it replaced is kept at {kept}" if kept else ""
    print(f"restored {path} from {source} ({report.hours} hours, verified clean){where}", flush=True)
    return 0


def add_arguments(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """The `ledger` command and its subcommands."""
    ledger = commands.add_parser("ledger", help="verify, back up, restore or repair a ledger file")
    sub = ledger.add_subparsers(dest="ledger_command", required=True)
    check = sub.add_parser("verify", help="read every block and check the bookkeeping; exit 0 whole, 1 damaged, "
                                          "2 cannot open")
    check.add_argument("--ledger", required=True, help="the ledger file")
    check.add_argument("--timeout", type=float, default=600.0, help="seconds to wait for a process holding it")
    take = sub.add_parser("backup", help="a consistent snapshot, also while kubetally runs on the ledger")
    take.add_argument("--ledger", required=True, help="the ledger file")
    take.add_argument("--to", required=True, help="a directory (gets kubetally-ledger-<UTC time>.duckdb) or a file")
    take.add_argument("--keep", type=int, default=None, help="with a directory: keep only the newest N backups")
    take.add_argument("--timeout", type=float, default=900.0, help="seconds to wait for a process holding it")
    put = sub.add_parser("restore", help="put a backup in place of a ledger that no process has open")
    put.add_argument("--from", dest="source", required=True, help="the backup file")
    put.add_argument("--ledger", required=True, help="the ledger file (the one it replaces is kept)")
    fix = sub.add_parser("repair", help="copy what is whole, ingest damaged hours again from Prometheus (within its "
                                        "retention); nothing may have the ledger open")
    fix.add_argument("--ledger", required=True, help="the ledger file")
    fix.add_argument("--prometheus-url", required=True)
    fix.add_argument("--cluster", default="default", help="the cluster whose damaged hours are ingested again")
    fix.add_argument("--cluster-label", default=None, help="series label naming the cluster")
    fix.add_argument("--project-label", default="kubetally.io/project")
    fix.add_argument("--resolution", type=int, default=60, help="seconds")
    fix.add_argument("--now", default=None, help="replay: pretend the current time is T (RFC3339 or unix seconds)")
