"""Filling the ledger from the metrics store, and the live edges of a window.

- `ingest_range` writes every complete hour of [start, end) (an hour is complete once `now` has
  passed its end), one hour at a time: one hour is one transaction in the ledger, so a crash loses
  at most the hour being written, and writing it again changes nothing.
- `ingest_range(..., only_missing=True)` writes only the complete hours the ledger has not got;
  `earliest_data` finds how far back the store holds data, so a start-up backfill can go as far as
  the store does.
- `window_facts` answers a window: complete hours from the ledger, and everything else (the partial
  hours at its edges, the current hour, hours never ingested) collected live from the store by the
  same code that ingests an hour, over the shorter segments. Live segments never cross an hour
  boundary, so they nest in hourly and daily steps. The live parts get `live_budget_seconds` in
  all (`sources.live`): a hung or dead store leaves them out (coverage 0, a warning in the plan),
  and a window with neither a ledger hour nor a live part raises SourceUnavailable (a 503).

`now` is always a parameter (unix seconds); nothing here reads a clock.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from kubetally.domain.errors import SourceUnavailable
from kubetally.domain.sets import ceil_to, floor_to
from kubetally.facts.batch import FactBatch, merge
from kubetally.ledger.store import Ledger
from kubetally.sources.catalogue import SourceConfig, node_presence
from kubetally.sources.collect import RangeSource, collect_segment
from kubetally.sources.live import collect_live

HOUR = 3600


@dataclass(frozen=True, slots=True)
class IngestSummary:
    """What an ingest run did: hours written and the lowest coverage among them."""

    hours: int
    container_facts: int
    min_coverage: float


async def ingest_range(
    source: RangeSource,
    ledger: Ledger,
    config: SourceConfig,
    start: int,
    end: int,
    *,
    now: int,
    only_missing: bool = False,
    progress: Callable[[int, int, int, float], None] | None = None,
) -> IngestSummary:
    """Ingest every complete hour h with start ≤ h < end (hours aligned down from `start`)."""
    first, last = floor_to(start, HOUR), min(ceil_to(end, HOUR), floor_to(now, HOUR))
    hours = list(range(first, last, HOUR))
    if only_missing:
        present = ledger.hours(config.cluster, first, last)
        hours = [h for h in hours if h not in present]
    written, facts, lowest = 0, 0, 1.0
    for position, hour in enumerate(hours, start=1):
        segment = await collect_segment(source, config, hour, hour + HOUR)
        ledger.write_hour(config.cluster, hour, segment.batch, segment.coverage, ingested_at=now)
        count = segment.batch.rows("container_facts")
        written, facts, lowest = written + 1, facts + count, min(lowest, segment.coverage)
        if progress is not None:
            progress(position, len(hours), hour, segment.coverage)
    return IngestSummary(hours=written, container_facts=facts, min_coverage=lowest if written else 1.0)


def live_segments(
    start: int, end: int, ledger_hours: set[int], resolution: int, newest: int | None = None,
    cuts: Sequence[int] = (),
) -> list[tuple[int, int]]:
    """The parts of [start, end) (aligned to `resolution`) to collect live, cut at hour boundaries
    and at the set boundaries `cuts`: partial hours at the edges, hours a set boundary cuts (a day
    in a +05:30 zone), and whole hours the ledger lacks that are newer than its newest hour
    `newest` (not ingested yet). A whole hour missing *before* `newest` is a gap the backfill owns:
    it is not collected live, and its coverage is reported as 0."""
    start, end = floor_to(start, resolution), floor_to(end, resolution)
    inner = sorted({floor_to(c, resolution) for c in cuts if start < c < end})
    out: list[tuple[int, int]] = []
    cursor = start
    while cursor < end:
        hour = floor_to(cursor, HOUR)
        stop = min(hour + HOUR, end, *(c for c in inner if c > cursor))
        whole = cursor == hour and stop == hour + HOUR
        if not whole or (hour not in ledger_hours and (newest is None or hour > newest)):
            out.append((cursor, stop))
        cursor = stop
    return out


@dataclass(frozen=True, slots=True)
class WindowPlan:
    """How a window is answered: ledger hours, live segments, and the coverage of each hour;
    `warnings` say why live parts are missing (the store did not answer within the live budget)."""

    ledger_hours: tuple[int, ...]
    live: tuple[tuple[int, int], ...]
    coverage: dict[int, float]
    warnings: tuple[str, ...] = ()


async def window_facts(
    source: RangeSource, ledger: Ledger, config: SourceConfig, start: int, end: int, cuts: Sequence[int] = ()
) -> tuple[FactBatch, WindowPlan]:
    """Live facts for the parts of [start, end) that the ledger lacks or that a set boundary in
    `cuts` splits, and the plan used: `plan.ledger_hours` are the hours to read from the ledger."""
    stored = ledger.hours(config.cluster, floor_to(start, HOUR), ceil_to(end, HOUR))
    newest = ledger.latest_hour(config.cluster)
    segments = live_segments(start, end, set(stored), config.resolution_seconds, newest, cuts)
    split = {floor_to(a, HOUR) for a, b in segments if b - a < HOUR}
    batches: list[FactBatch] = []
    coverage = dict.fromkeys(range(ceil_to(start, HOUR), floor_to(end, HOUR), HOUR), 0.0)
    coverage.update({hour: r.coverage for hour, r in stored.items() if start <= hour and hour + HOUR <= end})
    live_coverage: dict[int, float] = {}
    collected = await collect_live(source, config, segments)  # within config.live_budget_seconds
    for (a, _), segment in zip(segments, collected.segments, strict=True):
        hour = floor_to(a, HOUR)
        if segment is not None:
            batches.append(segment.batch)
        live_coverage[hour] = min(live_coverage.get(hour, 1.0), segment.coverage if segment is not None else 0.0)
    coverage.update(live_coverage)
    used = tuple(h for h in sorted(stored) if start <= h and h + HOUR <= end and h not in split)
    if collected.warning and not used and not collected.collected:
        raise SourceUnavailable(f"{collected.reason}, and the ledger holds no complete hour of this window")
    warnings = (collected.warning,) if collected.warning else ()
    return merge(batches), WindowPlan(ledger_hours=used, live=tuple(segments), coverage=coverage, warnings=warnings)


class InstantSource(Protocol):
    """What `earliest_data` needs of a Prometheus client: an instant query returning samples."""

    async def query(self, query: str, time: int) -> list[Any]: ...


async def earliest_data(
    source: InstantSource, config: SourceConfig, *, now: int, limit_days: int = 30, stop_after_empty_days: int = 3
) -> int | None:
    """The start of the earliest hour in which the store has node data, looking back `limit_days`.

    Scans back one day at a time with `count(max_over_time(kube_node_info[1d]))` (each probe reads
    one day of one small series per node), and stops after `stop_after_empty_days` empty days
    older than the oldest data found, so a short outage does not end the search; then finds the
    first hour with data in the earliest day. At most limit_days + 24 instant queries. None when the
    store holds no node data at all in that span.
    """
    async def has_data(query: str, end: int) -> bool:
        return bool(await source.query(query, end - 1))

    day_probe, hour_probe = node_presence(config, 86400), node_presence(config, HOUR)
    end, oldest_day, empty = floor_to(now, HOUR), None, 0
    for _ in range(limit_days):
        if await has_data(day_probe, end):
            oldest_day, empty = end - 86400, 0
        elif oldest_day is not None:
            empty += 1
            if empty >= stop_after_empty_days:
                break
        end -= 86400
    if oldest_day is None:
        return None
    for hour in range(oldest_day, oldest_day + 86400, HOUR):
        if await has_data(hour_probe, hour + HOUR):
            return hour
    return None
