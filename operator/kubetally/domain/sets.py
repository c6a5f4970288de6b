"""Cost sets: how a window and a `step` become the sets a cost answer is split into.

One rule for every caller (`GET /v2/cost`, CostReport validation and computation): `resolve_span`
floors the window to the sampling resolution and checks it, `parse_step` reads the step, `cut_sets`
cuts the window. Nothing else in the project decides where a set begins.

Why a grid, and not "every `step` from the window's start": a relative window ends at *now*
(10:17:23 on a real clock), and sets counted from its start would begin at hh:17 every day, so the
ledger's whole hours would straddle every set boundary and a set "day" would match no calendar day a
user knows. Trend charts (and Kubecost's accumulated sets) cut on the calendar instead. So sets are
cut on the step's natural grid in the query's time zone, and only the first and the last set are
clipped to the window:

    step = N weeks (a multiple of 7 d)   local Monday midnights, every N-th week from Monday 1970-01-05
    step = N days  (otherwise)           local midnights of every N-th local date from 1970-01-01
    step = N hours, 24 % N == 0          local midnight + k·N hours (elapsed) within each local day
                                         (1h, 2h, 3h, 4h, 6h, 8h, 12h; a 23 h or 25 h DST day ends
                                         with a shorter or longer set, cut at the next midnight)
    step = N hours, any other N          multiples of N hours since the Unix epoch (5h, 7h, 36h)

The grid does not depend on the window, so the same set asked in two windows has the same bounds.

Steps are whole hours (1h or more): the ledger stores whole hours, and a set boundary that is not on
a whole UTC hour (a day in a +05:30 zone) is honoured exactly by collecting the hour it cuts live,
in two pieces, as the window's partial edge hours are (`ingest.window_facts`). Sub-hour steps
(30m, 45m) are refused: they would make every hour of the window a live Prometheus query, which is
what the ledger exists to avoid.

Pure: no clock, no environment. Instants are unix seconds or aware UTC datetimes.
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, date, datetime, time, timedelta, tzinfo

from kubetally.domain.errors import SpecError
from kubetally.domain.timeparse import WINDOW_EXAMPLES, from_epoch, parse_duration, to_epoch
from kubetally.domain.window import Window, parse_window

__all__ = ["MAX_SETS", "MAX_WINDOW_DAYS", "ceil_to", "cut_bounds", "cut_sets", "floor_to", "parse_step", "resolve_span"]

HOUR = 3600
DAY = 86400
WEEK = 7 * DAY
#: Most sets one answer may be split into (CORRECTNESS.md S5).
MAX_SETS = 2000
#: Longest window a cost question may span.
MAX_WINDOW_DAYS = 400
_UNIX_DAY_ZERO = date(1970, 1, 1)
_UNIX_MONDAY_ZERO = date(1970, 1, 5)
_STEP_ACCEPTED = "a whole number of hours, at least 1h: e.g. 1h, 2h, 6h, 1d, 1w"


def floor_to(t: int, step: int) -> int:
    """The last multiple of `step` seconds at or before unix time `t`: t − (t mod step).

    The one floor of the project: a window's bounds to the sampling resolution (`resolve_span`),
    `now` to it (the service), live segments and ledger hours to it or to the hour (`ingest`)."""
    return t - t % step


def ceil_to(t: int, step: int) -> int:
    """The first multiple of `step` seconds at or after unix time `t`: −⌊−t / step⌋ · step."""
    return -(-t // step) * step


def parse_step(text: str, *, field: str = "step") -> int:
    """Seconds of `text`, a duration that is a whole number of hours (SpecError otherwise)."""
    try:
        seconds = parse_duration(text.strip(), field=field)
    except SpecError:
        raise SpecError(field, f"{_shown(text)} is not a duration; accepted: {_STEP_ACCEPTED}") from None
    if seconds % HOUR != 0:
        raise SpecError(
            field,
            f"{_shown(text)} is not a whole number of hours; accepted: {_STEP_ACCEPTED} (the ledger is hourly, "
            "so sub-hour steps such as 30m are not served)",
        )
    return seconds


def _shown(text: str) -> str:
    """`text` quoted for a message, cut to a readable length."""
    text = text.strip()
    return json.dumps(text if len(text) <= 40 else text[:40] + "…", ensure_ascii=False)


def _midnight(day: date, tz: tzinfo) -> int:
    """Unix seconds of local date `day`'s first instant (fold=0, as `window.local_midnight`)."""
    return to_epoch(datetime.combine(day, time(0), tzinfo=tz).astimezone(UTC))


def cut_bounds(start: int, end: int, step: int | None, tz: tzinfo = UTC) -> list[int]:
    """The set boundaries strictly inside [start, end) (unix seconds, sorted) for `step` seconds."""
    if step is None:
        return []
    if step <= 0 or step % HOUR != 0:
        raise ValueError(f"step must be a positive whole number of hours, got {step} s")
    cuts: list[int] = []
    if step % DAY == 0:
        every, zero = (step // WEEK * 7, _UNIX_MONDAY_ZERO) if step % WEEK == 0 else (step // DAY, _UNIX_DAY_ZERO)
        day = datetime.fromtimestamp(start, tz).date()
        day -= timedelta(days=(day - zero).days % every)
        while (cut := _midnight(day, tz)) < end:
            cuts.append(cut)
            day += timedelta(days=every)
    elif DAY % step == 0:
        day = datetime.fromtimestamp(start, tz).date() - timedelta(days=1)
        while (midnight := _midnight(day, tz)) < end:
            cuts.extend(range(midnight, _midnight(day + timedelta(days=1), tz), step))
            day += timedelta(days=1)
    else:
        cuts.extend(range(floor_to(start, step), end, step))
    return [cut for cut in cuts if start < cut < end]


def cut_sets(window: Window, step: int | None, tz: tzinfo = UTC) -> tuple[Window, ...]:
    """`window` cut on the grid of `step` seconds in `tz` (module doc); `(window,)` without a step."""
    start, end = window.start_epoch(), window.end_epoch()
    bounds = [start, *cut_bounds(start, end, step, tz), end]
    return tuple(
        Window(from_epoch(a), from_epoch(b)) for a, b in itertools.pairwise(bounds)
    )


def resolve_span(
    window: str, step: str | None, *, now: datetime, tz: tzinfo, resolution: int,
    window_field: str = "window", step_field: str = "step",
) -> tuple[Window, int | None]:
    """The window `window` names at `now` in `tz` (`parse_window`), floored to multiples of
    `resolution` seconds (facts are sampled on that grid), and the step in seconds, both checked:
    the floored window is not empty and spans at most `MAX_WINDOW_DAYS`; the step is whole hours and
    cuts at most `MAX_SETS` sets. The one validator of window and step for the API and CostReports."""
    if resolution <= 0:
        raise ValueError(f"resolution must be positive, got {resolution}")
    shown = _shown(window)
    try:
        parsed = parse_window(window, now=now, tz=tz, field=window_field)
    except OverflowError:  # parse_window lets one through for unix times past year 9999
        raise SpecError(window_field, f"{shown} is out of range; accepted: {WINDOW_EXAMPLES}") from None
    start, end = floor_to(parsed.start_epoch(), resolution), floor_to(parsed.end_epoch(), resolution)
    if end <= start:
        raise SpecError(
            window_field,
            f"{shown} is empty once its bounds are floored to the {resolution}-second resolution; give a "
            "longer window, e.g. 1h",
        )
    if end - start > MAX_WINDOW_DAYS * DAY:
        raise SpecError(
            window_field,
            f"{shown} spans {(end - start) / DAY:g} days; the cap is {MAX_WINDOW_DAYS} days "
            f"(window ≤ {MAX_WINDOW_DAYS} days); e.g. lastmonth",
        )
    floored = Window(from_epoch(start), from_epoch(end))
    if step is None or step.strip() == "":
        return floored, None
    seconds = parse_step(step, field=step_field)
    sets = len(cut_bounds(start, end, seconds, tz)) + 1
    if sets > MAX_SETS:
        raise SpecError(
            step_field,
            f"{_shown(step)} splits the window into {sets} sets; the cap is {MAX_SETS} sets (steps) per request; "
            "use a longer step or a shorter window, e.g. step=1d",
        )
    return floored, seconds
