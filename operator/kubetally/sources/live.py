"""Live collection under a budget: an API request never waits on the metrics store for long.

Why: the live parts of a window (its partial edge hours, hours the ledger has not got yet) are
collected from the store while the request waits. A store that hangs (a stopped process) or
refuses connections must not hang the request: the whole live collection of one request gets
`SourceConfig.live_budget_seconds` (default 3 s), on top of the client's per-attempt deadline.

When the budget runs out, or the store is unavailable, the segments collected so far are kept and
the rest are answered as *not collected*: their hours count with coverage 0 and the answer carries
a warning saying which parts are missing. The ledger's hours still answer exactly, so a user gets
`cost(ledger hours)` with coverage < 1 rather than a hang or an error; only when nothing of the
window can be said (no ledger hour and no live part) does the caller answer 503.

Segments are collected one after the other (each one's queries run concurrently within the
client's slots), so a budget cut keeps every segment finished before it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from kubetally.domain.errors import SourceUnavailable
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.collect import RangeSource, Segment, collect_segment

#: Parts of a window named one by one in a warning; more are summarised by their count.
_NAMED_PARTS = 3


def _stamp(t: int) -> str:
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True, slots=True)
class LiveFacts:
    """One entry per requested segment (None where it was not collected), the segments missing,
    and why they are (`reason`, None when every segment was collected)."""

    segments: tuple[Segment | None, ...]
    missing: tuple[tuple[int, int], ...] = ()
    reason: str | None = None

    @property
    def collected(self) -> int:
        """How many segments were collected."""
        return sum(segment is not None for segment in self.segments)

    @property
    def warning(self) -> str | None:
        """The warning an answer carries for its missing live parts (None when none is missing)."""
        if self.reason is None:
            return None
        named = ", ".join(f"{_stamp(a)}–{_stamp(b)}" for a, b in self.missing[:_NAMED_PARTS])
        more = len(self.missing) - _NAMED_PARTS
        several = len(self.missing) != 1
        return (
            f"{self.reason}: the live part{'s' if several else ''} {named}{f' and {more} more' if more > 0 else ''} "
            f"of the window count{'' if several else 's'} with coverage 0 (cost missing, not 0); "
            "the rest comes from the ledger"
        )


async def collect_live(
    source: RangeSource, config: SourceConfig, segments: Sequence[tuple[int, int]]
) -> LiveFacts:
    """Collect `segments` within `config.live_budget_seconds` in all; never raises SourceUnavailable.

    Returns every segment collected before the budget ran out or the store failed, None for the
    others, and why they are missing."""
    done: list[Segment] = []
    budget = config.live_budget_seconds
    try:
        async with asyncio.timeout(budget):
            for a, b in segments:
                done.append(await collect_segment(source, config, a, b))
        return LiveFacts(segments=tuple(done))
    except TimeoutError:
        reason = f"the metrics store did not answer within the live budget of {budget:g} s"
    except SourceUnavailable as error:
        reason = f"the metrics store is unavailable ({str(error).split('; query: ')[0]})"
    missing = tuple(segments[len(done):])
    return LiveFacts(segments=(*done, *(None for _ in missing)), missing=missing, reason=reason)
