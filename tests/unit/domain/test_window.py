"""kubetally.domain.window: window forms, zones, DST days, Alauda periods; expectations are hand-written."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo

import pytest

from kubetally.domain.errors import SpecError
from kubetally.domain.window import (
    CalendarStep,
    Window,
    calendar_periods,
    parse_calendar_step,
    parse_date_range,
    parse_duration,
    parse_timezone,
    parse_window,
)

NEW_YORK = ZoneInfo("America/New_York")
SHANGHAI = ZoneInfo("Asia/Shanghai")
PLUS8 = timezone(timedelta(hours=8))
MINUS12 = timezone(timedelta(hours=-12))


def z(text: str) -> datetime:
    """A UTC instant from a literal such as "2024-03-27T10:30" (seconds optional)."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def w(start: str, end: str) -> Window:
    return Window(z(start), z(end))


NOW = z("2024-03-27T10:30")  # a Wednesday


# --- Window ------------------------------------------------------------------------------------


def test_window_normalizes_to_utc_and_floors_seconds() -> None:
    window = Window(datetime(2024, 3, 26, 8, 0, 0, 900000, tzinfo=PLUS8), z("2024-03-26T01:00:00.100"))
    assert window.start == z("2024-03-26T00:00:00.900")
    assert window.start.tzinfo is UTC
    assert window.end.tzinfo is UTC
    assert window.seconds == 3599
    assert window.start_epoch() == 1711411200
    assert window.end_epoch() == 1711414800
    assert w("1969-12-31T23:59:59.500", "1970-01-01T00:00:01").start_epoch() == -1


@pytest.mark.parametrize(
    ("start", "end"),
    [(z("2024-03-26T00:00"), z("2024-03-26T00:00")), (z("2024-03-27T00:00"), z("2024-03-26T00:00")),
     (datetime(2024, 3, 26), z("2024-03-27T00:00")), (z("2024-03-26T00:00"), datetime(2024, 3, 27))],
)
def test_window_rejects_empty_or_naive(start: datetime, end: datetime) -> None:
    with pytest.raises(ValueError, match="Window"):
        Window(start, end)


# --- parse_window: every form at a fixed now ---------------------------------------------------


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("today", "2024-03-27T00:00", "2024-03-27T10:30"), (" TODAY ", "2024-03-27T00:00", "2024-03-27T10:30"),
        ("yesterday", "2024-03-26T00:00", "2024-03-27T00:00"), ("week", "2024-03-25T00:00", "2024-03-27T10:30"),
        ("lastweek", "2024-03-18T00:00", "2024-03-25T00:00"), ("month", "2024-03-01T00:00", "2024-03-27T10:30"),
        ("LastMonth", "2024-02-01T00:00", "2024-03-01T00:00"), ("45s", "2024-03-27T10:29:15", "2024-03-27T10:30"),
        ("30m", "2024-03-27T10:00", "2024-03-27T10:30"), ("12h", "2024-03-26T22:30", "2024-03-27T10:30"),
        ("7d", "2024-03-20T10:30", "2024-03-27T10:30"), ("7D", "2024-03-20T10:30", "2024-03-27T10:30"),
        ("2w", "2024-03-13T10:30", "2024-03-27T10:30"), ("3653d", "2014-03-27T10:30", "2024-03-27T10:30"),
        ("2024-03-26T00:00:00Z,2024-03-27T00:00:00Z", "2024-03-26T00:00", "2024-03-27T00:00"),
        ("2024-03-26t00:00:00z , 2024-03-27T00:00:00Z", "2024-03-26T00:00", "2024-03-27T00:00"),
        ("2024-03-26T08:00:00+08:00,2024-03-27T08:00:00+08:00", "2024-03-26T00:00", "2024-03-27T00:00"),
        ("2024-03-26T08:00:00.999+08:00,2024-03-26T09:30:00.5+08:00", "2024-03-26T00:00", "2024-03-26T01:30"),
        ("2024-03-25T21:30:00-03:30,2024-03-26T02:00:00.000001Z", "2024-03-26T01:00", "2024-03-26T02:00"),
        ("2030-01-01T00:00:00Z,2030-01-02T00:00:00Z", "2030-01-01T00:00", "2030-01-02T00:00"),
        ("1711382400,1711468800", "2024-03-25T16:00", "2024-03-26T16:00"),
        (" 1711411200 , 1711411260 ", "2024-03-26T00:00", "2024-03-26T00:01"),
        ("2024-03-26,2024-03-27", "2024-03-26T00:00", "2024-03-27T00:00"),
    ],
)
def test_parse_window_forms_in_utc(text: str, start: str, end: str) -> None:
    window = parse_window(text, now=NOW)
    assert window == w(start, end)
    assert (window.start.tzinfo, window.end.tzinfo) == (UTC, UTC)


@pytest.mark.parametrize(
    ("text", "tz", "start", "end"),
    [
        ("1711382400,1711468800", PLUS8, "2024-03-25T16:00", "2024-03-26T16:00"),
        ("1711382400,1711468800", NEW_YORK, "2024-03-25T16:00", "2024-03-26T16:00"),
        ("2024-03-26T00:00:00Z,2024-03-27T00:00:00Z", PLUS8, "2024-03-26T00:00", "2024-03-27T00:00"),
        ("2024-03-26,2024-03-27", PLUS8, "2024-03-25T16:00", "2024-03-26T16:00"),
        ("2024-03-10,2024-03-11", NEW_YORK, "2024-03-10T05:00", "2024-03-11T04:00"),
        ("7d", NEW_YORK, "2024-03-20T10:30", "2024-03-27T10:30"),
    ],
)
def test_parse_window_tz_only_moves_calendar_forms(text: str, tz: tzinfo, start: str, end: str) -> None:
    assert parse_window(text, now=NOW, tz=tz) == w(start, end)


@pytest.mark.parametrize(
    ("offset", "today_start", "yesterday_start"),
    [
        ("-12:00", "2024-03-26T12:00", "2024-03-25T12:00"),  # local 2024-03-26 22:30
        ("-03:30", "2024-03-27T03:30", "2024-03-26T03:30"),  # local 2024-03-27 07:00
        ("+05:45", "2024-03-26T18:15", "2024-03-25T18:15"),  # local 2024-03-27 16:15
        ("+08:00", "2024-03-26T16:00", "2024-03-25T16:00"),  # local 2024-03-27 18:30
        ("+14:00", "2024-03-27T10:00", "2024-03-26T10:00"),  # local 2024-03-28 00:30
    ],
)
def test_today_and_yesterday_under_offsets(offset: str, today_start: str, yesterday_start: str) -> None:
    tz = parse_timezone(offset)
    assert parse_window("today", now=NOW, tz=tz) == Window(z(today_start), NOW)
    yesterday = parse_window("yesterday", now=NOW, tz=tz)
    assert yesterday == w(yesterday_start, today_start)
    assert yesterday.seconds == 86400


@pytest.mark.parametrize(
    ("now", "text", "start", "end", "seconds"),
    [
        ("2024-03-11T15:00", "yesterday", "2024-03-10T05:00", "2024-03-11T04:00", 23 * 3600),
        ("2024-03-11T15:00", "today", "2024-03-11T04:00", "2024-03-11T15:00", 11 * 3600),
        ("2024-03-10T12:00", "today", "2024-03-10T05:00", "2024-03-10T12:00", 7 * 3600),
        ("2024-11-04T15:00", "yesterday", "2024-11-03T04:00", "2024-11-04T05:00", 25 * 3600),
        ("2024-11-03T12:00", "today", "2024-11-03T04:00", "2024-11-03T12:00", 8 * 3600),
        ("2024-03-12T12:00", "lastweek", "2024-03-04T05:00", "2024-03-11T04:00", 7 * 86400 - 3600),
    ],
)
def test_new_york_dst_days(now: str, text: str, start: str, end: str, seconds: int) -> None:
    window = parse_window(text, now=z(now), tz=NEW_YORK)
    assert window == w(start, end)
    assert window.seconds == seconds


@pytest.mark.parametrize(
    ("now", "tz", "month_start", "last_start", "last_end"),
    [
        ("2024-02-29T23:00", UTC, "2024-02-01T00:00", "2024-01-01T00:00", "2024-02-01T00:00"),
        ("2024-03-01T00:30", UTC, "2024-03-01T00:00", "2024-02-01T00:00", "2024-03-01T00:00"),
        ("2024-02-29T16:30", PLUS8, "2024-02-29T16:00", "2024-01-31T16:00", "2024-02-29T16:00"),
        ("2024-01-31T23:59:59", UTC, "2024-01-01T00:00", "2023-12-01T00:00", "2024-01-01T00:00"),
        ("2024-01-15T12:00", UTC, "2024-01-01T00:00", "2023-12-01T00:00", "2024-01-01T00:00"),
        ("2024-01-01T06:00", NEW_YORK, "2024-01-01T05:00", "2023-12-01T05:00", "2024-01-01T05:00"),
        ("2024-03-31T23:00", MINUS12, "2024-03-01T12:00", "2024-02-01T12:00", "2024-03-01T12:00"),
    ],
)
def test_month_and_lastmonth(now: str, tz: tzinfo, month_start: str, last_start: str, last_end: str) -> None:
    assert parse_window("month", now=z(now), tz=tz) == w(month_start, now)
    assert parse_window("lastmonth", now=z(now), tz=tz) == w(last_start, last_end)


@pytest.mark.parametrize(
    ("now", "tz", "week_start", "last_start"),
    [
        ("2024-03-25T09:00", UTC, "2024-03-25T00:00", "2024-03-18T00:00"),  # Monday
        ("2024-03-31T23:00", UTC, "2024-03-25T00:00", "2024-03-18T00:00"),  # Sunday
        ("2024-03-31T18:00", PLUS8, "2024-03-31T16:00", "2024-03-24T16:00"),  # local Monday 02:00
        ("2024-03-25T02:00", NEW_YORK, "2024-03-18T04:00", "2024-03-11T04:00"),  # local Sunday 22:00
    ],
)
def test_week_and_lastweek(now: str, tz: tzinfo, week_start: str, last_start: str) -> None:
    assert parse_window("week", now=z(now), tz=tz) == w(week_start, now)
    assert parse_window("lastweek", now=z(now), tz=tz) == w(last_start, week_start)


@pytest.mark.parametrize(
    ("text", "now"),
    [("today", "2024-03-27T00:00"), ("week", "2024-03-25T00:00"), ("month", "2024-03-01T00:00")],
)
def test_keyword_empty_at_local_midnight(text: str, now: str) -> None:
    with pytest.raises(SpecError, match="empty") as caught:
        parse_window(text, now=z(now))
    assert caught.value.field == "window"


def test_now_must_be_aware_and_may_have_any_offset() -> None:
    now = datetime(2024, 3, 27, 18, 30, tzinfo=PLUS8)
    assert parse_window("30m", now=now) == w("2024-03-27T10:00", "2024-03-27T10:30")
    with pytest.raises(ValueError, match="timezone-aware") as caught:
        parse_window("today", now=datetime(2024, 3, 27, 10, 30))
    assert not isinstance(caught.value, SpecError)


@pytest.mark.parametrize(
    ("text", "needle"),
    [
        ("", '""'), ("   ", "empty"), ("fortnight", '"fortnight" is not a window'), ("1h30m", '"1h30m" is not'),
        ("0d", '"0d" must be a positive'), ("-7d", '"-7d" must be a positive'), ("7y", '"7y" is not a duration'),
        ("3654d", '"3654d" is over 10 years'),
        ("99999999999999999999d", "over 10 years"),
        ("2024-13-01T00:00:00Z,2024-03-27T00:00:00Z", '"2024-13-01T00:00:00Z" is not an RFC3339 time'),
        ("2024-03-26T00:00:60Z,2024-03-27T00:00:00Z", '"2024-03-26T00:00:60Z" is not an RFC3339'),
        ("2024-03-26T00:00Z,2024-03-27T00:00Z", '"2024-03-26T00:00Z" is not an RFC3339'),
        ("2024-03-26T00:00:00+25:00,2024-03-27T00:00:00Z", '"2024-03-26T00:00:00+25:00"'),
        ("2024-03-26T00:00:00,2024-03-27T00:00:00Z", "Z or an offset"),
        ("2024-03-26T00:00:00Z,2024-03-27T00:00:00", '"2024-03-27T00:00:00" has no offset'),
        ("today,yesterday", '"today" is not an RFC3339'),
        ("2024-03-27T00:00:00Z,2024-03-26T00:00:00Z", "ends before"),
        ("2024-03-26T00:00:00Z,2024-03-26T08:00:00+08:00", "ends before or when it starts"),
        ("1711468800,1711382400", '"1711468800,1711382400" ends before'), ("2024-03-27,2024-03-27", "ends before"),
        ("1711382400,2024-03-27T00:00:00Z", "mixes two forms"), ("2024-03-26,1711468800", "mixes two forms"),
        ("2024-03-26,2024-03-27T00:00:00Z", "mixes two forms"),
        ("a,b,c", '"a,b,c" has 3 parts'), ("1711382400,1711468800,1711555200", "has 3 parts"),
        ("1711382400,", "needs a start and an end"), (",1711382400", "needs a start and an end"),
        ("2024-03-26T00:00:00Z", "single time"), ("1711382400", '"1711382400" is a single time'),
        ("2024-02-30,2024-03-01", '"2024-02-30" is not a date'),
        ("99999999999999,1711468800", '"99999999999999" is not a unix time'),
    ],
)
def test_bad_windows(text: str, needle: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_window(text, now=NOW)
    assert caught.value.field == "window"
    assert needle in caught.value.message
    assert "accepted: today, yesterday, week" in caught.value.message
    assert "2024-03-26T00:00:00Z,2024-03-27T00:00:00Z" in caught.value.message


def test_errors_name_the_callers_field() -> None:
    with pytest.raises(SpecError, match=r"spec\.window: \"soon\"") as caught:
        parse_window("soon", now=NOW, field="spec.window")
    assert caught.value.field == "spec.window"
    with pytest.raises(SpecError, match=r"spec\.resolution: \"0s\"") as caught:
        parse_duration("0s", field="spec.resolution")
    assert caught.value.field == "spec.resolution"


# --- parse_duration, parse_timezone ------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("30s", 30), ("30m", 1800), ("12h", 43200), ("7d", 604800), ("2w", 1209600), (" 5M ", 300),
     ("3653d", 315619200)],
)
def test_parse_duration(text: str, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("text", "expected"),
    [(None, UTC), ("", UTC), ("UTC", UTC), ("utc", UTC), ("Z", UTC), ("+00:00", UTC), ("-0000", UTC),
     ("Asia/Shanghai", SHANGHAI), (" America/New_York ", NEW_YORK), ("+08:00", PLUS8), ("-12:00", MINUS12),
     ("-03:30", timezone(-timedelta(hours=3, minutes=30))), ("+0545", timezone(timedelta(hours=5, minutes=45))),
     ("+14:00", timezone(timedelta(hours=14)))],
)
def test_parse_timezone(text: str | None, expected: object) -> None:
    assert parse_timezone(text) == expected


# --- Alauda dates: parse_calendar_step, parse_date_range, calendar_periods ---------------------


@pytest.mark.parametrize(
    ("text", "step"),
    [(None, CalendarStep.MONTH), ("", CalendarStep.MONTH), ("day", CalendarStep.DAY),
     ("WEEK", CalendarStep.WEEK), (" Month ", CalendarStep.MONTH)],
)
def test_parse_calendar_step(text: str | None, step: CalendarStep) -> None:
    assert parse_calendar_step(text) is step


@pytest.mark.parametrize(
    ("parse", "text", "field", "accepted"),
    [(parse_duration, text, "step", "accepted: 30m, 12h, 7d, 2w")
     for text in ["", "0m", "-5m", "+5m", "1h30m", "5", "m", "5y", "1.5h", "3654d", "5 m"]]
    + [(parse_timezone, text, "tz", "accepted: UTC, Asia/Shanghai")
       for text in ["+14:01", "-12:30", "+08:60", "+8", "+08", "Mars/Olympus", "asia/shanghai", "localtime",
                    "../etc/passwd", "America"]]
    + [(parse_calendar_step, text, "step", "accepted: day, week, month") for text in ["hour", "days", "d", "1d"]],
)
def test_bad_durations_zones_and_steps(parse: Callable[[str], object], text: str, field: str, accepted: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse(text)
    assert caught.value.field == field
    assert f'"{text}"' in caught.value.message
    assert accepted in caught.value.message


@pytest.mark.parametrize(
    ("start", "end", "tz", "window_start", "window_end"),
    [
        ("2025-06-01", "2025-06-30", UTC, "2025-06-01T00:00", "2025-07-01T00:00"),
        ("20250601", " 20250630 ", UTC, "2025-06-01T00:00", "2025-07-01T00:00"),  # Alauda's row labels
        ("2025-06-01", "2025-06-30", SHANGHAI, "2025-05-31T16:00", "2025-06-30T16:00"),
        ("2025-06-01", "2025-06-01", UTC, "2025-06-01T00:00", "2025-06-02T00:00"),
        ("2024-11-03", "2024-11-03", NEW_YORK, "2024-11-03T04:00", "2024-11-04T05:00"),
        ("2020-01-01", "2025-01-03", UTC, "2020-01-01T00:00", "2025-01-04T00:00"),  # 1830 days
    ],
)
def test_parse_date_range(start: str, end: str, tz: tzinfo, window_start: str, window_end: str) -> None:
    assert parse_date_range(start, end, tz=tz) == w(window_start, window_end)


@pytest.mark.parametrize(
    ("start", "end", "field", "needle"),
    [
        ("2025-13-01", "2025-06-30", "start", '"2025-13-01" is not a date'),
        ("2025-06-01", "2025-06-31", "end", '"2025-06-31" is not a date'),
        ("June", "2025-06-30", "start", '"June"'), ("2025-6-1", "2025-06-30", "start", '"2025-6-1"'),
        ("2025/06/01", "2025-06-30", "start", '"2025/06/01"'), ("", "2025-06-30", "start", '""'),
        ("2025-06-30", "2025-06-01", "end", '"2025-06-01" is before start "2025-06-30"'),
        ("2020-01-01", "2025-01-04", "end", "1831 days"),
        ("9999-12-31", "9999-12-31", "end", '"9999-12-31" is out of range'),
    ],
)
def test_bad_date_ranges(start: str, end: str, field: str, needle: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_date_range(start, end)
    assert caught.value.field == field
    assert needle in caught.value.message
    assert "2025-06-01" in caught.value.message


@pytest.mark.parametrize(
    ("start", "end", "step", "labels"),
    [
        ("2025-06-01", "2025-06-30", CalendarStep.MONTH, [("20250601", "20250630")]),
        ("2025-06-01", "2025-06-30", CalendarStep.WEEK, [  # June 1 2025 is a Sunday, June 30 a Monday
            ("20250601", "20250601"), ("20250602", "20250608"), ("20250609", "20250615"),
            ("20250616", "20250622"), ("20250623", "20250629"), ("20250630", "20250630")]),
        ("2025-06-01", "2025-06-02", CalendarStep.DAY, [("20250601", "20250601"), ("20250602", "20250602")]),
        ("2025-01-15", "2025-03-10", CalendarStep.MONTH, [("20250115", "20250131"), ("20250201", "20250228"),
                                                          ("20250301", "20250310")]),
        ("2024-12-20", "2025-01-05", CalendarStep.MONTH, [("20241220", "20241231"), ("20250101", "20250105")]),
        ("2024-12-28", "2025-01-07", CalendarStep.WEEK, [("20241228", "20241229"), ("20241230", "20250105"),
                                                         ("20250106", "20250107")]),
    ],
)
def test_calendar_labels(start: str, end: str, step: CalendarStep, labels: list[tuple[str, str]]) -> None:
    for tz in (UTC, SHANGHAI, NEW_YORK):
        periods = calendar_periods(parse_date_range(start, end, tz=tz), step, tz=tz)
        assert [(p.label_start(), p.label_end()) for p in periods] == labels


@pytest.mark.parametrize(
    ("tz", "bounds"),
    [(UTC, ["2025-06-01T00:00", "2025-06-02T00:00", "2025-06-09T00:00", "2025-06-30T00:00", "2025-07-01T00:00"]),
     (SHANGHAI, ["2025-05-31T16:00", "2025-06-01T16:00", "2025-06-08T16:00", "2025-06-29T16:00", "2025-06-30T16:00"])],
)
def test_calendar_periods_june_2025(tz: tzinfo, bounds: list[str]) -> None:
    june1, june2, june9, june30, july1 = bounds
    window = parse_date_range("2025-06-01", "2025-06-30", tz=tz)
    assert window == w(june1, july1)
    (month,) = calendar_periods(window, CalendarStep.MONTH, tz=tz)
    assert (month.window, month.first_day, month.last_day) == (window, date(2025, 6, 1), date(2025, 6, 30))
    assert (month.label_start(), month.label_end()) == ("20250601", "20250630")
    weeks = calendar_periods(window, CalendarStep.WEEK, tz=tz)
    assert [weeks[0].window, weeks[1].window, weeks[5].window] == [w(june1, june2), w(june2, june9), w(june30, july1)]
    days = calendar_periods(window, CalendarStep.DAY, tz=tz)
    assert [len(days), {day.window.seconds for day in days}, days[29].window] == [30, {86400}, w(june30, july1)]
    assert (days[29].first_day, days[29].last_day) == (date(2025, 6, 30), date(2025, 6, 30))


def test_calendar_periods_across_new_york_dst() -> None:
    march = parse_date_range("2024-03-09", "2024-03-11", tz=NEW_YORK)
    days = calendar_periods(march, CalendarStep.DAY, tz=NEW_YORK)
    assert [d.window for d in days] == [
        w("2024-03-09T05:00", "2024-03-10T05:00"), w("2024-03-10T05:00", "2024-03-11T04:00"),
        w("2024-03-11T04:00", "2024-03-12T04:00")]
    assert [d.window.seconds for d in days] == [86400, 82800, 86400]
    autumn = parse_date_range("2024-10-30", "2024-11-06", tz=NEW_YORK)
    weeks = calendar_periods(autumn, CalendarStep.WEEK, tz=NEW_YORK)
    assert [p.window for p in weeks] == [
        w("2024-10-30T04:00", "2024-11-04T05:00"), w("2024-11-04T05:00", "2024-11-07T05:00")]


@pytest.mark.parametrize(
    ("window", "tz"),
    [(w("2025-06-01T01:00", "2025-06-02T00:00"), UTC), (w("2025-06-01T00:00", "2025-06-01T12:00"), UTC),
     (w("2025-06-01T00:00", "2025-06-02T00:00"), SHANGHAI)],
)
def test_calendar_periods_need_local_midnights(window: Window, tz: tzinfo) -> None:
    with pytest.raises(ValueError, match="local midnights"):
        calendar_periods(window, CalendarStep.DAY, tz=tz)
