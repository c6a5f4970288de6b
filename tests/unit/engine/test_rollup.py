"""The engine builds rollups: an hour's stages rolled up to every level, checked against the topology.

Expected values are the hand-derived ones of tests/unit/engine/topology.py (Effective, default book):
    namespace  h0                          h1
    shop       web-1 0.15 + burst-1 0.20   0.15 + 0.15
    web        api-1 0.30                  0.30
    data       etl-1 0.075 + agent 0.035   0.075 + 0.035
    batch      –                           job-1 0.0175
    node idle  n1 0.45, n2 0.425, n3 0.165  n1 0.5, n2 0.425, n3 0.1475
Stored shares split each hour's cluster idle (h0 1.04, h1 1.0725) over its pods, so they add up to it.
The pod level holds the span's day (both hours: one UTC day from T0): 0.76 + 0.7275 = 1.4875 of cost,
1.04 + 1.0725 = 2.1125 of shares, one row per pod (web-1, burst-1, api-1, etl-1, agent, job-1: 6).
Every container runs on a node with a fact, so no hour has unmatched containers.
"""

from __future__ import annotations

import pytest

from kubetally.domain.vocabulary import Method
from kubetally.engine import rollup, stages
from tests.unit.engine import topology

T0, H = topology.T0, topology.H


def test_an_hour_is_built_at_every_level_with_the_hand_derived_costs() -> None:
    facts = topology.topology_facts()
    cursor = facts.con
    built = stages.build_rollups(cursor, facts, topology.default_book(), method=Method.EFFECTIVE,
                                 span=(T0, T0 + 2 * H))
    namespaces = {(str(ns), int(start) - T0): float(cost) for ns, start, cost in cursor.execute(
        f"SELECT namespace, segment_start, cost FROM {built.pods('namespace')}").fetchall()}
    assert namespaces == pytest.approx({
        ("shop", 0): 0.35, ("web", 0): 0.30, ("data", 0): 0.11,
        ("shop", H): 0.30, ("web", H): 0.30, ("data", H): 0.11, ("batch", H): 0.0175})
    idle = {(str(node), int(start) - T0): float(value) for node, start, value in cursor.execute(
        f"SELECT node, segment_start, idle FROM {built.nodes}").fetchall()}
    assert idle == pytest.approx({("n1", 0): 0.45, ("n2", 0): 0.425, ("n3", 0): 0.165,
                                  ("n1", H): 0.5, ("n2", H): 0.425, ("n3", H): 0.1475})
    for level in rollup.HOURLY:  # every hourly level holds the same money, grouped otherwise
        shares = cursor.execute(f"SELECT segment_start - {T0}, sum(cost), sum(share) FROM {built.pods(level)} "
                                "GROUP BY 1 ORDER BY 1").fetchall()
        assert [int(start) for start, _, _ in shares] == [0, H]
        assert [float(cost) for _, cost, _ in shares] == pytest.approx([0.76, 0.7275])
        assert [float(share) for _, _, share in shares] == pytest.approx([1.04, 1.0725])
    day = cursor.execute(f"SELECT count(*), min(segment_start) - {T0}, max(segment_end) - {T0}, sum(cost), sum(share), "
                         f"count(DISTINCT pod), count(labels) FROM {built.days('pod')}").fetchone()
    assert day is not None
    assert day[:3] == (6, 0, 86400)
    assert [float(day[3]), float(day[4])] == pytest.approx([1.4875, 2.1125])
    assert day[5:] == (6, 6)  # pods keep their labels at the pod level
    # The labels level: one row per controller and label set (etl-1 has no controller: its own group).
    by_labels = cursor.execute(f"SELECT count(*), sum(cost), sum(share) FROM {built.days('labels')}").fetchone()
    assert by_labels is not None
    assert by_labels[0] == 6
    assert [float(by_labels[1]), float(by_labels[2])] == pytest.approx([1.4875, 2.1125])
    assert cursor.execute(f"SELECT sum(unmatched) FROM {built.unmatched}").fetchone() == (0,)
    # The stages' own tables are gone; only the built rows are left, for the ledger to store.
    temporary = {str(name) for (name,) in cursor.execute(
        "SELECT table_name FROM duckdb_tables() WHERE temporary").fetchall()}
    assert temporary == set(built.tables)
