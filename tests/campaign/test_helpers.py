"""The campaign's own window, clock and filter helpers on hand-derived cases (no server needed).

The oracle is only as good as these: each expectation below is worked out by hand in its comment.
"""

from __future__ import annotations

import random
from datetime import UTC, date, datetime

import pytest

from tests.campaign.filters import UNALLOCATED, Combo, Cond, Node, holds, render
from tests.campaign.windows import ServerClock, alauda_periods, resolve, zone


def at(text: str) -> int:
    return int(datetime.fromisoformat(text).replace(tzinfo=UTC).timestamp())


# The server clock reads within the minute 2026-01-07T10:17 UTC, a Wednesday.
MINUTE = at("2026-01-07T10:17:00")


@pytest.mark.parametrize(("text", "tz", "start", "end"), [
    ("today", None, "2026-01-07T00:00:00", "2026-01-07T10:17:00"),
    ("yesterday", None, "2026-01-06T00:00:00", "2026-01-07T00:00:00"),
    ("week", None, "2026-01-05T00:00:00", "2026-01-07T10:17:00"),  # Monday the 5th
    ("lastweek", None, "2025-12-29T00:00:00", "2026-01-05T00:00:00"),
    ("month", None, "2026-01-01T00:00:00", "2026-01-07T10:17:00"),
    ("LastMonth", None, "2025-12-01T00:00:00", "2026-01-01T00:00:00"),
    ("today", "Asia/Kolkata", "2026-01-06T18:30:00", "2026-01-07T10:17:00"),  # 15:47 local, midnight 18:30Z
    ("yesterday", "+05:45", "2026-01-05T18:15:00", "2026-01-06T18:15:00"),
    ("7d", None, "2025-12-31T10:17:00", "2026-01-07T10:17:00"),
    ("2026-01-01,2026-01-03", "America/New_York", "2026-01-01T05:00:00", "2026-01-03T05:00:00"),
    ("2026-01-01T05:17:42+05:30,2026-01-01T11:17:00Z", "Asia/Shanghai", "2025-12-31T23:47:00",
     "2026-01-01T11:17:00"),  # floored to the minute; the pair carries its own offsets
    ("1767225659,1767229261", "Asia/Kolkata", "2026-01-01T00:00:00", "2026-01-01T01:01:00"),  # unix: UTC
])
def test_windows_at_a_minute(text: str, tz: str | None, start: str, end: str) -> None:
    assert resolve(text, MINUTE, zone(tz)) == {(at(start), at(end))}


def test_a_duration_not_in_whole_minutes_has_two_floors() -> None:
    """90s before a now in [10:17:00, 10:18:00) is in [10:15:30, 10:16:30): floored, 10:15 or 10:16."""
    assert resolve("90s", MINUTE, zone(None)) == {(at("2026-01-07T10:15:00"), MINUTE), (at("2026-01-07T10:16:00"),
                                                                                         MINUTE)}


def test_the_clock_bounds_narrow_with_each_reported_minute() -> None:
    """Sent at 1000.2, answered at 1000.9, reported minute 960: the server read 960..1019.99 during
    [1000.2, 1000.9], so its offset is in (1000.2 − 1020, 1000.9 − 960] = (−19.8, 40.9]."""
    clock = ServerClock(lo=-100.0, hi=100.0)
    clock.observe(960, 1000.2, 1000.9)
    assert (clock.lo, clock.hi) == pytest.approx((-19.8, 40.9))
    assert clock.minutes(1001.0, 1001.5) == [960, 1020]
    clock.observe(1020, 1021.0, 1021.1)  # the next minute at 1021.0..1021.1: offset ≤ 1.1
    assert clock.hi == pytest.approx(1.1)
    with pytest.raises(AssertionError, match="jumped"):
        clock.observe(1200, 1022.0, 1022.1)


def test_alauda_weeks_are_iso_weeks_clipped_to_the_dates() -> None:
    """2025-12-29 is a Monday: 12-27..12-28 (Sat-Sun), 12-29..01-04, 01-05..01-06."""
    periods = alauda_periods(date(2025, 12, 27), date(2026, 1, 6), "week", zone("+08:00"))
    assert [(p.label_start(), p.label_end()) for p in periods] == [
        ("20251227", "20251228"), ("20251229", "20260104"), ("20260105", "20260106")]
    assert periods[0].window.start == at("2025-12-26T16:00:00")  # local midnight at +08:00


def test_filters_render_and_hold() -> None:
    hostile = 'a"b\\c{d}|e'
    pods: dict[str, dict[str, object]] = {
        "web": {"namespace": "shop", "controller": "web", "labels": {"team": hostile, "app": "web"}},
        "bare": {"namespace": "shop", "controller": None, "labels": {"app": "toolbox"}},
        "job": {"namespace": "batch", "controller": "job-1", "labels": {"team": "", "app": "job"}},
    }
    cases: list[tuple[Node, set[str]]] = [
        (Cond("label[team]", ":", (UNALLOCATED,)), {"bare", "job"}),  # missing or empty
        (Cond("label[team]", "!:", (UNALLOCATED,)), {"web"}),
        (Cond("label[team]", ":", (hostile,)), {"web"}),
        (Cond("controller", ":", (UNALLOCATED, "job-1")), {"bare", "job"}),
        (Cond("namespace", "!:", ("shop", "nope")), {"job"}),
        (Cond("label[app]", "<~:", ("to",)), {"bare"}),
        (Combo("+", (Combo("|", (Cond("namespace", ":", ("batch",)), Cond("label[app]", "~>:", ("eb",)))),
                     Cond("controller", "!~:", ("1",)))), {"web"}),
    ]
    for node, kept in cases:
        assert {name for name, pod in pods.items() if holds(node, pod)} == kept, node
    text = render(Cond("label[team]", ":", (hostile, UNALLOCATED)), random.Random(1))
    assert text == 'label[team]:"a\\"b\\\\c{d}|e","__unallocated__"'
    assert render(Combo("+", (Combo("|", (Cond("pod", ":", ("a",)), Cond("pod", ":", ("b",)))),
                              Cond("node", "!:", ("n",)))), random.Random(1)).startswith('(pod:"a"')
