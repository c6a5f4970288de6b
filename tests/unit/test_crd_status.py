"""The statuses the operator really writes validate against the CRDs' status schemas.

The apiserver drops or refuses a status that does not fit `status` of the CRD, so what is checked
here is what the handlers produce, not a hand-written example: each CostReport status comes from
the CostReport handler's own path (`handlers.costreports._status_for`: `compute_report`, or
`failed_status` on InvalidSpec / MetricsUnavailable), each CostWeights status from the CostWeights
handler (`handlers.costweights.record`), over the documented topology ledger
(tests/unit/engine/topology.py: hours 00:00 and 01:00 of 2025-06-01, now 02:10).

The conditions each case must carry are the vocabulary documented in `kubetally.reports` and the
README, written out by hand (type → reason):

| case                              | Ready                      | Degraded                          |
|-----------------------------------|----------------------------|-----------------------------------|
| window 00:00–02:00, all in ledger | True  Computed             | False Complete (coverage 1)       |
| window 23:00–02:00, 23:00 empty   | True  Computed             | True  DataGap (coverage 2/3)      |
| filter matching no namespace      | True  Computed             | True  NoData (no workload cost)   |
| window "fortnight"                | False InvalidSpec          | True  InvalidSpec                 |
| step 45m (sub-hour)               | False InvalidSpec          | True  InvalidSpec                 |
| step 1h over 00:30–02:00 (sets)   | True  Computed             | True  DataGap (live 00:30–01:00)  |
| the store unreachable             | False MetricsUnavailable   | True  MetricsUnavailable          |
| CostWeights 0.5/0.5               | True  Recorded             | False Recorded                    |
| CostWeights 0.7/0.2 (sum 0.9)     | False InvalidSpec          | True  InvalidSpec                 |
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import kopf
import pytest

from kubetally.domain.errors import SourceUnavailable
from kubetally.handlers.costreports import _status_for
from kubetally.handlers.costweights import record
from kubetally.ledger.store import DuckDBLedger
from kubetally.reports import failed_status
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from tests.unit.api.test_app import WEIGHTS, NoLiveData
from tests.unit.engine import topology
from tests.unit.ledger.test_store import hour_batch
from tests.unit.test_crds import REPORTS, _at, _schema, _violations
from tests.unit.test_crds import WEIGHTS as WEIGHTS_CRD

NOW = datetime(2025, 6, 1, 2, 10, tzinfo=UTC)
WHOLE = "2025-06-01T00:00:00Z,2025-06-01T02:00:00Z"

#: case → (CostReport spec, (Ready status, reason), (Degraded status, reason)); see the table above.
REPORT_CASES: dict[str, tuple[dict[str, Any], tuple[str, str], tuple[str, str]]] = {
    "computed": ({"window": WHOLE, "aggregate": ["namespace"]}, ("True", "Computed"), ("False", "Complete")),
    "data gap": ({"window": "2025-05-31T23:00:00Z,2025-06-01T02:00:00Z", "aggregate": ["namespace"]},
                 ("True", "Computed"), ("True", "DataGap")),
    "no data": ({"window": WHOLE, "aggregate": ["namespace"], "filter": 'namespace:"nobody"'},
                ("True", "Computed"), ("True", "NoData")),
    "invalid spec": ({"window": "fortnight"}, ("False", "InvalidSpec"), ("True", "InvalidSpec")),
    "sub-hour step": ({"window": WHOLE, "step": "45m"}, ("False", "InvalidSpec"), ("True", "InvalidSpec")),
    "hourly sets off the hour": ({"window": "2025-06-01T00:30:00Z,2025-06-01T02:00:00Z", "step": "1h"},
                                 ("True", "Computed"), ("True", "DataGap")),
}


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[SimpleNamespace]:
    """What the handlers read from kopf's memo: the service, the ledger, the admin namespaces."""
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0)
    service = CostService(ledger, NoLiveData(), SourceConfig(cluster="c1"), clock=lambda: int(NOW.timestamp()))
    service.record_weights("default", WEIGHTS)
    yield SimpleNamespace(service=service, ledger=ledger, results={}, admin_namespaces=frozenset({"ops"}))
    ledger.close()


def _reasons(status: dict[str, Any]) -> dict[str, tuple[str, str]]:
    return {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}


@pytest.mark.parametrize("case", list(REPORT_CASES))
async def test_a_report_status_the_handler_writes_validates(case: str, runtime: SimpleNamespace) -> None:
    spec, ready, degraded = REPORT_CASES[case]
    body = {"metadata": {"name": "r", "namespace": "ops", "generation": 3}, "spec": spec}
    status = await _status_for("r", "ops", body, runtime)  # type: ignore[arg-type]
    assert _reasons(status) == {"Ready": ready, "Degraded": degraded}
    assert status["observedGeneration"] == 3
    assert _violations(status, _at(_schema(REPORTS), "status"), ".status") == []


async def test_a_sub_hour_step_is_invalid_spec_naming_whole_hours_not_a_retry(runtime: SimpleNamespace) -> None:
    """It used to raise ValueError inside the handler, which kopf retried forever. Now the status is
    written once (the handler returns, it does not raise) and says what is accepted."""
    body = {"metadata": {"name": "r", "namespace": "ops", "generation": 1}, "spec": {"window": "7d", "step": "45m"}}
    status = await _status_for("r", "ops", body, runtime)  # type: ignore[arg-type]
    ready = next(c for c in status["conditions"] if c["type"] == "Ready")
    assert ready["message"] == (
        'spec.step: "45m" is not a whole number of hours; accepted: a whole number of hours, at least 1h: '
        "e.g. 1h, 2h, 6h, 1d, 1w (the ledger is hourly, so sub-hour steps such as 30m are not served)")


def test_the_status_of_an_unreachable_store_validates() -> None:
    """What the CostReport handler writes when `compute_report` raises SourceUnavailable."""
    error = SourceUnavailable("Prometheus at http://prometheus:9090 did not answer within 10 s")
    status = failed_status(error, generation=2, now=NOW)
    assert _reasons(status) == {"Ready": ("False", "MetricsUnavailable"), "Degraded": ("True", "MetricsUnavailable")}
    assert _violations(status, _at(_schema(REPORTS), "status"), ".status") == []


@pytest.mark.parametrize(
    ("spec", "reasons"),
    [
        (WEIGHTS, {"Ready": ("True", "Recorded"), "Degraded": ("False", "Recorded")}),
        (WEIGHTS | {"weights": {"cpu": "0.7", "memory": "0.2"}},
         {"Ready": ("False", "InvalidSpec"), "Degraded": ("True", "InvalidSpec")}),
    ],
    ids=["recorded", "invalid spec"],
)
def test_a_weights_status_the_handler_writes_validates(
    spec: dict[str, Any], reasons: dict[str, tuple[str, str]], runtime: SimpleNamespace
) -> None:
    patch = kopf.Patch()
    # kopf passes more keyword arguments (diff, old, new, logger...); the handler takes them as **_.
    record(name="spot", spec=spec, meta={"generation": 1}, status={}, patch=patch,  # type: ignore[call-arg, arg-type]
           memo=kopf.Memo(runtime=runtime))
    status = dict(patch["status"])
    assert _reasons(status) == reasons
    assert _violations(status, _at(_schema(WEIGHTS_CRD), "status"), ".status") == []


def test_status_checker_catches_mistakes() -> None:
    status = _at(_schema(REPORTS), "status")
    ready = {"type": "Ready", "status": "True", "reason": "Computed", "message": "5 rows over 2 h",
             "lastTransitionTime": "2025-06-01T02:10:00Z", "observedGeneration": 3}
    assert _violations({"conditions": [ready]}, status) == []
    assert _violations({"totals": {"cost": 12.5}}, status)  # money is a string
    assert _violations({"conditions": [ready | {"status": "Yes"}]}, status)
    assert _violations({"conditions": [ready] * 2}, status)  # one condition per type
    assert _violations({"rows": [{"name": "x"}] * 501}, status)
    assert _violations({"lastComputedTime": "2025-06-09 00:05:00"}, status)
    assert _violations({"items": []}, status)  # would be pruned by the apiserver
