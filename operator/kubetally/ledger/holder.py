"""The process holding a ledger file, without the HTTP server: opened and verified (`open_verified`,
`open_for_writing`), and the control socket that answers `kubetally ledger backup|verify` for it.

Why apart from `kubetally.keeper`: `kubetally ingest` and `rollups` hold the ledger too, and must not
pay for importing the HTTP API (aiohttp, the app) at every start (bench: ingest of one L hour, process
start to exit). The rules are `keeper`'s (module docstring there): the whole `ledger.verify` at open; a
damaged ledger is kept, failed, and never written; only its holder takes snapshots of it.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from kubetally.ledger import backup, control, verify
from kubetally.ledger.errors import LedgerDamaged
from kubetally.ledger.files import damaged
from kubetally.ledger.store import SCHEMA_VERSION, DuckDBLedger

log = logging.getLogger(__name__)


def open_verified(path: Path, memory_limit: str | None = None, *, quiet: bool = False) -> DuckDBLedger:
    """The ledger at `path`, verified (module docstring); a LedgerError other than damage propagates.
    The findings are logged unless `quiet` (a command line prints one sentence instead)."""
    report = log.error if not quiet else (lambda *_: None)
    try:
        ledger = DuckDBLedger(path, memory_limit=memory_limit)
    except LedgerDamaged as error:
        report("%s", error)
        ledger = DuckDBLedger(":memory:")
        ledger.path = str(path)
        ledger.failure = error
        return ledger
    checked = verify.verify(ledger.connection, str(path))
    for finding in checked.findings[:20]:
        report("ledger %s: %s", path, finding)
    if checked.findings:
        ledger.failure = damaged(str(path), f"{len(checked.findings)} finding(s) at start, first: "
                                            f"{checked.findings[0]}")
        report("%s", ledger.failure)
    else:
        log.info("%s", checked.summary())
    return ledger


def open_for_writing(path: Path) -> DuckDBLedger:
    """The ledger at `path`, verified, for a command that writes (`ingest`, `rollups`): a damaged one is
    refused (LedgerDamaged, exit 1) before anything is read from Prometheus or written."""
    ledger = open_verified(path, quiet=True)
    if ledger.failure is not None:
        ledger.close()
        raise ledger.failure
    return ledger


def handlers(ledger: DuckDBLedger) -> control.Handlers:
    """What the control socket answers for `ledger` (`ledger.control`)."""

    def take(request: dict[str, Any]) -> dict[str, Any]:
        if ledger.failure is not None:
            raise ledger.failure
        made = backup.snapshot(ledger.connection, ledger.path, str(request.get("to", "")),
                               schema_version=SCHEMA_VERSION)
        return {"line": made.line(ledger.path), "path": str(made.path)}

    def check(request: dict[str, Any]) -> dict[str, Any]:
        if ledger.failure is not None:
            return {"line": f"{ledger.path}: DAMAGED: {ledger.failure}", "exit": 1}
        report = verify.verify(ledger.connection, ledger.path)
        lines = [*report.findings, report.summary() + " (by the process holding it)"]
        return {"line": "\n".join(lines), "exit": 0 if report.clean else 1}

    return {"backup": take, "verify": check}


@asynccontextmanager
async def control_socket(ledger: DuckDBLedger) -> AsyncIterator[None]:
    """Answer `kubetally ledger backup|verify` for `ledger` while the block runs."""
    if ledger.path == ":memory:":
        yield
        return
    async with control.serving(ledger.path, handlers(ledger)):
        yield
