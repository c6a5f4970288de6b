"""CostReport computation and status (kubetally.reports) over a ledger holding the documented
topology (tests/unit/engine/topology.py). Hand-derived, Effective basis, window 00:00–02:00:
workload 1.4875 + idle 2.1125 = 3.6; per namespace shop 0.65, web 0.60, data 0.22, batch 0.0175;
core-hours 2 + 2.5 + 4 + 1 + 1 + 0.25 = 10.75; GiB-hours 4 + 4 + 8 + 2 + 2 + 0.5 = 20.5;
storage 200 + 20 GiB-hours costing 0.04 + 0.002. Project beta (data, batch) costs 0.11 in h0 and
0.1275 in h1, so its idle share is 0.11·1.04/0.76 + 0.1275·1.0725/0.7275.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from kubetally import reports
from kubetally.domain.errors import SpecError
from kubetally.ledger.store import DuckDBLedger
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from tests.unit.api.test_app import WEIGHTS, NoLiveData
from tests.unit.engine import topology
from tests.unit.ledger.test_store import hour_batch

NOW = datetime(2025, 6, 1, 2, 10, tzinfo=UTC)
SPEC = {"window": "2025-06-01T00:00:00Z,2025-06-01T02:00:00Z", "aggregate": ["namespace"], "topN": 2}


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
    assert status["totals"] == {"cost": "3.600000", "idleCost": "2.112500", "storageCost": "0.042000",
                                "cpuCoreHours": "10.750000", "memoryGiBHours": "20.500000",
                                "storageGiBHours": "220.000000"}
    assert [row["name"] for row in status["rows"]] == ["__idle__", "shop"]
    assert (status["rowCount"], status["truncated"], status["currency"]) == (5, True, "CNY")
    assert status["window"] == {"start": "2025-06-01T00:00:00Z", "end": "2025-06-01T02:00:00Z"}
    assert status["nextComputeTime"] == "2025-06-01T03:00:00Z"  # @hourly
    assert status["resultPath"] == "/apis/kubetally.io/v1alpha1/namespaces/ops/costreports/r/result"
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
    assert result.status["totals"]["storageCost"] == "0.040000"


async def test_a_tenant_without_a_project_sees_its_namespace(service: CostService) -> None:
    result = await compute(service, SPEC | {"idle": False}, namespace="web", project=None, isolated=True)
    assert [(row["name"], row["cost"]) for row in result.status["rows"]] == [("web", "0.600000")]


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
