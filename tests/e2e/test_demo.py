"""`make demo` (scripts/demo.sh) from a fresh clone: it sets everything up, what it prints works, Ctrl-C stops all.

The clone is of this repository's committed HEAD (in CI, a clean clone of main), so the test runs
exactly what a newcomer gets. Its cache is a folder that does not exist yet (`KUBETALLY_CACHE`), as
on a fresh machine, so every path the demo opens under it must be created by the demo itself
(issue 12, bug 6: the ledger's `<cache>/demo/` was not, and only developer caches hid it): the demo
generates the TSDB blocks and backfills the ledger on every run (about a minute). The one thing
reused is the kube-apiserver binary (a 7-minute build), found or built once by
`find_kube_apiserver` in the shared cache and passed as `KUBE_APISERVER_BIN`. The demo's own clone
makes its own `.venv` (`scripts/setup.sh`), as the README's command does.

As root with iproute2 (this machine, CI) the demo runs the operator in a network namespace and
routes the aggregated API `query.kubetally.io` to it; otherwise it falls back to loopback and the
aggregated checks below are replaced by its one-line explanation.

Checks, each against a number the demo did not print itself (the generator is the reference):
- both reports are Ready=True, and the admin report's total equals the sum over `/v2/cost` for the
  same window (7d, replayed to the end of the generated week, asked with the admin token), to the
  micro-unit; the admin's answer on the operator's direct port holds all 20 namespaces;
- the tenant report in `ns-003` lists only controllers of its project (`project-03`, per the generator);
- the Alauda usage endpoint answers 7 daily Cpu rows for `ns-003` (2026-01-01..07);
- the printed commands, run as printed by bash: the tenant's `kubectl get --raw` of
  `…/namespaces/ns-003/costs/cost?window=7d&aggregate=controller` answers 200 (kubectl -v=6) with
  controllers the generator ran in ns-003 only, each one with a pod that lived at least one scrape
  interval (300 s) among them (shorter job pods may fall between two scrapes), every row of ns-003; the tenant's ns-004 line
  is Forbidden; the tenant's report result answers; `kubectl api-resources --api-group=…` lists
  costs (costreports/result is a subresource, which it does not list); the tenant's curl of `/v2/cost?aggregate=namespace` shows only ns-003, at
  the ns-003 cost of the same curl with the admin's token file (which shows all 20 namespaces); the
  admin's Alauda curl pages namespace-days of several namespaces, the tenant's project curl only
  ns-003; the curl without a token gets a 401 Status;
- the printed web console URL, in a real Chromium (`console_check`): the tenant signed in with their
  token file sees ns-003 and its report only, nowhere another namespace; the admin all 20 and both reports;
- after one SIGINT the demo exits 0 within 60 s, no process naming its workdir is left, and its
  network namespace and host address are gone (without one: nothing listens on its ports).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import ssl
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetally.controlplane import find_kube_apiserver
from kubetally.processes import free_port
from kubetally.synthetic import generate, presets
from tests.e2e.console_check import check_console

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]
READY_TIMEOUT = 1800  # a fresh machine builds kube-apiserver (~7 min) and the blocks first
NETNS = os.geteuid() == 0 and shutil.which("ip") is not None  # what the demo needs for the aggregated API
TENANT_NS = "ns-003"
SPECIAL = {"__idle__", "__unallocated__"}


def _listening(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(2.0)  # a deleted namespace's address may route nowhere: no answer is "not listening"
        try:
            return sock.connect_ex((host, port)) == 0
        except OSError:
            return False


def _running(workdir: Path) -> list[str]:
    """Command lines of live processes that name `workdir` (the demo's children all do: their logs,
    data, certificates or kubeconfig live there)."""
    found = []
    for proc in Path("/proc").iterdir():
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if proc.name.isdigit() and str(workdir) in command:
            found.append(command)
    return found


def _kubectl(kubeconfig: str, *args: str) -> str:
    result = subprocess.run(["kubectl", "--kubeconfig", kubeconfig, *args], capture_output=True, text=True,
                            check=False, timeout=60)
    assert result.returncode == 0, result.stderr
    return result.stdout


def _printed(output: str, *parts: str) -> str:
    """The one printed command line (indented by two spaces) that holds every one of `parts`."""
    found = [line.strip() for line in output.splitlines() if line.startswith("  ") and all(p in line for p in parts)]
    assert len(found) == 1, (parts, found)
    return found[0]


def _bash(line: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "-c", line], capture_output=True, text=True, check=False, timeout=120, env=env)


def _json(line: str, env: dict[str, str]) -> Any:
    result = _bash(line, env)
    assert result.returncode == 0, (line, result.stderr)
    return json.loads(result.stdout)


def _label(output: str, label: str) -> str:
    found = re.search(rf"^  {re.escape(label)}:\s+(\S+)", output, re.MULTILINE)
    assert found, (label, output)
    return found.group(1)


def _names(body: dict[str, Any]) -> set[str]:
    return {name for step in body["data"] for name in step}


def _check_aggregated(output: str, env: dict[str, str], seen: set[str | None], ran: set[str | None]) -> None:
    """The tenant's kubectl lines through kube-apiserver, and the admin's api-resources line; the
    controller rows lie between `seen` (controllers whose pods Prometheus certainly sampled) and `ran`."""
    tenant = _printed(output, "--kubeconfig", f"namespaces/{TENANT_NS}/costs/cost?window=7d&aggregate=controller")
    assert tenant.startswith("kubectl --kubeconfig ")
    assert " get --raw \"/apis/query.kubetally.io/v1alpha1/" in tenant
    result = _bash(tenant + " -v=6", env)
    assert result.returncode == 0, result.stderr
    assert [line for line in result.stderr.splitlines() if "/namespaces/ns-003/costs/cost?" in line and "200 OK" in line
            and "GET" in line], result.stderr
    body = json.loads(result.stdout)
    rows = {name: item for step in body["data"] for name, item in step.items()}
    assert seen <= set(rows) - SPECIAL <= ran, (seen - set(rows), set(rows) - SPECIAL - ran)
    assert {item["properties"]["namespace"] for name, item in rows.items() if name != "__idle__"} == {TENANT_NS}
    forbidden = _bash(_printed(output, "--kubeconfig", "namespaces/ns-004/costs/cost"), env)
    assert forbidden.returncode != 0
    assert "Forbidden" in forbidden.stderr, forbidden.stderr
    report = _json(_printed(output, "--kubeconfig", f"namespaces/{TENANT_NS}/costreports/my-controllers"), env)
    assert report, report
    resources = _bash(_printed(output, "kubectl api-resources --api-group=query.kubetally.io"), env)
    assert resources.returncode == 0, resources.stderr
    assert {line.split()[0] for line in resources.stdout.splitlines()[1:]} == {"costs"}


def _check_curls(output: str, env: dict[str, str], namespaces: set[str]) -> None:
    """The printed curls on the operator's own port, with the token files they read; the tenant's
    `/v2/cost` line is also run with the admin's token file in its place (the same question)."""
    line = _printed(output, "tenant-ns-003.token", "/v2/cost?window=7d&aggregate=namespace'")
    tenant, admin = _json(line, env), _json(line.replace("/tenant-ns-003.token", "/admin.token"), env)
    assert _names(tenant) - SPECIAL == {TENANT_NS}
    assert _names(admin) - SPECIAL == namespaces
    [step], [everything] = tenant["data"], admin["data"]
    assert step[TENANT_NS]["cost"] == pytest.approx(everything[TENANT_NS]["cost"], abs=1e-6)
    assert step[TENANT_NS]["cost"] > 0
    usage = _json(_printed(output, "admin.token", "/costs/usage?", "kind=namespace_all"), env)
    page = {item["namespace"] for item in usage["items"]}  # the first page (20 items) of namespace-days
    assert len(usage["items"]) == 20 < usage["total"]
    assert len(page) > 1, page
    assert page <= namespaces, page
    tenant_usage = _json(_printed(output, "tenant-ns-003.token", "/projects/project-03/costs/usage?"), env)
    assert {item["namespace"] for item in tenant_usage["items"]} == {TENANT_NS}
    anonymous = _json(_printed(output, "curl -s", "/v2/cost?window=7d'"), env)
    assert (anonymous["kind"], anonymous["code"]) == ("Status", 401)


def test_make_demo_from_a_fresh_clone(tmp_path: Path) -> None:
    clone = tmp_path / "kubetally"
    subprocess.run(["git", "clone", "-q", str(ROOT), str(clone)], check=True, timeout=120)
    port = free_port()
    log_path = tmp_path / "demo.log"
    cache = tmp_path / "fresh-cache"  # not created: the demo must make every folder it writes to
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "KUBECONFIG")}
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
        prometheus = re.search(r"Prometheus:\s+http://([\d.]+):(\d+)", output)
        network = re.search(r"network namespace (kt-\d+-\d+)", output)
        assert kubeconfig, output
        assert prometheus, output
        assert bool(network) == NETNS, output
        assert len(_running(tmp_path / "run")) >= 5  # the demo, etcd, kube-apiserver, Prometheus, the operator
        api = _label(output, "operator API")
        ca = re.search(r"operator API:\s+\S+ \(CA (\S+)\)", output)
        verify: ssl.SSLContext | bool = ssl.create_default_context(cafile=ca.group(1)) if ca else True
        assert api.startswith("https://10.231." if NETNS else f"http://127.0.0.1:{port}"), api
        admin = {"Authorization": f"Bearer {Path(_label(output, 'admin token')).read_text().strip()}"}
        reports = json.loads(_kubectl(kubeconfig.group(1), "get", "costreports", "-A", "-o", "json"))["items"]
        by_name = {item["metadata"]["name"]: item["status"] for item in reports}
        assert set(by_name) == {"namespaces-7d", "my-controllers"}
        for status in by_name.values():
            ready = [c for c in status["conditions"] if c["type"] == "Ready"]
            assert [c["status"] for c in ready] == ["True"]
            assert status["currency"] == "CNY"  # the sample CostWeights, not the OpenCost default
        body = httpx.get(f"{api}/v2/cost", params={"window": "7d", "aggregate": "namespace", "method": "Effective"},
                         headers=admin, verify=verify, timeout=60).json()
        cluster = generate(presets.demo())
        namespaces = {pod.namespace for pod in cluster.pods}
        assert len(namespaces) == 20
        assert _names(body) - SPECIAL == namespaces
        api_total = sum(item["cost"] for item in body["data"][0].values())
        assert float(by_name["namespaces-7d"]["totals"]["cost"]) == pytest.approx(api_total, abs=1e-6)
        project = {cluster.controller_of(pod)[1] for pod in cluster.pods
                   if cluster.project_of(pod.namespace) == "project-03"} - {None}
        tenant_rows = {row["name"] for row in by_name["my-controllers"]["rows"]}
        assert tenant_rows - SPECIAL <= project, tenant_rows - project
        assert float(by_name["my-controllers"]["totals"]["cost"]) < 0.5 * api_total
        usage = httpx.get(f"{api}/platform/cost.alauda.io/v1beta1/projects/project-03/costs/usage",
                          params={"start": "2026-01-01", "end": "2026-01-07", "kind": "namespace",
                                  "name": TENANT_NS, "step": "day", "pageSize": 100},
                          headers=admin, verify=verify, timeout=60)
        assert usage.status_code == 200, usage.text
        items = usage.json()["items"]
        assert {(row["item"], row["namespace"]) for row in items} == {("Cpu", TENANT_NS)}  # item defaults to Cpu
        assert sorted(row["start"] for row in items) == [f"202601{d:02d}" for d in range(1, 8)]
        shell = {**env, "KUBECONFIG": kubeconfig.group(1)}  # as after the printed `export KUBECONFIG=...`
        _check_curls(output, shell, namespaces)
        check_console(output, namespaces, TENANT_NS)
        if NETNS:
            mine = [pod for pod in cluster.pods if pod.namespace == TENANT_NS]
            # a pod that lived one scrape interval holds a scrape instant; a 10 s job pod may hold none
            seen = {cluster.controller_of(pod)[1] for pod in mine if pod.end - pod.start >= presets.demo().scrape_seconds}
            _check_aggregated(output, shell, seen - {None}, {cluster.controller_of(pod)[1] for pod in mine} - {None})
        else:
            assert "No aggregated API (/apis/query.kubetally.io/v1alpha1) in this run: it needs the operator in a " \
                   "network namespace (root and iproute2's ip)" in output
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
    assert not _running(tmp_path / "run"), "processes of the demo outlived it"
    if network:
        # a TCP connect cannot tell here: this sandbox accepts connections to any absent address
        left = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True, timeout=10)
        assert network.group(1) not in left.stdout
        addresses = subprocess.run(["ip", "-o", "-4", "addr"], capture_output=True, text=True, check=True, timeout=10)
        assert f"inet {prometheus.group(1)}/" not in addresses.stdout
    else:
        assert not _listening("127.0.0.1", port)
        assert not _listening(prometheus.group(1), int(prometheus.group(2)))
    assert list((cache / "demo").glob("ledger-*.duckdb")), "the demo's ledger is not in its cache"
