"""`fact_arrays` (vectorised, for scale L) agrees with `expected_facts` (per entity) everywhere."""

from __future__ import annotations

import math

import numpy as np
import pytest

from kubetally.facts.schema import CONTAINER_COLUMNS, NODE_COLUMNS, QUOTA_COLUMNS, VOLUME_COLUMNS
from kubetally.synthetic import ExpectedFacts, expected_facts, fact_arrays, generate, large, medium, small, tiny
from kubetally.synthetic.expected import Record
from kubetally.synthetic.model import Cluster, ResourceQuota
from tests.unit.synthetic.micro import HOUR, T10, at, cluster, container, pod, spec

_KEYS = {
    "containers": lambda r: (r["pod_uid"], r["container"]),
    "nodes": lambda r: r["node"],
    "volumes": lambda r: (r["namespace"], r["pvc"]),
    "quotas": lambda r: r["namespace"],
}


def _assert_same(expected: ExpectedFacts, actual: ExpectedFacts) -> None:
    for kind, key in _KEYS.items():
        want: list[Record] = getattr(expected, kind)
        got: list[Record] = getattr(actual, kind)
        assert [key(r) for r in want] == [key(r) for r in got], kind
        for a, b in zip(want, got, strict=True):
            assert list(a) == list(b), "same columns in the same order"
            for column, value in a.items():
                other = b[column]
                if isinstance(value, float) and isinstance(other, float):
                    assert math.isclose(value, other, rel_tol=1e-12, abs_tol=1e-9), (kind, key(a), column)
                else:
                    assert value == other, (kind, key(a), column, value, other)


def _check(c: Cluster, a: int, b: int) -> int:
    expected = expected_facts(c, a, b)
    _assert_same(expected, fact_arrays(c, a, b).records())
    return len(expected.containers)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_tiny_every_hour_the_whole_span_and_odd_segments(seed: int) -> None:
    c = generate(tiny(seed))
    s = c.spec
    for hour in range(s.hours):
        assert _check(c, s.start + hour * HOUR, s.start + (hour + 1) * HOUR) > 0
    _check(c, s.start, s.end)
    _check(c, s.start + 5400 - 120, s.start + 6000 + 180)  # around the gap
    _check(c, s.start - HOUR, s.start + 60)  # before the data


def test_small_and_medium_hours() -> None:
    c = generate(small())
    for hour in (0, 5, 6, 8, 23):
        _check(c, c.spec.start + hour * HOUR, c.spec.start + (hour + 1) * HOUR)
    m = generate(medium())
    assert _check(m, m.spec.start + 50 * HOUR, m.spec.start + 51 * HOUR) > 800


def test_micro_edge_cases() -> None:
    """Pending, a 10 s job, gaps, name reuse, a pod starting before the segment, overlapping quotas."""
    c = cluster(
        pod("pending", at(0), at(60), pending=True),
        pod("ten", at(10 / 60), at(20 / 60)),
        pod("p", at(-3), at(20), container(cpu_request=None, memory_request=None, memory_span=8192, key=3)),
        pod("db-0", at(0), at(10), uid="a"),
        pod("db-0", at(17), at(30), uid="b"),
        spec=spec(gaps=((at(2), at(10)), (at(40), at(41)))),
        quotas=(
            ResourceQuota("shop", "a", (("requests.cpu", 8.0),), T10 - HOUR, T10 + 2 * HOUR),
            ResourceQuota("shop", "b", (("requests.cpu", 4.0), ("requests.memory", 1e9)), at(30), T10 + 2 * HOUR),
            ResourceQuota("other", "c", (("requests.storage", 5e9),), at(50), at(55)),
        ),
    )
    assert _check(c, T10, T10 + HOUR) == 3
    assert _check(c, at(1), at(3)) == 2


def test_column_names_match_the_engine() -> None:
    c = generate(tiny())
    arrays = fact_arrays(c, c.spec.start, c.spec.end)
    assert list(arrays.containers) == list(CONTAINER_COLUMNS)
    assert list(arrays.nodes) == list(NODE_COLUMNS)
    assert list(arrays.volumes) == list(VOLUME_COLUMNS)
    assert list(arrays.quotas) == list(QUOTA_COLUMNS)
    assert np.isnan(arrays.nodes["hourly_price_seconds"]).any()


def test_scale_l_hour_is_vectorised() -> None:
    """Scale L generates, and one hour's facts (~12k containers) come out of numpy directly."""
    c = generate(large())
    arrays = fact_arrays(c, c.spec.start + 200 * HOUR)
    running = arrays.containers["running_seconds"]
    assert 10_000 < running.size < 20_000
    assert (running > 0).all()
    assert (running <= HOUR).all()
    assert arrays.nodes["node"].size == 500
    assert len(set(arrays.containers["pod_uid"])) > 9_000
