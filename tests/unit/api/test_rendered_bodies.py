"""The /v2/cost JSON body written by DuckDB (`payloads.cost_sets_sql`) is the body written from rows.

Two bodies per query, from one ledger: the engine's rows rendered by `cost_json` in Python (the
reference: `_cost_set` and `_row_names`, checked field by field in test_payloads.py), and the same
query computed with the renderer. They must be equal as parsed JSON, in the order of every step's
keys too. Evidence:
- a generated cluster (`tiny`, 27 hours: stored days and hours, live edges) and a seeded sample of
  keys (pod, labels, controller, node, several keys at once), filters, steps, methods, idle sharing,
  customCost and costRatio within the answer;
- the topology with pods web-1 and burst-1 (both of controller `web`) copied into namespace `data`
  under other UIDs, at half their quantities: by pod, each name takes its UID (`web-1/uid-web-1`,
  `web-1/uid-web-1-b`...); by controller, two rows named `web` share no UID, so they are `web` (shop,
  the dearer) and `web/2` (data) in answer order.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import os
import random
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from kubetally.api.payloads import cost_json, cost_sets_sql
from kubetally.bench.ledgers import batch_of
from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.filters import parse_filter
from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Method
from kubetally.domain.window import Window
from kubetally.engine import pipeline, plan
from kubetally.engine.facts import load_facts
from kubetally.engine.query import CostQuery
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, tiny
from tests.unit.engine import topology

H = 3600


def bodies(compute: Any, query: CostQuery) -> tuple[Any, Any]:
    """(rows rendered in Python, rows rendered by DuckDB), each parsed back from its JSON text."""
    def body(render: bool) -> Any:
        table = compute(query, render=cost_sets_sql if render else None)
        written = cost_json(table, window=query.window, steps=query.sets, coverage=1.0, warnings=[])
        return orjson.loads(orjson.dumps(written))
    return body(False), body(True)


def assert_same_body(python: Any, duck: Any) -> None:
    """Equal names, equal texts, numbers equal to 1e-12, and the rendered sets in answer order (cost
    descending). Two computations of one query may sum in other orders (DuckDB aggregates in
    parallel), so two sets whose costs differ by an ulp may swap: the order is compared by cost."""
    for mine, theirs in zip(python["data"], duck["data"], strict=True):
        assert sorted(mine) == sorted(theirs)
        costs = [item["cost"] for name, item in theirs.items() if not name.startswith(("__", "idle:"))]
        assert all(a >= b - 1e-12 * abs(b) for a, b in itertools.pairwise(costs)), costs
    python = {**python, "data": [dict(sorted(step.items())) for step in python["data"]]}
    duck = {**duck, "data": [dict(sorted(step.items())) for step in duck["data"]]}
    assert_close(python, duck, "body")


def assert_close(a: Any, b: Any, where: str) -> None:
    if isinstance(a, dict):
        assert isinstance(b, dict), where
        assert list(a) == list(b), where
        for key in a:
            assert_close(a[key], b[key], f"{where}.{key}")
    elif isinstance(a, list):
        assert isinstance(b, list), where
        assert len(a) == len(b), where
        for index, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_close(x, y, f"{where}[{index}]")
    elif isinstance(a, float) and not isinstance(b, bool):
        assert isinstance(b, int | float), where
        assert math.isclose(a, b, rel_tol=1e-12, abs_tol=1e-15), (where, a, b)
    else:
        assert a == b, (where, a, b)


def test_rendered_bodies_equal_python_bodies_on_a_generated_cluster(tmp_path: Path) -> None:
    seed = int(os.environ.get("KUBETALLY_RENDER_SEED", "0") or 0) or random.SystemRandom().randrange(1, 2**31)
    print(f"rendered bodies seed {seed} (KUBETALLY_RENDER_SEED={seed} to repeat)")
    rng = random.Random(seed)
    spec = dataclasses.replace(tiny(), hours=27)
    cluster = generate(spec)
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in range(spec.start, spec.end - H, H):
        ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
    book = topology.default_book()
    custom = PriceBook(versions=(topology.default_version(cpu_core_hour=topology.default_version().cpu_core_hour * 2,
                                                          currency="USD"),))
    ledger.build_rollups(book)
    live = batch_of(fact_arrays(cluster, spec.end - H))
    window = Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(spec.end, UTC))
    keys = ["pod", "label:app", "controller", "node", "namespace", "namespace,label:team", "controllerKind,pod"]
    filters = [None, 'namespace:"shop","ml"', 'label[app]!:"__unallocated__"']
    for _ in range(40):
        query = CostQuery(window=window, step_seconds=rng.choice([None, H, 86400]),
                          aggregate=parse_aggregate(rng.choice(keys)), filter=parse_filter(rng.choice(filters)),
                          method=rng.choice([Method.REQUEST, Method.EFFECTIVE, Method.USAGE]),
                          share_idle=rng.random() < 0.3, idle_by_node=rng.random() < 0.2,
                          ratio_within_answer=rng.random() < 0.3)
        priced = custom if rng.random() < 0.2 else None

        def compute(query: CostQuery, *, render: Any, priced: PriceBook | None = priced) -> Any:
            rollups = plan.plan_cost(query, book, custom_prices=priced)
            with ledger.facts(spec.start, spec.end, live, plan=rollups) as facts:
                return pipeline.compute(facts, book, query, custom_prices=priced, plan=rollups, render=render)

        python, duck = bodies(compute, query)
        assert any(python["data"]), query
        assert_same_body(python, duck)


def test_reused_names_get_the_same_suffixes_in_both_bodies() -> None:
    shop = [{**fact, "controller": "web"} if fact["pod"] == "burst-1" else fact for fact in topology.containers()]
    halved = ("cpu_request_core_seconds", "cpu_usage_core_seconds", "cpu_effective_core_seconds",
              "memory_request_byte_seconds", "memory_usage_byte_seconds", "memory_effective_byte_seconds")
    twins = [{**fact, **{name: float(fact[name]) / 2 for name in halved},  # type: ignore[arg-type]
              "namespace": "data", "project": "beta", "pod_uid": f"{fact['pod_uid']}-b"}
             for fact in shop if fact["pod"] in ("web-1", "burst-1")]

    def compute(query: CostQuery, *, render: Any) -> Any:
        facts = load_facts(containers=[*shop, *twins], nodes=topology.nodes())
        return pipeline.compute(facts, topology.default_book(), query, render=render)

    by_pod = CostQuery(window=topology.WINDOW, aggregate=parse_aggregate("pod"), method=Method.EFFECTIVE)
    python, duck = bodies(compute, by_pod)
    assert_same_body(python, duck)
    assert {"web-1/uid-web-1", "web-1/uid-web-1-b", "burst-1/uid-burst-1", "burst-1/uid-burst-1-b"} <= set(
        python["data"][0])
    by_controller = CostQuery(window=topology.WINDOW, aggregate=parse_aggregate("controller"), method=Method.EFFECTIVE)
    python, duck = bodies(compute, by_controller)
    assert_same_body(python, duck)
    assert [name for name in python["data"][0] if name.startswith("web")] == ["web", "web/2"]
    assert [python["data"][0][name]["properties"]["namespace"] for name in ("web", "web/2")] == ["shop", "data"]
