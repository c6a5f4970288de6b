"""`make demo` (scripts/demo.sh) from a fresh clone: it sets everything up, both APIs answer, a report is Ready, Ctrl-C stops all.

The clone is of this repository's committed HEAD (in CI, a clean clone of main), so the test runs
exactly what a newcomer gets. Its cache is a folder that does not exist yet (`KUBETALLY_CACHE`), as
on a fresh machine, so every path the demo opens under it must be created by the demo itself
(issue 12, bug 6: the ledger's `<cache>/demo/` was not, and only developer caches hid it): the demo
generates the TSDB blocks and backfills the ledger on every run (about a minute). The one thing
reused is the kube-apiserver binary (a 7-minute build), found or built once by
`find_kube_apiserver` in the shared cache and passed as `KUBE_APISERVER_BIN`. The demo's own clone
makes its own `.venv` (`scripts/setup.sh`), as the README's command does.

Checks, each against a number the demo did not print itself:
- both reports are Ready=True, and the admin report's total equals the sum over `/v2/cost` for the
  same window (7d, replayed to the end of the generated week), to the micro-unit;
- the tenant report in `ns-003` lists only controllers of its project (`project-03`, per the generator);
- the Alauda usage endpoint answers 7 daily Cpu rows for `ns-003` (2026-01-01..07);
- after one SIGINT the demo exits 0 within 60 s and nothing listens on its ports any more.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from kubetally.controlplane import find_kube_apiserver
from kubetally.processes import free_port
from kubetally.synthetic import generate, presets

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 1800  # a fresh machine builds kube-apiserver (~7 min) and the blocks first


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _kubectl(kubeconfig: str, *args: str) -> str:
    result = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_make_demo_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "kubetally"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    port = free_port()
    log_path = tmp_path / "demo.log"
    cache = tmp_path / "fresh-cache"  # not created: the demo must make every folder it writes to
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
    env |= {"KUBETALLY_CACHE": str(cache), "KUBE_APISERVER_BIN": str(find_kube_apiserver())}
    with log_path.open("w") as log:
        # `make demo` runs exactly this script; calling it directly lets the SIGINT below reach only the demo.
        demo = subprocess.Popen([str(clone / "scripts" / "demo.sh"), "--port", str(port), "--workdir", str(tmp_path / "run")],
                                stdout=log, stderr=subprocess.STDOUT, env=env, process_group=0)
    try:
        deadline = time.monotonic() + READY_TIMEOUT
        while "Ctrl-C stops everything" not in log_path.read_text():
            assert demo.poll() is None, f"the demo exited early:\n{log_path.read_text()[-4000:]}"
            assert time.monotonic() < deadline, f"the demo was not ready in time:\n{log_path.read_text()[-4000:]}"
            time.sleep(1)
        output = log_path.read_text()
        kubeconfig = re.search(r"export KUBECONFIG=(\S+)", output)
        prometheus = re.search(r"Prometheus:\s+http://127\.0\.0\.1:(\d+)", output)
        assert kubeconfig, output
        assert prometheus, output
        reports = json.loads(_kubectl(kubeconfig.group(1), "get", "costreports", "-A", "-o", "json"))["items"]
        by_name = {item["metadata"]["name"]: item["status"] for item in reports}
        assert set(by_name) == {"namespaces-7d", "my-controllers"}
        for status in by_name.values():
            ready = [c for c in status["conditions"] if c["type"] == "Ready"]
            assert [c["status"] for c in ready] == ["True"]
            assert status["currency"] == "CNY"  # the sample CostWeights, not the OpenCost default
        api = f"http://127.0.0.1:{port}"
        body = httpx.get(f"{api}/v2/cost", params={"window": "7d", "aggregate": "namespace",
                                                   "method": "Effective"}, timeout=60).json()
        assert len(body["data"][0]) >= 20  # 20 generated namespaces (+ idle)
        api_total = sum(item["cost"] for item in body["data"][0].values())
        assert float(by_name["namespaces-7d"]["totals"]["cost"]) == pytest.approx(api_total, abs=1e-6)
        cluster = generate(presets.demo())
        own = {cluster.controller_of(pod)[1] for pod in cluster.pods
               if cluster.project_of(pod.namespace) == "project-03"} - {None}
        tenant_rows = {row["name"] for row in by_name["my-controllers"]["rows"]}
        assert tenant_rows - {"__idle__", "__unallocated__"} <= own, tenant_rows - own
        assert float(by_name["my-controllers"]["totals"]["cost"]) < 0.5 * api_total
        usage = httpx.get(f"{api}/platform/cost.alauda.io/v1beta1/projects/project-03/costs/usage",
                          params={"start": "2026-01-01", "end": "2026-01-07", "kind": "namespace",
                                  "name": "ns-003", "step": "day", "pageSize": 100}, timeout=60)
        assert usage.status_code == 200, usage.text
        items = usage.json()["items"]
        assert {(row["item"], row["namespace"]) for row in items} == {("Cpu", "ns-003")}  # item defaults to Cpu
        assert sorted(row["start"] for row in items) == [f"202601{d:02d}" for d in range(1, 8)]
    finally:
        if demo.poll() is None:
            os.killpg(demo.pid, signal.SIGINT)
        try:
            code = demo.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(demo.pid, signal.SIGKILL)
            raise
    assert code == 0, log_path.read_text()[-4000:]
    assert "stopped" in log_path.read_text().splitlines()[-1]
    assert not _listening(port)
    assert not _listening(int(prometheus.group(1)))
    assert list((cache / "demo").glob("ledger-*.duckdb")), "the demo's ledger is not in its cache"
