"""The admission webhook on a real kube-apiserver: bad billing objects refused at apply time, with the
message the InvalidSpec condition carries; and, with the operator down, the documented failure policy.

Setup (the operator is a process, not a Pod, so it stands in a network namespace the test makes:
kube-apiserver refuses loopback addresses in Endpoints; `--enable-aggregator-routing` makes it call
webhooks at the Service's endpoint address): CRDs, RBAC (manifests/rbac) and the webhook
configuration (manifests/manager/webhook.yaml) applied as shipped; a Pod object and a selector-less
Service `kubetally` + Endpoints naming the namespace's address; `kubetally run` started there as its
ServiceAccount, with no certificate files, so it makes one and puts it into the webhook's caBundle.

What must hold, in order (tests/fixtures/invalid: every InvalidSpec case, one object each):

1. Operator down: every invalid fixture is admitted (failurePolicy Ignore), each `kubectl apply`
   within the webhook's 5 s timeout plus 10 s of kubectl's own work.
2. Operator up: its caBundle is set; every admitted object gets Ready=False, reason InvalidSpec and
   Degraded=True (the operator's own metadata writes on them go through: the webhook judges a spec
   only when it changes); `kubectl apply --dry-run=server` of the same object under a new name
   (CREATE), and of the admitted object with a harmless spec change (UPDATE), is refused with
   `admission webhook "<kind>.kubetally.io" denied the request: <the condition's message>`; the
   message names the fixture's field; nothing was created by the dry runs; a label added to the
   admitted object (spec unchanged) is accepted.
3. The repository's samples pass `--dry-run=server`.
4. Operator stopped again: an invalid object is admitted again (failure policy), within the same bound.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetally.controlplane import ControlPlane, local_control_plane
from kubetally.netns import PodNetwork, pod_network
from kubetally.processes import background, wait_ready
from tests.access import kube

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="network namespaces need root and iproute2's ip"),
]

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = sorted((ROOT / "tests" / "fixtures" / "invalid").glob("*.yaml"))
PORT = 8443
#: A spec change that fixes nothing in any fixture (the UPDATE case): a field each kind accepts.
HARMLESS: dict[str, dict[str, Any]] = {"CostReport": {"topN": 7}, "CostWeights": {"unitPrices": {
    "cpuCoreHour": "0.031611", "memoryGiBHour": "0.004237", "storageGiBHour": "0.0001"}}}
PLURAL = {"CostReport": "costreports", "CostWeights": "costweights"}
#: The webhook's timeoutSeconds (manifests/manager/webhook.yaml) and kubectl's own work on top of it.
WEBHOOK_TIMEOUT, KUBECTL_SLACK = 5.0, 10.0


@dataclass
class Cluster:
    plane: ControlPlane
    network: PodNetwork
    workdir: Path
    kubeconfig: Path


def fixture(path: Path, suffix: str = "") -> tuple[str, dict[str, Any]]:
    text = path.read_text()
    obj = yaml.safe_load(text)
    obj["metadata"]["name"] += suffix
    return text.splitlines()[0].removeprefix("# expect: ").strip(), obj


def apply(cluster: Cluster, obj: dict[str, Any], *args: str) -> tuple[subprocess.CompletedProcess[str], float]:
    started = time.monotonic()
    done = kube.kubectl(cluster.plane, "apply", *args, "-f", "-", input=json.dumps(obj), check=False)
    return done, time.monotonic() - started


def get(cluster: Cluster, kind: str, name: str, namespace: str | None) -> dict[str, Any]:
    where = ["-n", namespace] if namespace else []
    found: dict[str, Any] = json.loads(kube.kubectl(cluster.plane, "get", kind, name, *where, "-o", "json").stdout)
    return found


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    workdir = tmp_path_factory.mktemp("admission")
    with ExitStack() as stack:
        network = stack.enter_context(pod_network())
        plane = stack.enter_context(local_control_plane(workdir / "plane", bind_host=network.host_ip,
                                                        log=lambda line: None))
        kube.kubectl(plane, "apply", "-k", str(ROOT / "crds"))
        kube.apply(plane, *({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}}
                            for ns in ("kubetally-system", "ops")))
        kube.kubectl(plane, "apply", "-k", str(ROOT / "manifests" / "rbac"))
        kube.kubectl(plane, "apply", "-f", str(ROOT / "manifests" / "manager" / "webhook.yaml"))
        kube.kubectl(plane, "wait", "--for", "condition=established", "--timeout=60s",
                     "crd/costreports.kubetally.io", "crd/costweights.kubetally.io")
        uid = kube.pod_at(plane, network.pod_ip)
        kube.service_to(plane, kube.SERVICE, network.pod_ip, PORT, uid)
        token = kube.token_for(plane, "kubetally-system", "kubetally")
        config = kube.kubeconfig(workdir / "kubeconfig-operator", plane, "operator", token)
        yield Cluster(plane, network, workdir, config)


def operator(cluster: Cluster, log: Path) -> Any:
    """`kubetally run` in the network namespace as its ServiceAccount: no certificate files (it makes
    one and publishes it as the webhook's caBundle), no Prometheus (nothing here needs a number)."""
    command = cluster.network.wrap([
        sys.executable, "-m", "kubetally", "run", "--prometheus-url", f"http://{cluster.network.host_ip}:9",
        "--ledger", str(cluster.workdir / "ledger.duckdb"), "--host", cluster.network.pod_ip, "--port", str(PORT),
        "--backfill-days", "0", "--webhook-configuration", "kubetally"])
    env = {**os.environ, "KUBECONFIG": str(cluster.kubeconfig), "PYTHONPATH": str(ROOT / "operator")}
    return background(command, log, env=env)


def ca_bundles(cluster: Cluster) -> list[str]:
    found = get(cluster, "validatingwebhookconfiguration", "kubetally", None)
    return [str(hook["clientConfig"].get("caBundle", "")) for hook in found["webhooks"]]


def conditions(cluster: Cluster, obj: dict[str, Any]) -> dict[str, dict[str, Any]]:
    meta = obj["metadata"]
    status = get(cluster, obj["kind"].lower(), meta["name"], meta.get("namespace")).get("status") or {}
    return {c["type"]: c for c in status.get("conditions") or []}


def test_bad_billing_objects_are_refused_at_apply_with_the_conditions_message(cluster: Cluster) -> None:
    assert len(FIXTURES) >= 12
    admitted = []
    for path in FIXTURES:  # 1. operator down: the failure policy admits
        _, obj = fixture(path)
        done, took = apply(cluster, obj)
        assert done.returncode == 0, (path.name, done.stderr)
        assert took < WEBHOOK_TIMEOUT + KUBECTL_SLACK, (path.name, took)
        admitted.append((path, obj))

    log = cluster.workdir / "operator.log"
    with operator(cluster, log) as process:  # 2. operator up
        wait_ready(process, lambda: all(ca_bundles(cluster)), what="the webhook's caBundle", log_path=log,
                   timeout=90)
        messages: dict[str, str] = {}

        def all_marked() -> bool:
            for path, obj in admitted:
                found = conditions(cluster, obj)
                ready = found.get("Ready")
                if ready is None or ready["reason"] != "InvalidSpec":
                    return False
                assert ready["status"] == "False"
                assert found["Degraded"]["status"] == "True"
                messages[path.name] = ready["message"]
            return True

        wait_ready(process, all_marked, what="InvalidSpec on every admitted object", log_path=log, timeout=90)
        for path, obj in admitted:
            field, fresh = fixture(path, "-new")
            message = messages[path.name]
            assert message.startswith(field), (path.name, message)
            denied = f'admission webhook "{PLURAL[obj["kind"]]}.kubetally.io" denied the request: {message}'
            created, _ = apply(cluster, fresh, "--dry-run=server")
            assert created.returncode != 0, (path.name, created.stdout)
            assert denied in created.stderr, (path.name, created.stderr)
            changed = {**obj, "spec": {**obj["spec"], **HARMLESS[obj["kind"]]}}
            updated, _ = apply(cluster, changed, "--dry-run=server")
            assert updated.returncode != 0, (path.name, updated.stdout)
            assert denied in updated.stderr, (path.name, updated.stderr)
            meta = fresh["metadata"]
            where = ["-n", meta["namespace"]] if meta.get("namespace") else []
            absent = kube.kubectl(cluster.plane, "get", fresh["kind"].lower(), meta["name"], *where, check=False)
            assert absent.returncode != 0
            assert "NotFound" in absent.stderr
            labelled = {**obj, "metadata": {**obj["metadata"], "labels": {"team": "finops"}}}
            relabelled, _ = apply(cluster, labelled)  # the spec unchanged: not judged again
            assert relabelled.returncode == 0, (path.name, relabelled.stderr)
        samples = kube.kubectl(cluster.plane, "apply", "--dry-run=server", "-k", str(ROOT / "manifests" / "samples"),
                               check=False)  # 3. valid objects pass
        assert samples.returncode == 0, samples.stderr
        assert samples.stdout.count("(server dry run)") == 2, samples.stdout

    _, late = fixture(FIXTURES[0], "-late")  # 4. operator stopped: admitted again
    done, took = apply(cluster, late)
    assert done.returncode == 0, done.stderr
    assert took < WEBHOOK_TIMEOUT + KUBECTL_SLACK, took
