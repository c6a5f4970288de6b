"""Stepped windows on a clock that is not on the hour and keeps running (issue 12, bugs 1 and 2).

A real `kubetally serve` replays the small generated cluster (24 h from 2026-01-01T00:00Z, no data
06:00–08:00) with its clock started at 20:17:23 that day, so every relative window ends at hh:17 and
its sets cut ledger hours unless they are cut on the calendar grid. Asked with real curl:

    window=7d&aggregate=namespace&step=1d      8 sets: [12-25 20:17, 12-26 00:00) … [01-01 00:00, 01-01 20:17)
    window=12h&step=1h&aggregate=namespace    13 sets: [08:17, 09:00), [09:00, 10:00) … [20:00, 20:17)
    window=2d&step=1h                         49 sets, per pod
    05:17..11:17 by 2h (absolute, off the hour)  [05:17, 06), [06, 08), [08, 10), [10, 11:17)
    window=1d&step=1d&timeZone=+05:30         cut at 18:30Z: the hour 18:00–19:00 is collected live in two pieces

Each answer must be 200, its sets must tile the window the server resolved (read from the answer,
as the clock runs on), and every set's rows must equal the plain-Python oracle (`tests.reference`)
run on the generator's exact facts, cut at hour boundaries, set boundaries and the window's edges.
"""

from __future__ import annotations

import itertools
import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.prices import PriceBook, PriceVersion
from kubetally.domain.window import Window
from kubetally.engine.query import CostQuery
from kubetally.synthetic import expected_facts
from tests import reference
from tests.integration.conftest import Served
from tests.support.serve import running_serve
from tests.support.weights import WEIGHTS_YAML

pytestmark = pytest.mark.integration
H = 3600
CLOCK = 20 * H + 17 * 60 + 23  # 20:17:23 after the cluster's start
BOOK = PriceBook(versions=(PriceVersion(
    currency="CNY", cpu_core_hour=Decimal("0.031611"), memory_gib_hour=Decimal("0.004237"),
    storage_gib_hour=Decimal("0.0000548"), weights=(Decimal("0.7"), Decimal("0.3"))),))


@pytest.fixture(scope="module")
def server(small: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    spec = small.cluster.spec
    with running_serve(small.url, tmp_path_factory.mktemp("unaligned"), now=spec.start + CLOCK,
                       weights=WEIGHTS_YAML, cluster=spec.name, hours=20) as url:
        yield url


def curl(url: str, params: dict[str, str]) -> dict[str, Any]:
    command = ["curl", "-sS", "-G", "--max-time", "60", *[p for k, v in params.items() for p in ("--data-urlencode", f"{k}={v}")],
               f"{url}/v2/cost"]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=90)
    return dict(json.loads(result.stdout))


def epoch(text: str) -> int:
    return int(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp())


def oracle_facts(served: Served, start: int, end: int, cuts: list[int]) -> tuple[list[Any], list[Any]]:
    """The generator's facts over [start, end), one piece per hour, cut at `cuts` (the set bounds)."""
    spec = served.cluster.spec
    hours = range(start - start % H + H, end, H)
    bounds = sorted({start, end, *hours, *(c for c in cuts if start < c < end)})
    containers: list[Any] = []
    nodes: list[Any] = []
    for a, b in itertools.pairwise(bounds):
        a, b = max(a, spec.start), min(b, spec.end)
        if a < b:
            facts = expected_facts(served.cluster, a, b)
            containers += facts.containers
            nodes += facts.nodes
    return containers, nodes


CASES = [
    ({"window": "7d", "aggregate": "namespace", "step": "1d"}, 8),
    ({"window": "12h", "step": "1h", "aggregate": "namespace"}, 13),
    ({"window": "2d", "step": "1h"}, 49),
    ({"window": "2026-01-01T05:17:00Z,2026-01-01T11:17:00Z", "step": "2h", "aggregate": "namespace"}, 4),
    ({"window": "1d", "step": "1d", "aggregate": "namespace", "timeZone": "+05:30"}, 2),
]


@pytest.mark.parametrize(("params", "count"), CASES, ids=[p["window"] + "/" + p["step"] for p, _ in CASES])
def test_stepped_windows_answer_exact_numbers_at_17_minutes_past(
    server: str, small: Served, params: dict[str, str], count: int
) -> None:
    body = curl(server, params)
    assert body["code"] == 200, body
    start, end = epoch(body["window"]["start"]), epoch(body["window"]["end"])
    if "," not in params["window"]:  # relative: ends at the running clock (started at 20:17:23), floored
        assert end % 60 == 0
        assert 17 * 60 <= end % H < 27 * 60, body["window"]
    zone = timezone(timedelta(hours=5, minutes=30)) if "timeZone" in params else UTC
    sets = reference.cut_sets(start, end, _step(params["step"]), zone)
    assert len(body["data"]) == len(sets) == count
    query = CostQuery(window=Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC)),
                      step_seconds=_step(params["step"]), time_zone=zone, aggregate=parse_aggregate(params.get("aggregate")))
    containers, nodes = oracle_facts(small, start, end, [a for a, _ in sets[1:]])
    expected = reference.reference_costs(containers, nodes, BOOK, query)
    for index, (a, b) in enumerate(sets):
        got = body["data"][index]
        for row in got.values():
            assert (epoch(row["start"]), epoch(row["end"])) == (a, b)
        mine = [row for row in expected if row["step_start"] == a]
        assert len(got) == len(mine), (index, sorted(got), [r["key"] for r in mine])
        assert sum(row["cost"] for row in got.values()) == pytest.approx(sum(r["cost"] for r in mine), rel=1e-9, abs=1e-12)
        if "aggregate" in params:
            by_name = {r["key"][0]: r["cost"] for r in mine}
            assert {name: row["cost"] for name, row in got.items()} == pytest.approx(by_name, rel=1e-9, abs=1e-12)


def _step(text: str) -> int:
    return int(text[:-1]) * (86400 if text.endswith("d") else H)


def test_sub_hour_steps_are_a_400_that_names_whole_hours(server: str) -> None:
    for step in ("30m", "45m", "90m"):
        body = curl(server, {"window": "2h", "step": step})
        assert (body["code"], body["kind"], body["reason"]) == (400, "Status", "BadRequest"), body
        assert "is not a whole number of hours; accepted: a whole number of hours, at least 1h" in body["message"]
