"""Cost sets (kubetally.domain.sets): the step's calendar grid, clipped to the window.

Hand-computed tables first, then a property against the independent walk of `tests/reference.cut_sets`
(day-by-day, written from the rule) over random unaligned windows, steps and zones, DST zones included.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetally.domain.errors import SpecError
from kubetally.domain.sets import MAX_SETS, cut_bounds, cut_sets, parse_step, resolve_span
from kubetally.domain.window import Window
from tests import reference

H, D = 3600, 86400


def t(text: str) -> int:
    return int(datetime.fromisoformat(text).timestamp())


def bounds(start: str, end: str, step: int | None, tz: object = UTC) -> list[tuple[str, str]]:
    window = Window(datetime.fromisoformat(start), datetime.fromisoformat(end))
    return [(s.start.isoformat()[:16], s.end.isoformat()[:16]) for s in cut_sets(window, step, tz)]  # type: ignore[arg-type]


def test_the_last_seven_days_by_day_at_17_minutes_past() -> None:
    """window=7d at 2025-06-11T10:17:23Z (floored to 10:17): 8 sets, the first and last clipped.
    Σ of the set lengths = 7 days."""
    sets = bounds("2025-06-04T10:17:00+00:00", "2025-06-11T10:17:00+00:00", D)
    assert sets == [("2025-06-04T10:17", "2025-06-05T00:00"), ("2025-06-05T00:00", "2025-06-06T00:00"),
                    ("2025-06-06T00:00", "2025-06-07T00:00"), ("2025-06-07T00:00", "2025-06-08T00:00"),
                    ("2025-06-08T00:00", "2025-06-09T00:00"), ("2025-06-09T00:00", "2025-06-10T00:00"),
                    ("2025-06-10T00:00", "2025-06-11T00:00"), ("2025-06-11T00:00", "2025-06-11T10:17")]


def test_an_absolute_window_off_the_hour_by_two_hours() -> None:
    """The issue's example: 05:17..11:17 by 2h cuts at 06, 08, 10 (even UTC hours)."""
    assert bounds("2025-06-01T05:17:00+00:00", "2025-06-01T11:17:00+00:00", 2 * H) == [
        ("2025-06-01T05:17", "2025-06-01T06:00"), ("2025-06-01T06:00", "2025-06-01T08:00"),
        ("2025-06-01T08:00", "2025-06-01T10:00"), ("2025-06-01T10:00", "2025-06-01T11:17")]


def test_weeks_start_on_monday_and_days_at_local_midnight() -> None:
    """2025-06-04 is a Wednesday: 1w cuts at Monday 06-09 and 06-16. In +08:00, 1d cuts at 16:00 UTC."""
    assert bounds("2025-06-04T00:00:00+00:00", "2025-06-18T00:00:00+00:00", 7 * D) == [
        ("2025-06-04T00:00", "2025-06-09T00:00"), ("2025-06-09T00:00", "2025-06-16T00:00"),
        ("2025-06-16T00:00", "2025-06-18T00:00")]
    assert bounds("2025-06-01T00:00:00+00:00", "2025-06-02T00:00:00+00:00", D, timezone(timedelta(hours=8))) == [
        ("2025-06-01T00:00", "2025-06-01T16:00"), ("2025-06-01T16:00", "2025-06-02T00:00")]


def test_two_day_sets_are_counted_from_1970_and_odd_hours_from_the_epoch() -> None:
    """2025-06-01 is day 20240 since 1970-01-01 (even), so 2d cuts at 06-01 and 06-03; 5h cuts at
    multiples of 18000 s since the epoch: 2025-06-01T00:00Z = 1748736000 = 97152·18000 → 00:00, 05:00."""
    assert bounds("2025-05-31T12:00:00+00:00", "2025-06-04T00:00:00+00:00", 2 * D) == [
        ("2025-05-31T12:00", "2025-06-01T00:00"), ("2025-06-01T00:00", "2025-06-03T00:00"),
        ("2025-06-03T00:00", "2025-06-04T00:00")]
    assert bounds("2025-06-01T00:00:00+00:00", "2025-06-01T07:00:00+00:00", 5 * H) == [
        ("2025-06-01T00:00", "2025-06-01T05:00"), ("2025-06-01T05:00", "2025-06-01T07:00")]


def test_a_dst_day_by_six_hours_restarts_at_the_next_midnight() -> None:
    """Europe/Berlin, 2025-03-30 has 23 hours (02:00 CET → 03:00 CEST). Local midnight = 23:00Z the day
    before; 6h sets run 23:00Z, 05:00Z, 11:00Z, 17:00Z, and the last (5 h) ends at the next midnight, 22:00Z."""
    berlin = ZoneInfo("Europe/Berlin")
    assert bounds("2025-03-29T23:00:00+00:00", "2025-03-30T22:00:00+00:00", 6 * H, berlin) == [
        ("2025-03-29T23:00", "2025-03-30T05:00"), ("2025-03-30T05:00", "2025-03-30T11:00"),
        ("2025-03-30T11:00", "2025-03-30T17:00"), ("2025-03-30T17:00", "2025-03-30T22:00")]


@pytest.mark.parametrize("text", ["30m", "45m", "90m", "59m", "1m", "3601s"])
def test_steps_that_are_not_whole_hours_are_refused_naming_what_is_accepted(text: str) -> None:
    with pytest.raises(SpecError, match=r"not a whole number of hours; accepted: a whole number of hours, at "
                                        r"least 1h: e\.g\. 1h, 2h, 6h, 1d, 1w") as info:
        parse_step(text)
    assert info.value.field == "step"


@pytest.mark.parametrize("text", ["1h30m", "-1h", "0h", "abc", ""])
def test_a_step_that_is_no_duration_names_the_accepted_steps(text: str) -> None:
    with pytest.raises(SpecError, match=r"accepted: a whole number of hours, at least 1h"):
        parse_step(text)


def test_resolve_span_floors_the_window_and_caps_the_sets() -> None:
    now = datetime(2025, 6, 11, 10, 17, 23, 500000, tzinfo=UTC)
    window, step = resolve_span("7d", "1d", now=now, tz=UTC, resolution=60)
    assert (window.start.isoformat(), window.end.isoformat(), step) == (
        "2025-06-04T10:17:00+00:00", "2025-06-11T10:17:00+00:00", D)
    assert resolve_span("83d", "1h", now=now, tz=UTC, resolution=60)[1] == H  # 83·24 + 1 = 1993 sets
    with pytest.raises(SpecError, match=f"splits the window into 2401 sets; the cap is {MAX_SETS}"):
        resolve_span("100d", "1h", now=now, tz=UTC, resolution=60)
    with pytest.raises(SpecError, match="cap is 400 days"):
        resolve_span("401d", None, now=now, tz=UTC, resolution=60)


ZONES = [UTC, timezone(timedelta(hours=8)), timezone(timedelta(hours=-5)), timezone(timedelta(hours=5, minutes=30)),
         ZoneInfo("Europe/Berlin"), ZoneInfo("America/New_York"), ZoneInfo("Australia/Lord_Howe")]
STEPS = [H, 2 * H, 3 * H, 5 * H, 6 * H, 7 * H, 12 * H, 36 * H, D, 2 * D, 3 * D, 7 * D, 14 * D]


@settings(max_examples=300, deadline=None)
@given(start=st.integers(1_700_000_000, 1_800_000_000), length=st.integers(60, 40 * D),
       step=st.sampled_from(STEPS), zone=st.sampled_from(ZONES))
def test_cut_sets_equals_the_reference_walk_and_tiles_the_window(start: int, length: int, step: int,
                                                                 zone: object) -> None:
    start -= start % 60
    end = start + length - length % 60
    expected = reference.cut_sets(start, end, step, zone)  # type: ignore[arg-type]
    got = list(itertools.pairwise([start, *cut_bounds(start, end, step, zone), end]))  # type: ignore[arg-type]
    assert got == expected
    assert got[0][0] == start
    assert got[-1][1] == end
    assert all(a < b for a, b in got)
