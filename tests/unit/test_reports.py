"""CostReport computation and status (kubetally.reports) over a ledger holding the documented
topology (tests/unit/engine/topology.py) plus one volume of a namespace in no project. Hand-derived,
Effective basis, window 00:00–02:00: workload 1.4875 + idle 2.1125 = 3.6; per namespace shop 0.65,
web 0.60, data 0.22, batch 0.0175; core-hours 2 + 2.5 + 4 + 1 + 1 + 0.25 = 10.75; GiB-hours
4 + 4 + 8 + 2 + 2 + 0.5 = 20.5. Project beta (data, batch) costs 0.11 in h0 and 0.1275 in h1, so its
idle share is 0.11·1.04/0.76 + 0.1275·1.0725/0.7275.

Storage (both hours; Effective = max(request, used) per hour; prices ssd 0.0002, default 0.0001):

    claim            namespace  project  class     request  used  Effective GiB-h   cost
    warehouse        data       beta     ssd       100      40    100·2 = 200       200·0.0002 = 0.04
    logs             shop       alpha    standard  10       5     10·2  = 20        20·0.0001  = 0.002
    tmp (added here) scratch    (none)   standard  30       50    50·2  = 100       100·0.0001 = 0.01
    cluster                                                        320               0.052

So a report's storage is: admin 320 / 0.052; admin namespace:"shop" 20 / 0.002; admin
namespace!:"data" 120 / 0.012; tenant of beta (in data) 200 / 0.04; tenant of beta filtered to
namespace:"batch" 0 / 0; tenant scratch without project 100 / 0.01; tenant web treated as without
project 0 / 0. A scope naming a pod-level field (label[app]) reports no storage at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubetally import reports
from kubetally.domain.errors import SpecError
from kubetally.facts.batch import FactBatch
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from tests.unit.api.test_app import WEIGHTS, NoLiveData
from tests.unit.engine import topology

NOW = datetime(2025, 6, 1, 2, 10, tzinfo=UTC)
SPEC = {"window": "2025-06-01T00:00:00Z,2025-06-01T02:00:00Z", "aggregate": ["namespace"], "topN": 2}


def scratch_volume(hour: int) -> dict[str, object]:
    """The claim `tmp` of namespace `scratch` (no project): request 30 GiB, used 50 GiB, class standard."""
    start, gib = topology.T0 + hour * topology.H, topology.GIB
    return {"cluster": "c1", "namespace": "scratch", "project": None, "pvc": "tmp", "storage_class": "standard",
            "segment_start": start, "segment_end": start + topology.H, "running_seconds": topology.H,
            "request_byte_seconds": 30 * gib * topology.H, "used_byte_seconds": 50 * gib * topology.H,
            "effective_byte_seconds": 50 * gib * topology.H}


def hour_batch(hour: int) -> FactBatch:
    start = topology.T0 + hour * topology.H

    def of_hour(facts: list[dict[str, object]]) -> list[dict[str, object]]:
        return [fact for fact in facts if fact["segment_start"] == start]

    return FactBatch.from_records(container_facts=of_hour(topology.containers()), node_facts=of_hour(topology.nodes()),
                                  volume_facts=[*of_hour(topology.volumes()), scratch_volume(hour)],
                                  quota_facts=of_hour(topology.quotas()))


@pytest.fixture
def service(tmp_path: Path) -> Iterator[CostService]:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0)
    svc = CostService(ledger, NoLiveData(), SourceConfig(cluster="c1"), clock=lambda: int(NOW.timestamp()))
    svc.record_weights("default", WEIGHTS)
    yield svc
    ledger.close()


async def compute(service: CostService, spec: dict[str, object], **kwargs: object) -> reports.ReportResult:
    options: dict[str, object] = {"namespace": "ops", "name": "r", "generation": 3, "now": NOW, "project": None,
                                  "isolated": False}
    options.update(kwargs)
    return await reports.compute_report(service, spec, **options)  # type: ignore[arg-type]


async def test_an_admin_report_totals_and_top_rows(service: CostService) -> None:
    result = await compute(service, SPEC)
    status = result.status
    assert status["totals"] == {"cost": "3.600000", "idleCost": "2.112500", "storageCost": "0.052000",
                                "cpuCoreHours": "10.750000", "memoryGiBHours": "20.500000",
                                "storageGiBHours": "320.000000"}
    assert [row["name"] for row in status["rows"]] == ["__idle__", "shop"]
    assert (status["rowCount"], status["truncated"], status["currency"]) == (5, True, "CNY")
    assert status["window"] == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T02:00:00Z"}
    assert status["nextComputeTime"] == "2025-06-01T03:00:00Z"  # @hourly
    assert status["resultPath"] == "/apis/query.kubetally.io/v1alpha1/namespaces/ops/costreports/r/result"
    ready, degraded = status["conditions"]
    assert (ready["type"], ready["status"], ready["reason"], ready["observedGeneration"]) == ("Ready", "True",
                                                                                             "Computed", 3)
    assert (degraded["status"], degraded["reason"]) == ("False", "Complete")


async def test_a_tenant_report_sees_only_its_project(service: CostService) -> None:
    result = await compute(service, SPEC | {"topN": 20}, namespace="data", project="beta", isolated=True)
    names = {row["name"]: float(row["cost"]) for row in result.status["rows"]}
    share = 0.11 * 1.04 / 0.76 + 0.1275 * 1.0725 / 0.7275
    assert names == pytest.approx({"data": 0.22, "batch": 0.0175, "__idle__": share}, abs=1e-6)
    assert float(result.status["totals"]["cost"]) == pytest.approx(0.2375 + share, abs=1e-6)
    assert storage(result) == ("0.040000", "200.000000")


async def test_a_tenant_without_a_project_sees_its_namespace(service: CostService) -> None:
    result = await compute(service, SPEC | {"idle": False}, namespace="web", project=None, isolated=True)
    assert [(row["name"], row["cost"]) for row in result.status["rows"]] == [("web", "0.600000")]
    assert storage(result) == ("0.000000", "0.000000")  # web has no claim; before the fix: the cluster's 0.052


def storage(result: reports.ReportResult) -> tuple[str, str] | None:
    """(storageCost, storageGiBHours) of a status, or None when neither is reported."""
    totals = result.status["totals"]
    if "storageCost" not in totals and "storageGiBHours" not in totals:
        return None
    return totals["storageCost"], totals["storageGiBHours"]


@pytest.mark.parametrize(
    ("spec", "options", "expected"),
    [
        ({}, {}, ("0.052000", "320.000000")),                                      # admin, no filter
        ({"filter": 'namespace:"shop"'}, {}, ("0.002000", "20.000000")),           # admin, one namespace
        ({"filter": 'namespace!:"data"'}, {}, ("0.012000", "120.000000")),         # admin, all but one
        ({}, {"namespace": "data", "project": "beta", "isolated": True}, ("0.040000", "200.000000")),
        ({"filter": 'namespace:"batch"'}, {"namespace": "data", "project": "beta", "isolated": True},
         ("0.000000", "0.000000")),                                                 # tenant, filter within
        ({"filter": 'namespace:"shop"'}, {"namespace": "data", "project": "beta", "isolated": True},
         ("0.000000", "0.000000")),                                                 # tenant, filter outside
        ({}, {"namespace": "scratch", "project": None, "isolated": True}, ("0.010000", "100.000000")),
    ],
)
async def test_storage_obeys_the_scope(service: CostService, spec: dict[str, object], options: dict[str, object],
                                       expected: tuple[str, str]) -> None:
    """Every storage figure obeys the tenant fence and the filter (issue 12, bug 4): exact, from the table above."""
    result = await compute(service, SPEC | spec, **options)
    assert storage(result) == expected
    assert "storage is not reported" not in result.status["conditions"][0]["message"]


async def test_a_pod_level_filter_reports_no_storage_and_says_why(service: CostService) -> None:
    """`label[app]` cannot be decided on a claim: no storage figure at all, never the namespace's or the cluster's."""
    result = await compute(service, SPEC | {"filter": 'label[app]:"web"'}, namespace="shop", project="alpha",
                           isolated=True)
    assert storage(result) is None
    assert result.status["totals"]["cpuCoreHours"] == "2.000000"  # web-1 alone: 1 core × 2 h
    ready = result.status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("True", "Computed")
    assert "storage is not reported: the filter names label[app]" in ready["message"]


async def test_an_invalid_spec_is_ready_false_invalid_spec(service: CostService) -> None:
    with pytest.raises(SpecError) as error:
        await compute(service, {"window": "fortnight"})
    status = reports.failed_status(error.value, generation=4, now=NOW)
    ready = status["conditions"][0]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "fortnight" in ready["message"]


async def test_transition_times_change_only_on_transitions(service: CostService) -> None:
    first = await compute(service, SPEC)
    later = await compute(service, SPEC, now=NOW + timedelta(hours=1), previous=first.status["conditions"])
    assert later.status["conditions"][0]["lastTransitionTime"] == "2025-06-01T02:10:00Z"
    assert later.status["lastComputedTime"] == "2025-06-01T03:10:00Z"
