"""`kubetally ledger repair`: a damaged ledger rebuilt from what is whole in it plus Prometheus.

How: the damaged file is opened read-only and verified (`ledger.verify`); a new ledger file
`<ledger>.repairing` receives every hour that is whole, copied as it is (a UTC day at a time,
an hour at a time where a day's copy meets a damaged block: zone maps keep a filtered copy off the
row groups of other hours), and the price versions; then every damaged or uncopyable hour of
`--cluster` that Prometheus still holds is ingested again, exactly as `kubetally ingest` would
(same collection, same code), so a repaired hour equals an uninterrupted ingest row for row. The
new file is verified, the damaged one is kept as `<ledger>.damaged-<stamp>` (with its WAL), and the
new one takes its name. Rollups are not copied: `serve`, `run` or `kubetally rollups` rebuild them.

Retention: an hour older than the earliest hour Prometheus has node data for
(`ingest.earliest_data`) cannot be collected again; repair names those hours and says to restore
them from a backup. Hours of other clusters that are damaged are named the same way.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from kubetally import ingest
from kubetally.ledger import backup, files, verify
from kubetally.ledger.errors import LedgerError
from kubetally.ledger.salvage import copy_hours
from kubetally.ledger.store import SCHEMA_VERSION, DuckDBLedger
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.prometheus import PrometheusClient

HOUR, DAY = 3600, 86400


@dataclass
class Repair:
    """What a repair did: hours copied, hours ingested again, hours it could not bring back."""

    copied: int = 0
    ingested: list[int] = field(default_factory=list)
    lost: list[tuple[str, int]] = field(default_factory=list)
    kept: Path | None = None
    findings: int = 0
    prices_lost: bool = False


def _stamp(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%dT%H:%MZ")


async def repair(path: Path, prometheus_url: str, config: SourceConfig, *, now: int,
                 say: Callable[[str], None]) -> Repair:
    """Repair the ledger at `path` (module docstring); `say` prints progress lines."""
    source = str(path)
    con = files.connect(source, read_only=True, schema_version=SCHEMA_VERSION)
    try:
        report = verify.verify(con, source)
        try:
            recorded = [(str(c), int(h)) for c, h in con.execute(
                "SELECT cluster, hour_start FROM hours ORDER BY 1, 2").fetchall()]
        except duckdb.Error as error:
            raise files.damaged(source, "its table of ingested hours is unreadable, so what it held is unknown; "
                                        "restore a backup instead") from error
    finally:
        con.close()
    result = Repair(findings=len(report.findings))
    if report.clean:
        return result
    for finding in report.findings:
        say(f"damaged: {finding}")
    building = path.with_name(path.name + ".repairing")
    for leftover in (building, building.with_name(building.name + ".wal")):
        leftover.unlink(missing_ok=True)
    bad = set(report.bad_hours)
    ledger = DuckDBLedger(building)
    try:
        con = ledger.connection
        con.execute(f"ATTACH '{source.replace(chr(39), chr(39) * 2)}' AS old (READ_ONLY)")
        days: dict[tuple[str, int], list[tuple[str, int]]] = {}
        for cluster, hour in recorded:
            if (cluster, hour) not in bad:
                days.setdefault((cluster, hour - hour % DAY), []).append((cluster, hour))
        for group in days.values():
            if copy_hours(con, group):
                result.copied += len(group)
                continue
            for one in group:
                if copy_hours(con, [one]):
                    result.copied += 1
                else:
                    bad.add(one)
        try:
            con.execute("INSERT INTO main.price_versions BY NAME SELECT * FROM old.price_versions")
        except duckdb.Error:
            result.prices_lost = True
        con.execute("DETACH old")
        say(f"copied {result.copied} whole hours; {len(bad)} to bring back")
        await _ingest_again(ledger, sorted(bad), prometheus_url, config, now, result, say)
    finally:
        ledger.close()
    after = backup.verify_file(building, SCHEMA_VERSION)
    if not after.clean:
        raise LedgerError(str(building), f"the repaired ledger {building} does not verify ({after.findings[0]}); "
                                         f"{path} is left as it was")
    result.kept = _swap(path, building)
    return result


async def _ingest_again(ledger: DuckDBLedger, bad: list[tuple[str, int]], url: str, config: SourceConfig, now: int,
                        result: Repair, say: Callable[[str], None]) -> None:
    """Ingest again the hours of `config.cluster` in `bad` that Prometheus still holds; the others are lost."""
    mine = [hour for cluster, hour in bad if cluster == config.cluster and hour + HOUR <= now]
    result.lost.extend((cluster, hour) for cluster, hour in bad if cluster != config.cluster or hour + HOUR > now)
    if not mine:
        return
    async with PrometheusClient(url) as client:
        days = (now - min(mine)) // DAY + 2
        earliest = await ingest.earliest_data(client, config, now=now, limit_days=days)
        for hour in mine:
            if earliest is None or hour < earliest:
                result.lost.append((config.cluster, hour))
                continue
            summary = await ingest.ingest_range(client, ledger, config, hour, hour + HOUR, now=now)
            result.ingested.append(hour)
            say(f"ingested {_stamp(hour)} again from Prometheus: {summary.container_facts} container facts, "
                f"coverage {summary.min_coverage:.4f}")


def _swap(path: Path, building: Path) -> Path:
    """Keep the damaged file (and its WAL) as `<path>.damaged-<stamp>`; put the repaired one in its place."""
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    kept = path.with_name(f"{path.name}.damaged-{stamp}")
    os.replace(path, kept)
    wal = path.with_name(path.name + ".wal")
    if wal.exists():
        os.replace(wal, kept.with_name(kept.name + ".wal"))
    os.replace(building, path)
    return kept


def lines(result: Repair, path: Path) -> list[str]:
    """The summary a user reads: what was done, and what must come from a backup."""
    if not result.findings:
        return [f"{path}: clean; nothing to repair"]
    out = [f"repaired {path}: {result.copied} hours copied, {len(result.ingested)} ingested again from Prometheus; "
           f"the damaged file is kept at {result.kept}; rollups are rebuilt by serve, run or `kubetally rollups`"]
    if result.prices_lost:
        out.append("the price versions were unreadable: serve --weights and run record the CostWeights again")
    if result.lost:
        hours = ", ".join(f"{_stamp(hour)} ({cluster})" for cluster, hour in sorted(result.lost)[:10])
        more = f" and {len(result.lost) - 10} more" if len(result.lost) > 10 else ""
        out.append(f"{len(result.lost)} hours are beyond Prometheus' retention (or of another cluster) and are "
                   f"missing: {hours}{more}; restore them from a backup (`kubetally ledger restore`)")
    return out
