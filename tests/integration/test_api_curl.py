"""The three curl examples of ACK's Cost V2 reference, and Alauda usage calls, run with real curl
against a running `kubetally serve` on the tiny generated cluster in a real Prometheus.

Only the URL prefix of the examples is changed (no client certificates, no API-server proxy), and
their names are mapped onto the generated cluster: namespace "shop" holds the DaemonSet
`node-agent-0` (label app=node-agent-0) on three nodes. The server replays the data with `--now`.
Expected numbers come from the engine run on the generator's own facts (`expected_facts`) with
the same CostWeights: independent of the ingest, the ledger and the HTTP layer under test.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest

from kubetally.domain.aggregation import parse_aggregate
from kubetally.domain.filters import parse_filter
from kubetally.domain.prices import PriceBook, PriceVersion
from kubetally.domain.vocabulary import Item, Method, UsageKind
from kubetally.domain.window import CalendarStep, Window, calendar_periods, parse_date_range
from kubetally.engine import pipeline, usage
from kubetally.engine.facts import Facts, load_facts
from kubetally.engine.query import CostQuery, UsageQuery
from kubetally.synthetic import expected_facts
from tests.integration.conftest import Served
from tests.reference import reference_costs
from tests.support.serve import running_serve
from tests.support.weights import WEIGHTS_YAML

pytestmark = pytest.mark.integration
DAY = 86400
WEIGHTS = WEIGHTS_YAML + """---
apiVersion: kubetally.io/v1alpha1
kind: CostWeights
metadata: {name: ack}
spec:
  currency: CNY
  weights: {cpu: "1", memory: "0"}
  unitPrices: {cpuCoreHour: "0.031611", memoryGiBHour: "0.004237", storageGiBHour: "0.0000548"}
"""
FIELDS = {"properties", "start", "end", "cpuCoreRequestAverage", "cpuCoreUsageAverage", "ramByteRequestAverage",
          "ramByteUsageAverage", "cost", "costRatio", "customCost"}


def book(cpu: str, memory: str) -> PriceBook:
    return PriceBook(versions=(PriceVersion(
        currency="CNY", cpu_core_hour=Decimal("0.031611"), memory_gib_hour=Decimal("0.004237"),
        storage_gib_hour=Decimal("0.0000548"), weights=(Decimal(cpu), Decimal(memory))),))


def reference_facts(served: Served, start: int, end: int) -> Facts:
    parts = [expected_facts(served.cluster, h, h + 3600) for h in range(start, end, 3600)
             if served.cluster.spec.start <= h < served.cluster.spec.end]
    return load_facts(containers=[c for p in parts for c in p.containers], nodes=[n for p in parts for n in p.nodes],
                      volumes=[v for p in parts for v in p.volumes], quotas=[q for p in parts for q in p.quotas])


def curl(url: str, *data: str) -> dict[str, Any]:
    assert shutil.which("curl"), "curl is required"
    command = ["curl", "-sS", "-G", *[part for item in data for part in ("-d", item)], url]
    result = subprocess.run(command, capture_output=True, text=True, check=True, timeout=120)
    return dict(json.loads(result.stdout))


@pytest.fixture(scope="module")
def next_day(tiny: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose clock reads 2026-01-02T00:30Z: `yesterday` is the tiny cluster's whole day."""
    spec = tiny.cluster.spec
    with running_serve(tiny.url, tmp_path_factory.mktemp("serve-a"), now=spec.start + DAY + 1800, weights=WEIGHTS,
                       cluster=spec.name, hours=24) as url:
        yield url


@pytest.fixture(scope="module")
def same_day(tiny: Served, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A server whose clock reads the end of the tiny data (03:00): `2h` is 01:00–03:00."""
    spec = tiny.cluster.spec
    with running_serve(tiny.url, tmp_path_factory.mktemp("serve-b"), now=spec.end, weights=WEIGHTS,
                       cluster=spec.name, hours=3) as url:
        yield url


def costs_of(body: dict[str, Any], step: int = 0) -> dict[str, float]:
    return {name: item["cost"] for name, item in body["data"][step].items() if not name.startswith("__")}


def test_example1_yesterdays_daemonset_costs(tiny: Served, next_day: str) -> None:
    spec = tiny.cluster.spec
    text = 'namespace:"shop"+controllerKind:"DaemonSet"+label[app]:"node-agent-0"'
    body = curl(f"{next_day}/v2/cost", "window=yesterday", f"filter={text}")
    assert "data" in body, body["message"]
    day = Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(spec.start + DAY, UTC))
    table = pipeline.compute(reference_facts(tiny, spec.start, spec.start + DAY), book("0.7", "0.3"),
                             CostQuery(window=day, filter=parse_filter(text)))
    expected = {row.name: row.cost for row in table.rows if row.kind == "workload"}
    assert len(expected) == 3
    assert costs_of(body) == pytest.approx(expected, rel=1e-9)
    for item in body["data"][0].values():
        assert set(item) >= FIELDS
    pod = next(item for name, item in body["data"][0].items() if not name.startswith("__"))
    assert {"pod", "node", "namespace", "controllerKind", "controller", "providerID", "labels"} <= set(pod["properties"])
    assert (pod["start"], pod["end"]) == ("2026-01-01T00:00:00Z", "2026-01-02T00:00:00Z")


def test_example2_hourly_sets_of_one_pod(tiny: Served, next_day: str) -> None:
    spec = tiny.cluster.spec
    text = 'namespace:"shop"+pod:"node-agent-0-lfnx8"'
    body = curl(f"{next_day}/v2/cost", "window=2026-01-01T00:00:00Z,2026-01-01T03:00:00Z", "step=1h",
                f"filter={text}", "customWeights=ack")
    assert len(body["data"]) == 3
    win = Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(spec.start + 3 * 3600, UTC))
    table = pipeline.compute(reference_facts(tiny, spec.start, spec.end), book("0.7", "0.3"),
                             CostQuery(window=win, step_seconds=3600, filter=parse_filter(text)),
                             custom_prices=book("1", "0"))
    for step in range(3):
        row = next(r for r in table.rows if r.step_start == spec.start + step * 3600 and r.kind == "workload")
        item = body["data"][step]["node-agent-0-lfnx8"]
        assert item["cost"] == pytest.approx(row.cost, rel=1e-9)
        assert item["customCost"] == pytest.approx(row.custom_cost, rel=1e-9)
        assert item["start"] == datetime.fromtimestamp(spec.start + step * 3600, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_example3_costs_by_app_label(tiny: Served, same_day: str) -> None:
    spec = tiny.cluster.spec
    body = curl(f"{same_day}/v2/cost", "window=2h", "aggregate=label:app")
    win = Window(datetime.fromtimestamp(spec.end - 7200, UTC), datetime.fromtimestamp(spec.end, UTC))
    table = pipeline.compute(reference_facts(tiny, spec.end - 7200, spec.end), book("0.7", "0.3"),
                             CostQuery(window=win, aggregate=parse_aggregate("label:app")))
    expected = {row.name: row.cost for row in table.rows}
    got = {name: item["cost"] for name, item in body["data"][0].items()}
    assert got == pytest.approx(expected, rel=1e-9)
    assert "node-agent-0" in got


@pytest.mark.parametrize("item", ["Cpu", "Memory", "Storage"])
def test_alauda_usage_by_namespace(tiny: Served, next_day: str, item: str) -> None:
    spec = tiny.cluster.spec
    body = curl(f"{next_day}/platform/cost.alauda.io/v1beta1/costs/usage", "start=2026-01-01", "end=2026-01-01",
                "kind=namespace_all", f"item={item}", "pageSize=100")
    periods = calendar_periods(parse_date_range("2026-01-01", "2026-01-01"), CalendarStep.MONTH)
    rows = usage.compute_usage(reference_facts(tiny, spec.start, spec.start + DAY), book("0.7", "0.3"),
                               UsageQuery(periods=periods, kind=UsageKind.NAMESPACE_ALL, item=Item(item),
                                          method=Method.EFFECTIVE))
    assert body["total"] == len(rows)
    got = {(i["project"], i["namespace"]): (i["usage"], i["cost"]) for i in body["items"]}
    for row in rows:
        assert got[row.project, row.namespace] == pytest.approx((row.usage, row.cost), rel=1e-9)
    assert {i["start"] for i in body["items"]} == {"20260101"}


def test_the_same_window_gives_the_same_totals_everywhere(next_day: str) -> None:
    ack = curl(f"{next_day}/v2/cost", "window=yesterday", "method=Effective", "idle=false", "aggregate=cluster")
    total = sum(item["cost"] for item in ack["data"][0].values())
    alauda = sum(
        i["cost"] for item in ("Cpu", "Memory")
        for i in curl(f"{next_day}/platform/cost.alauda.io/v1beta1/costs/usage", "start=2026-01-01",
                      "end=2026-01-01", "kind=cluster_all", f"item={item}")["items"]
    )
    assert alauda == pytest.approx(total, rel=1e-9)


@pytest.mark.parametrize(("aggregate", "field"), [("label:team", "label[team]"), ("controller", "controller")])
def test_unallocated_row_equals_its_filter(tiny: Served, next_day: str, aggregate: str, field: str) -> None:
    """The `__unallocated__` row of aggregate=X costs what filter X:"__unallocated__" costs, and the
    filter plus its negation is the unfiltered total; all three equal the independent oracle
    (tests/reference.py) on the generator's facts. In the tiny cluster the bare `toolbox` pod has
    neither a controller nor a `team` label; it requests nothing, hence Effective."""
    spec = tiny.cluster.spec
    common = ["window=yesterday", "method=Effective", "idle=false", f"aggregate={aggregate}"]

    def rows(*extra: str) -> dict[str, float]:
        body = curl(f"{next_day}/v2/cost", *common, *extra)
        assert "data" in body, body.get("message")
        return {name: item["cost"] for name, item in body["data"][0].items()}

    everything = rows()
    kept = rows(f'filter={field}:"__unallocated__"')
    others = rows(f'filter={field}!:"__unallocated__"')
    parts = [expected_facts(tiny.cluster, h, h + 3600) for h in range(spec.start, spec.end, 3600)]
    day = Window(datetime.fromtimestamp(spec.start, UTC), datetime.fromtimestamp(spec.start + DAY, UTC))
    oracle = {row["key"][0]: row["cost"] for row in reference_costs(
        [c for p in parts for c in p.containers], [n for p in parts for n in p.nodes], book("0.7", "0.3"),
        CostQuery(window=day, aggregate=parse_aggregate(aggregate), method=Method.EFFECTIVE, idle=False))}
    unallocated = oracle["__unallocated__"]
    assert unallocated > 0
    assert everything == pytest.approx(oracle, rel=1e-9)
    assert kept == pytest.approx({"__unallocated__": unallocated}, rel=1e-9)
    assert others == pytest.approx({k: v for k, v in oracle.items() if k != "__unallocated__"}, rel=1e-9)
    assert sum(kept.values()) + sum(others.values()) == pytest.approx(sum(everything.values()), rel=1e-9)
    print(f"{aggregate}: __unallocated__ {unallocated!r}, others {sum(others.values())!r}, "
          f"total {sum(everything.values())!r}")


def test_a_bad_request_is_a_status_over_curl(next_day: str) -> None:
    body = curl(f"{next_day}/v2/cost", "window=lastfortnight")
    assert (body["kind"], body["code"], body["reason"]) == ("Status", 400, "BadRequest")
    assert "lastfortnight" in body["message"]


ALAUDA = "/platform/cost.alauda.io/v1beta1"
KIND_NAMES = {"project": "tenant-a", "namespace": "shop", "cluster": "c1"}


@pytest.mark.parametrize("step", ["day", "week", "month"])
@pytest.mark.parametrize("method", ["Effective", "Request", "Usage", "ProjectQuota"])
@pytest.mark.parametrize("kind", ["project", "namespace", "cluster", "project_all", "namespace_all", "cluster_all"])
def test_every_alauda_kind_method_and_step(tiny: Served, next_day: str, kind: str, method: str, step: str) -> None:
    """Each combination, Cpu item, against the engine on the generator's facts; the range 2025-12-29 to
    2026-01-04 spans an ISO week boundary (Monday 2025-12-29, Monday 2026-01-05) and a month end."""
    spec = tiny.cluster.spec
    name = KIND_NAMES.get(kind)
    if kind == "project":
        name = tiny.cluster.project_of("shop") or ""
    query = ["start=2025-12-29", "end=2026-01-04", f"step={step}", f"kind={kind}", f"method={method}", "pageSize=1000"]
    if name is not None:
        query.append(f"name={name}")
    body = curl(f"{next_day}{ALAUDA}/costs/usage", *query)
    assert "items" in body, body.get("message")
    periods = calendar_periods(parse_date_range("2025-12-29", "2026-01-04"), CalendarStep(step))
    rows = usage.compute_usage(reference_facts(tiny, spec.start, spec.start + DAY), book("0.7", "0.3"),
                               UsageQuery(periods=periods, kind=UsageKind(kind), item=Item.CPU, method=Method(method),
                                          name=name))
    expected = {(r.start, r.end, r.project, r.cluster, r.namespace): (r.usage, r.cost) for r in rows}
    got = {(i["start"], i["end"], i["project"], i["cluster"], i["namespace"]): (i["usage"], i["cost"])
           for i in body["items"]}
    assert body["total"] == len(expected) > 0
    assert got.keys() == expected.keys()
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-9, abs=1e-12)


def test_pages_add_up_and_projects_stay_apart(tiny: Served, next_day: str) -> None:
    full = curl(f"{next_day}{ALAUDA}/costs/usage", "start=2026-01-01", "end=2026-01-01", "kind=namespace_all",
                "pageSize=1000")
    pages = [curl(f"{next_day}{ALAUDA}/costs/usage", "start=2026-01-01", "end=2026-01-01", "kind=namespace_all",
                  "pageSize=2", f"currentPage={page}") for page in range(1, full["total"] // 2 + 2)]
    assert all(page["total"] == full["total"] for page in pages)
    assert [item for page in pages for item in page["items"]] == full["items"]
    projects = {item["project"] for item in full["items"]} - {""}
    assert len(projects) >= 2
    for project in projects:
        body = curl(f"{next_day}{ALAUDA}/projects/{project}/costs/usage", "start=2026-01-01", "end=2026-01-01",
                    "kind=namespace_all", "pageSize=1000")
        assert {item["project"] for item in body["items"]} == {project}
        assert body["items"] == [item for item in full["items"] if item["project"] == project]


def test_metrics_show_the_namespace_cost_of_the_last_hour(next_day: str) -> None:
    result = subprocess.run(["curl", "-sS", f"{next_day}/metrics"], capture_output=True, text=True, check=True)
    assert "kubetally_ingest_lag_seconds" in result.stdout
    assert 'kubetally_ledger_hours{cluster="c1"} 24.0' in result.stdout
    assert "kubetally_http_request_duration_seconds_bucket" in result.stdout


def test_metrics_carry_namespace_costs_for_grafana(tiny: Served, same_day: str) -> None:
    """The last complete hour of `same_day` is 02:00–03:00; its Effective cost per namespace."""
    spec = tiny.cluster.spec
    text = subprocess.run(["curl", "-sS", f"{same_day}/metrics"], capture_output=True, text=True, check=True).stdout
    win = Window(datetime.fromtimestamp(spec.end - 3600, UTC), datetime.fromtimestamp(spec.end, UTC))
    table = pipeline.compute(reference_facts(tiny, spec.end - 3600, spec.end), book("0.7", "0.3"),
                             CostQuery(window=win, aggregate=parse_aggregate("namespace"), method=Method.EFFECTIVE,
                                       idle=False))
    for row in table.rows:
        line = next(line for line in text.splitlines()
                    if line.startswith(f'kubetally_namespace_cost{{cluster="c1",currency="CNY",namespace="{row.name}"}}'))
        assert float(line.rsplit(" ", 1)[1]) == pytest.approx(row.cost, rel=1e-9)
