"""The operator on a real control plane: `kubectl apply` CRDs, CostWeights and CostReports, the real
`kubetally run` process, and a real Prometheus holding the tiny generated cluster.

Expected totals come from the operator's own `/v2/cost` for the same window (the API is tested
against the generator's facts in tests/integration/test_api_curl.py), so a report's status and the
API are shown to agree to the cent, and tenant isolation is checked against the generator's
namespace → project map.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetally.controlplane import ControlPlane
from kubetally.processes import free_port
from kubetally.synthetic import presets
from tests.support.clusters import Served, serve_cluster
from tests.support.controlplane import kubectl
from tests.support.processes import managed_process
from tests.support.weights import WEIGHTS_YAML

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def report(name: str, namespace: str, **spec: Any) -> str:
    body = {"apiVersion": "kubetally.io/v1alpha1", "kind": "CostReport",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"window": "2026-01-01T00:00:00Z,2026-01-01T03:00:00Z", "aggregate": ["namespace"],
                     "method": "Effective", "topN": 50, **spec}}
    return json.dumps(body)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_cluster(presets.tiny(), tmp_path_factory.mktemp("e2e-tiny"))


class Operator:
    """`kubetally run` as a real process that a test can restart (same ledger, same port)."""

    def __init__(self, control_plane: ControlPlane, tiny: Served, workdir: Path) -> None:
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"  # plain HTTP on loopback; callers still need a token
        self.headers = {"Authorization": f"Bearer {control_plane.token}"}  # system:masters: sees everything
        spec = tiny.cluster.spec
        self.command = [sys.executable, "-m", "kubetally", "run", "--prometheus-url", tiny.url,
                        "--ledger", str(workdir / "ledger.duckdb"), "--cluster", spec.name, "--port", str(port),
                        "--host", "127.0.0.1", "--now", str(spec.end), "--admin-namespaces", "ops"]
        self.env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
        self.workdir = workdir
        self.stack = ExitStack()
        self.starts = 0

    def _ingested(self) -> bool:
        return 'kubetally_ledger_hours{cluster="c1"} 3.0' in httpx.get(f"{self.url}/metrics", headers=self.headers,
                                                                 timeout=2).text

    def start(self) -> None:
        self.starts += 1
        self.stack.enter_context(managed_process(self.command, self.workdir / f"operator-{self.starts}.log",
                                                 self._ingested, what="kubetally run", timeout=120, env=self.env))

    def stop(self) -> None:
        self.stack.close()


@pytest.fixture(scope="module")
def operator_process(control_plane: ControlPlane, tiny: Served,
                     tmp_path_factory: pytest.TempPathFactory) -> Iterator[Operator]:
    """CRDs applied, the ops and shop namespaces made, `kubetally run` started."""
    kubectl(control_plane, "apply", "-k", str(ROOT / "crds"))
    kubectl(control_plane, "wait", "--for", "condition=established", "--timeout=60s",
            "crd/costreports.kubetally.io", "crd/costweights.kubetally.io")
    for namespace in ("ops", "shop"):
        kubectl(control_plane, "create", "namespace", namespace, check=False)
    process = Operator(control_plane, tiny, tmp_path_factory.mktemp("operator"))
    process.start()
    yield process
    process.stop()


@pytest.fixture
def operator(operator_process: Operator) -> Iterator[httpx.Client]:
    """A client of the operator's API as the control plane's admin."""
    with httpx.Client(base_url=operator_process.url, headers=operator_process.headers, timeout=30) as client:
        yield client


def status_of(cp: ControlPlane, kind: str, name: str, namespace: str | None = None) -> dict[str, Any]:
    args = ["get", kind, name, "-o", "json"] + (["-n", namespace] if namespace else [])
    return dict(json.loads(kubectl(cp, *args).stdout).get("status") or {})


def wait_ready(cp: ControlPlane, kind: str, name: str, namespace: str | None = None) -> None:
    args = ["wait", "--for", "condition=Ready", "--timeout=90s", f"{kind}/{name}"]
    kubectl(cp, *args, *(["-n", namespace] if namespace else []))


def test_a_report_is_ready_and_agrees_with_the_api(control_plane: ControlPlane, operator: httpx.Client) -> None:
    kubectl(control_plane, "apply", "-f", "-", input=WEIGHTS_YAML)
    wait_ready(control_plane, "costweights", "default")
    kubectl(control_plane, "apply", "-f", "-", input=report("all", "ops"))
    wait_ready(control_plane, "costreport", "all", "ops")
    status = status_of(control_plane, "costreport", "all", "ops")
    body = operator.get("/v2/cost", params={"window": "2026-01-01T00:00:00Z,2026-01-01T03:00:00Z",
                                                    "aggregate": "namespace", "method": "Effective"}).json()
    api_total = sum(item["cost"] for item in body["data"][0].values())
    assert float(status["totals"]["cost"]) == pytest.approx(api_total, abs=1e-6)
    assert status["currency"] == "CNY"
    assert status["observedGeneration"] == 1
    assert {row["name"] for row in status["rows"]} == set(body["data"][0])
    result = operator.get(status["resultPath"]).json()
    assert {name: item["cost"] for name, item in result["data"][0].items()} == pytest.approx(
        {name: item["cost"] for name, item in body["data"][0].items()}, rel=1e-12)
    csv_lines = operator.get(status["resultPath"], params={"format": "csv"}).text.strip().splitlines()
    assert len(csv_lines) == 1 + status["rowCount"]
    assert not json.loads(kubectl(control_plane, "get", "costreport", "all", "-n", "ops", "-o", "json").stdout)[
        "metadata"].get("finalizers")
    printed = kubectl(control_plane, "get", "costreports", "-A").stdout
    assert "all" in printed
    assert status["totals"]["cost"][:6] in printed


def test_a_tenant_report_sees_only_its_project(control_plane: ControlPlane, operator: httpx.Client, tiny: Served) -> None:
    kubectl(control_plane, "apply", "-f", "-", input=report("mine", "shop", idle=False))
    wait_ready(control_plane, "costreport", "mine", "shop")
    status = status_of(control_plane, "costreport", "mine", "shop")
    project = tiny.cluster.project_of("shop")
    own = {ns.name for ns in tiny.cluster.namespaces if ns.project == project}
    assert {row["name"] for row in status["rows"]} <= own
    assert "shop" in {row["name"] for row in status["rows"]}


def test_invalid_specs_are_refused_or_marked(control_plane: ControlPlane, operator: httpx.Client) -> None:
    refused = kubectl(control_plane, "apply", "-f", "-", input=report("bad", "ops", window="fortnight"), check=False)
    assert refused.returncode != 0
    assert "spec.window" in refused.stderr
    bad_weights = WEIGHTS_YAML.replace("name: default", "name: lopsided").replace('memory: "0.3"', 'memory: "0.2"')
    kubectl(control_plane, "apply", "-f", "-", input=bad_weights)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        conditions = status_of(control_plane, "costweights", "lopsided").get("conditions") or []
        if conditions:
            break
        time.sleep(0.5)
    (ready,) = [c for c in conditions if c["type"] == "Ready"]
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    # The field as written in YAML, the sum the user wrote, and an accepted example (0.7 + 0.2 = 0.9).
    assert ready["message"] == ('spec.weights: cpu "0.7" + memory "0.2" = 0.9; '
                                'the weights must sum to exactly 1, e.g. {cpu: "0.7", memory: "0.3"}')


def test_a_price_change_recomputes_and_keeps_earlier_hours(control_plane: ControlPlane, operator: httpx.Client) -> None:
    """A new `default` version effective from 02:00 (all CPU) reprices hour 02:00–03:00 only."""
    window = {"window": "2026-01-01T00:00:00Z,2026-01-01T03:00:00Z", "step": "1h", "aggregate": "cluster",
              "method": "Effective", "idle": "false"}

    def hourly() -> list[float]:
        body = operator.get("/v2/cost", params=window).json()
        return [sum(item["cost"] for item in step.values()) for step in body["data"]]

    kubectl(control_plane, "apply", "-f", "-", input=WEIGHTS_YAML)
    # Without idle: with idle the total is the node cost, which weights only split, never change.
    kubectl(control_plane, "apply", "-f", "-", input=report("priced", "ops", idle=False))
    wait_ready(control_plane, "costreport", "priced", "ops")
    before, total_before = hourly(), status_of(control_plane, "costreport", "priced", "ops")["totals"]["cost"]
    changed = WEIGHTS_YAML.replace('weights: {cpu: "0.7", memory: "0.3"}', 'weights: {cpu: "1", memory: "0"}') + \
        '  effectiveFrom: "2026-01-01T02:00:00Z"\n'
    kubectl(control_plane, "apply", "-f", "-", input=changed)
    # The operator records the new version when its watch sees it, a moment after `kubectl apply`
    # returns (longer on a loaded machine): ask until the answer changes, within 30 s.
    settle = time.monotonic() + 30
    after = hourly()
    while after[2] == pytest.approx(before[2], rel=1e-6) and time.monotonic() < settle:
        time.sleep(0.5)
        after = hourly()
    assert after[:2] == pytest.approx(before[:2], rel=1e-12)
    assert after[2] != pytest.approx(before[2], rel=1e-6)
    deadline = time.monotonic() + 90
    while status_of(control_plane, "costreport", "priced", "ops")["totals"]["cost"] == total_before:
        assert time.monotonic() < deadline, "the report was not recomputed after the price change"
        time.sleep(1)


def test_a_restart_loses_nothing_and_recomputes_nothing_due_later(
    control_plane: ControlPlane, operator_process: Operator
) -> None:
    kubectl(control_plane, "apply", "-f", "-", input=report("steady", "ops", schedule="@daily"))
    wait_ready(control_plane, "costreport", "steady", "ops")
    before = status_of(control_plane, "costreport", "steady", "ops")
    operator_process.stop()
    operator_process.start()
    # Right after the restart (nothing in memory), the path in status answers with the status's totals.
    answer = httpx.get(f"{operator_process.url}{before['resultPath']}", headers=operator_process.headers,
                       timeout=30).raise_for_status().json()
    sets = [(name, item) for step in answer["data"] for name, item in step.items()]
    assert len(sets) == before["rowCount"]
    assert [sum(item["cost"] for _, item in sets), sum(item["cost"] for name, item in sets if name == "__idle__"),
            sum(item["cpuCoreHours"] for name, item in sets if name != "__idle__")] == pytest.approx(
        [float(before["totals"][key]) for key in ("cost", "idleCost", "cpuCoreHours")], abs=1e-6)
    time.sleep(35)  # past the timer's initial delay and one interval
    after = status_of(control_plane, "costreport", "steady", "ops")
    assert after["lastComputedTime"] == before["lastComputedTime"]
    assert after["totals"] == before["totals"]
    kubectl(control_plane, "apply", "-f", "-", input=report("fresh", "ops"))
    wait_ready(control_plane, "costreport", "fresh", "ops")
    assert status_of(control_plane, "costreport", "fresh", "ops")["totals"]["cost"] == before["totals"]["cost"]
