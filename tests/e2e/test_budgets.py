"""CostBudgets on a real kube-apiserver with the real operator and a real Prometheus (the `tiny` cluster: 3 hours
from T0 = 2026-01-01T00:00Z). The replayed clock crosses the thresholds across an operator restart.

1. A first operator at now = T0 + 3h answers /v2/cost for namespace `shop` (Effective, idle=false): S2 over
   [T0, T0+2h) and S3 over [T0, T0+3h). The amount A is chosen from them so that 80 % of it is below S2 and A is
   between S2 (plus the live minutes the next step adds) and S3.
2. A fresh ledger, the operator at now = T0 + 2h + 10 s: the daily budget `shop/daily` (amount A, thresholds
   80 and 100 on spent) is computed on create: 80 % crossed, 100 % not; one Event ThresholdCrossed.
3. The operator restarted at now = T0 + 3h + 10 s (same ledger): on resume the budget is recomputed with the
   third hour: 100 % crossed, Exceeded=True; the 80 % crossing keeps its first time and its Event is not posted
   again. Exactly one Event per threshold.
4. `status.spent` equals the /v2/cost total of the budget's scope over `status.window` (exact to the 6 decimals
   written); `status.forecast` equals the documented formula computed here by hand from `status.spent`
   (spent + spent / elapsed × time left, the period being younger than 7 days); the gauges on /metrics equal
   the status.
5. A budget in tenant namespace `shop` naming `spec.scope`, one whose currency is not the CostWeights' and one
   with a threshold over 1000 % are Ready=False, reason InvalidSpec, with messages naming the field; a negative
   amount and an unknown period are refused at admission by the schema.
6. Webhooks: admin budgets in `ops` with the same scope and amount post their crossings to receivers on
   loopback, their URLs in the Secret kubetally-budget-webhooks: one receiver answers 500, 500, then 200 (the
   80 % crossing is delivered on the third attempt, the 100 % one at once: exactly one 2xx per crossing, 4
   POSTs), the other never answers; the budget posting to it is computed as promptly as the others (its status
   within the same wait), so a hung receiver delays no reconcile.
"""

from __future__ import annotations

import json
import os
import re
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import datetime
from decimal import Decimal
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
H = 3600


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    yield from serve_cluster(presets.tiny(), tmp_path_factory.mktemp("e2e-budgets"))


class Operator:
    """`kubetally run` at a replayed `now` on a ledger file, ready once it holds every hour before now."""

    def __init__(self, plane: ControlPlane, tiny: Served, ledger: Path, now: int, log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {plane.token}"}
        hours = (now - tiny.cluster.spec.start) // H
        command = [sys.executable, "-m", "kubetally", "run", "--prometheus-url", tiny.url, "--ledger", str(ledger),
                   "--cluster", tiny.cluster.spec.name, "--port", str(self.port), "--host", "127.0.0.1",
                   "--now", str(now), "--admin-namespaces", "ops", "--webhook-configuration", ""]
        env = {**os.environ, "KUBECONFIG": str(plane.kubeconfig), "PYTHONPATH": str(ROOT / "operator")}

        def ingested() -> bool:
            text = httpx.get(f"{self.url}/metrics", headers=self.headers, timeout=2).text
            return f'kubetally_ledger_hours{{cluster="c1"}} {hours}.0' in text

        self.context = managed_process(command, log, ingested, what="kubetally run", timeout=120, env=env)

    def get(self, path: str, **params: str) -> httpx.Response:
        return httpx.get(f"{self.url}{path}", params=params, headers=self.headers, timeout=30)


def spend(operator: Operator, start: int, end: int) -> Decimal:
    body = operator.get("/v2/cost", window=f"{start},{end}", aggregate="namespace", filter='namespace:"shop"',
                        method="Effective", idle="false").json()
    return sum((Decimal(repr(item["cost"])) for step in body["data"] for item in step.values()), Decimal(0))


def budget(name: str, namespace: str, **spec: Any) -> str:
    return json.dumps({"apiVersion": "kubetally.io/v1alpha1", "kind": "CostBudget",
                       "metadata": {"name": name, "namespace": namespace},
                       "spec": {"currency": "CNY", "period": "daily", **spec}})


def status_of(plane: ControlPlane, name: str, namespace: str) -> dict[str, Any]:
    found = json.loads(kubectl(plane, "get", "costbudget", name, "-n", namespace, "-o", "json").stdout)
    return dict(found.get("status") or {})


def wait_for(what: str, check: Any, timeout: float = 90.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = check()
        if found:
            return found
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def events(plane: ControlPlane) -> list[dict[str, Any]]:
    listed = json.loads(kubectl(plane, "get", "events", "-n", "shop", "-o", "json").stdout)["items"]
    return [e for e in listed if e["involvedObject"].get("kind") == "CostBudget"
            and (e.get("source") or {}).get("component") == "kubetally"]


class Receiver:
    """An HTTP receiver on loopback (its own thread) answering the statuses of `script` in turn (then 200);
    `hang` makes it never answer. It records every POST's JSON body."""

    def __init__(self, script: list[int], hang: bool = False) -> None:
        import http.server

        self.bodies: list[dict[str, Any]] = []
        self.answered: list[int] = []
        self.release = threading.Event()
        receiver = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                receiver.bodies.append(body)
                if hang:
                    receiver.release.wait(600)  # until the test is over
                code = script[len(receiver.answered)] if len(receiver.answered) < len(script) else 200
                receiver.answered.append(code)
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def test_a_budget_crosses_its_thresholds_once_each_across_a_restart(
        control_plane: ControlPlane, tiny: Served, tmp_path: Path) -> None:
    plane, t0 = control_plane, tiny.cluster.spec.start
    kubectl(plane, "apply", "-k", str(ROOT / "crds"))
    kubectl(plane, "wait", "--for", "condition=established", "--timeout=60s", "crd/costbudgets.kubetally.io")
    for namespace in ("ops", "shop"):
        kubectl(plane, "create", "namespace", namespace, check=False)
    kubectl(plane, "apply", "-f", "-", input=WEIGHTS_YAML)

    first = Operator(plane, tiny, tmp_path / "first.duckdb", t0 + 3 * H, tmp_path / "first.log")
    with first.context:  # 1. what the hours cost, from the API
        s2, s3 = spend(first, t0, t0 + 2 * H), spend(first, t0, t0 + 3 * H)
    amount = min(s2 / Decimal("0.85"), s3 * Decimal("0.97")).quantize(Decimal("0.000001"))
    assert amount * Decimal("0.8") <= s2 < amount, (s2, s3, amount)
    assert amount <= s3, (s2, s3, amount)

    flaky, hung = Receiver([500, 500]), Receiver([], hang=True)
    kubectl(plane, "create", "namespace", "kubetally-system", check=False)
    kubectl(plane, "create", "secret", "generic", "kubetally-budget-webhooks", "-n", "kubetally-system",
            f"--from-literal=flaky={flaky.url}", f"--from-literal=hung={hung.url}")
    thresholds = [{"percent": "80"}, {"percent": "100"}]
    ledger = tmp_path / "ledger.duckdb"
    with Operator(plane, tiny, ledger, t0 + 2 * H + 10, tmp_path / "second.log").context:  # 2.
        for name, namespace, extra in (("daily", "shop", {}),
                                       ("flaky", "ops", {"scope": {"namespaces": ["shop"]},
                                                         "notify": {"secretKey": "flaky", "format": "json"}}),
                                       ("hung", "ops", {"scope": {"namespaces": ["shop"]},
                                                        "notify": {"secretKey": "hung", "format": "slack"}})):
            kubectl(plane, "apply", "-f", "-", input=budget(name, namespace, amount=format(amount, "f"),
                                                            thresholds=thresholds, **extra))
        for name, namespace in (("daily", "shop"), ("flaky", "ops"), ("hung", "ops")):
            wait_for(f"{name}'s first status", lambda n=name, ns=namespace: status_of(plane, n, ns).get("spent"),
                     timeout=30)
        status = status_of(plane, "daily", "shop")
        assert [r["key"] for r in status["thresholds"]] == ["spent-80"]
        wait_for("the 80 % Event", lambda: len(events(plane)) == 1)
        wait_for("the 80 % notification after two 500s", lambda: flaky.answered == [500, 500, 200], timeout=30)
    crossed_80 = status["thresholds"][0]["crossedAt"]

    second = Operator(plane, tiny, ledger, t0 + 3 * H + 10, tmp_path / "third.log")
    with second.context:  # 3. restarted later: the third hour is in
        status = wait_for("100 % crossed", lambda: (lambda s: s if len(s.get("thresholds") or []) == 2 else None)(
            status_of(plane, "daily", "shop")))
        for name in ("flaky", "hung"):  # the hung receiver delays no budget's computation
            wait_for(f"{name} at 100 %", lambda n=name: len(status_of(plane, n, "ops").get("thresholds") or []) == 2,
                     timeout=30)
        wait_for("the 100 % notification", lambda: len(flaky.answered) == 4, timeout=30)
        time.sleep(3)  # any Event posted twice would be here by now
        posted = events(plane)
        kinds = {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]}
        metrics = second.get("/metrics").text
        listed = second.get("/apis/query.kubetally.io/v1alpha1/namespaces/shop/costbudgets").json()
        one = second.get("/apis/query.kubetally.io/v1alpha1/namespaces/shop/costbudgets/daily").json()
        missing = second.get("/apis/query.kubetally.io/v1alpha1/namespaces/shop/costbudgets/nope")
        window = status["window"]
        start = int(datetime.fromisoformat(window["start"].replace("Z", "+00:00")).timestamp())
        end = int(datetime.fromisoformat(window["end"].replace("Z", "+00:00")).timestamp())
        api_total = spend(second, start, end)
    assert [(r["key"], r["crossedAt"]) for r in status["thresholds"]][:1] == [("spent-80", crossed_80)]
    assert kinds["Exceeded"] == ("True", "SpentOverAmount")
    assert sorted((e["reason"], e["message"].split(" reached ")[1].split("%")[0]) for e in posted) == [
        ("ThresholdCrossed", "100"), ("ThresholdCrossed", "80")]
    assert all(e["count"] == 1 for e in posted)
    # 4. exact against /v2/cost, the forecast by hand, the gauges.
    spent = Decimal(status["spent"])
    assert spent == api_total.quantize(Decimal("0.000001"))
    # The HTTP API shows the same budgets (the tenant namespace's three: daily, and the two invalid ones
    # of the other test when it ran first), the one asked for, and a 404 Status for a name that is not.
    assert {item["metadata"]["name"] for item in listed["items"]} >= {"daily"}
    assert (one["kind"], one["status"]["spent"], one["status"]["thresholds"]) == (
        "CostBudget", status["spent"], status["thresholds"])
    assert (missing.status_code, missing.json()["reason"]) == (404, "NotFound")
    flaky.close()
    assert flaky.answered == [500, 500, 200, 200]
    delivered = [(b["threshold"], b["namespace"], b["name"], b["kind"]) for b in flaky.bodies]
    assert delivered == [("spent-80", "ops", "flaky", "CostBudgetThresholdCrossed")] * 3 + [
        ("spent-100", "ops", "flaky", "CostBudgetThresholdCrossed")]
    assert flaky.bodies[3]["value"] == pytest.approx(float(status_of(plane, "flaky", "ops")["spent"]), abs=1e-6)
    assert hung.bodies
    assert "text" in hung.bodies[0]
    hung.close()
    elapsed, left = end - start, 24 * H - (end - start)
    assert start == t0
    by_hand = float(spent) + float(spent) / elapsed * left
    assert float(status["forecast"]) == pytest.approx(by_hand, abs=2e-6)
    labels = 'currency="CNY",name="daily",namespace="shop"'
    for gauge, value in (("spent", status["spent"]), ("forecast", status["forecast"]), ("amount", status["amount"])):
        found = re.search(rf"kubetally_budget_{gauge}\{{{labels}\}} (\S+)", metrics)
        assert found is not None, (gauge, [line for line in metrics.splitlines() if "budget" in line])
        assert float(found.group(1)) == pytest.approx(float(value), abs=1e-6)


def test_bad_budgets_are_invalid_spec(control_plane: ControlPlane, tiny: Served, tmp_path: Path) -> None:
    plane, t0 = control_plane, tiny.cluster.spec.start
    kubectl(plane, "apply", "-k", str(ROOT / "crds"))
    for namespace in ("ops", "shop"):
        kubectl(plane, "create", "namespace", namespace, check=False)
    kubectl(plane, "apply", "-f", "-", input=WEIGHTS_YAML)
    with ExitStack() as stack:
        stack.enter_context(Operator(plane, tiny, tmp_path / "l.duckdb", t0 + 3 * H, tmp_path / "op.log").context)
        kubectl(plane, "apply", "-f", "-", input=budget("wider", "shop", amount="10", scope={"namespaces": ["ml"]}))
        kubectl(plane, "apply", "-f", "-", input=budget("dollars", "shop", amount="10", currency="USD"))
        kubectl(plane, "apply", "-f", "-", input=budget("over", "shop", amount="10", thresholds=[{"percent": "1001"}]))
        refused = kubectl(plane, "apply", "-f", "-", input=budget("negative", "shop", amount="-5"), check=False)
        assert refused.returncode != 0  # the schema refuses it at admission
        assert "spec.amount" in refused.stderr
        refused = kubectl(plane, "apply", "-f", "-", input=budget("yearly", "shop", amount="5", period="yearly"),
                          check=False)
        assert refused.returncode != 0
        assert "spec.period" in refused.stderr
        for name, field in (("wider", "spec.scope"), ("dollars", "spec.currency"),
                            ("over", "spec.thresholds[0].percent")):
            ready = wait_for(f"{name} marked", lambda name=name: next(
                (c for c in status_of(plane, name, "shop").get("conditions") or [] if c["type"] == "Ready"), None))
            assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
            assert ready["message"].startswith(f"{field}: ")
