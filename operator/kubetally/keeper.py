"""The ledger inside a long-running process (`serve`, `run`; the control socket also in `ingest`,
`rollups` and `ledger repair`): opened and verified at start, its state for /readyz and /metrics,
answers to `kubetally ledger backup|verify`, and the optional backup schedule.

Opening, verifying and the control socket are `ledger.holder`'s (also used by `ingest` and
`rollups`, which need no HTTP server); this module adds what a serving process needs.

Decisions (issue 19):
- Open failures a user can fix (locked, not a ledger, newer, no space, read-only: `ledger.errors`)
  refuse to start: the command line prints the sentence and exits with its code.
- A damaged ledger does not stop the process: it runs Degraded (a crash loop hides the reason in
  a log; a running process shows it in /readyz, in `kubetally_ledger_damaged` and in every
  CostReport's conditions). It never writes into the file (`DuckDBLedger.failure` refuses every write
  and read), so a repair or restore starts from what was there. When DuckDB cannot even open the
  file, the process keeps an empty in-memory stand-in, failed the same way.
- The whole `ledger.verify` runs at open: ~4 s for the L ledger (720 h, 9.2M container facts,
  1.4 GB) on 2 cores, well inside the liveness probe's grace (manifests/manager: 15 s + 3 × 20 s).
  A damaged block first met later, by a query or a write, fails the ledger the same way
  (`DuckDBLedger._guarded`).
- /readyz stays 200 with `degraded: …` (as for a store outage): the Service and the aggregated
  APIService keep routing, so callers read the 503 Status naming the damage instead of a
  connection refused or an unavailable APIService that breaks `kubectl api-resources`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Gauge

from kubetally.api.app import STATE
from kubetally.api.ledger_guard import ledger_guard
from kubetally.ledger import backup
from kubetally.ledger.holder import control_socket, handlers, open_for_writing, open_verified
from kubetally.ledger.store import SCHEMA_VERSION, DuckDBLedger

__all__ = ["BackupSchedule", "attach", "backup_loop", "control_socket", "describe", "gauges", "guard", "handlers",
           "idle_while_refused", "open_for_writing", "open_verified"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class BackupSchedule:
    """`--backup-dir`, `--backup-every` (seconds), `--backup-keep` (newest N kept)."""

    directory: Path
    every_seconds: float = 86400.0
    keep: int = 7


async def idle_while_refused(service: object, seconds: float) -> bool:
    """When the ledger of `service` (a CostService) is refused, wait `seconds` and say so: the ingest loop
    then writes nothing (and builds no rollups) this pass."""
    if getattr(getattr(service, "ledger", None), "failure", None) is None:
        return False
    await asyncio.sleep(seconds)
    return True


def describe(ledger: DuckDBLedger) -> str:
    """The ledger's part of /readyz: "" when usable, else `degraded: …` naming the failure."""
    if ledger.failure is not None:
        return (f"degraded: {ledger.failure} (answers that read the ledger are refused with 503; nothing is written "
                "to it)")
    if ledger.write_error is not None:
        return f"degraded: {ledger.write_error} (answers come from the hours stored; new hours wait until then)"
    return ""


def guard(app: web.Application, ledger: DuckDBLedger) -> None:
    """On `app` (not started yet): /readyz names the ledger's failure first, and every answer that
    reads the ledger is refused with a 503 Status while it has one (`api.ledger_guard`, innermost)."""
    store_state = app[STATE]
    app[STATE] = lambda: describe(ledger) or store_state()
    app.middlewares.append(ledger_guard(lambda: ledger.failure))


async def attach(ledger: DuckDBLedger, registry: CollectorRegistry, stack: AsyncExitStack,
                 schedule: BackupSchedule | None, spawn: Callable[[Coroutine[Any, Any, None]], None]) -> None:
    """What a serving process adds for its ledger: the gauges, the control socket (closed with
    `stack`) and, with `schedule`, the backup loop (run by `spawn`)."""
    made = gauges(ledger, registry)
    await stack.enter_async_context(control_socket(ledger))
    if schedule is not None:
        spawn(backup_loop(ledger, schedule, made))


def gauges(ledger: DuckDBLedger, registry: CollectorRegistry) -> Gauge:
    """`kubetally_ledger_damaged` (1 while the ledger is refused) on `registry`; returns the gauge
    `kubetally_ledger_backup_timestamp_seconds` (unix time of the last backup made, 0 before any)."""
    Gauge("kubetally_ledger_damaged", "1 while the ledger is damaged or unusable: answers are refused, nothing written",
          registry=registry).set_function(lambda: 0.0 if ledger.failure is None else 1.0)
    return Gauge("kubetally_ledger_backup_timestamp_seconds", "unix time of the last ledger backup this process made",
                 registry=registry)


async def backup_loop(ledger: DuckDBLedger, schedule: BackupSchedule, made: Gauge) -> None:
    """Every `schedule.every_seconds`: a backup into `schedule.directory`, then keep the newest
    `schedule.keep`. A damaged ledger is not backed up (the last good backups are kept as they are).
    The newest `keep` are also what is left at start: a process stopped between a backup and its
    rotation leaves one more, removed here."""
    if schedule.directory.is_dir():
        backup.rotate(schedule.directory, schedule.keep)
    while True:
        await asyncio.sleep(schedule.every_seconds)
        if ledger.failure is not None:
            log.warning("no scheduled backup: %s", ledger.failure)
            continue
        try:
            taken = await asyncio.to_thread(backup.snapshot, ledger.connection, ledger.path,
                                            f"{schedule.directory}/", schema_version=SCHEMA_VERSION)
            gone = backup.rotate(schedule.directory, schedule.keep)
        except Exception as error:  # logged, retried at the next tick: a backup never stops the process
            log.error("scheduled backup failed: %s", error)
            continue
        made.set(time.time())
        log.info("%s; %d old backup(s) removed", taken.line(ledger.path), len(gone))
