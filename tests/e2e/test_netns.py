"""A network namespace stands in for a Pod: kube-apiserver routes an APIService to a server inside it.

kube-apiserver refuses loopback addresses in Endpoints, so the aggregated API can reach a local
server only at an address of its own: `kubetally.netns.pod_network()` makes one (netns + veth pair).
Here a control plane binds the host end, a tiny HTTPS server (python's ssl, its certificate made in
the test) runs inside the namespace, and an APIService + selector-less Service + Endpoints route
`/apis/test.example.io/v1` to it. What must hold:

- the namespace is wired as documented (10.231.X.1 host side, 10.231.X.2 pod side, /30, lo up) and
  is gone after the context, even when its body raised, with the processes started in it;
- from inside, the API server (its certificate covers the host address) and a Prometheus bound to
  the host address are reachable; from the host, the server inside is;
- `kubectl get --raw /apis/test.example.io/v1` as admin returns the tiny server's body, the server
  saw the front-proxy client certificate (CN front-proxy-client, signed by the control plane's
  front-proxy CA) with `X-Remote-User: admin`, a client-sent `X-Remote-User` never arrives, and
  the APIService becomes Available.

Needs root and iproute2 (skipped otherwise: the demo falls back to loopback there).
"""

from __future__ import annotations

import base64
import json
import os
import re
import shutil
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetally import localprom, pki
from kubetally.controlplane import FRONT_PROXY_CLIENT, ControlPlane, local_control_plane
from kubetally.netns import PodNetwork, pod_network
from kubetally.processes import background, wait_ready
from tests.support.controlplane import kubectl

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(os.geteuid() != 0 or shutil.which("ip") is None,
                       reason="network namespaces need root and iproute2's ip"),
]

NAMESPACE = "netns-e2e"
TINY_PORT = 8443
AGGREGATOR = "system:kube-aggregator"  # the user kube-apiserver's availability checks come as
BODY = {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "test.example.io/v1", "resources": []}

TINY_SERVER = """
import http.server, json, ssl, sys
cert, key, client_ca, host, port, record, body = sys.argv[1:8]

class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        peer = self.connection.getpeercert() or {}
        names = [value for rdn in peer.get("subject", ()) for key, value in rdn if key == "commonName"]
        seen = {"path": self.path, "cn": names[0] if names else None,
                "user": self.headers.get_all("X-Remote-User") or [],
                "groups": self.headers.get_all("X-Remote-Group") or []}
        with open(record, "a") as out:
            out.write(json.dumps(seen) + "\\n")
        data = body.encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
context.load_verify_locations(client_ca)
context.verify_mode = ssl.CERT_OPTIONAL  # a client certificate, when sent, must verify against client_ca
server = http.server.ThreadingHTTPServer((host, int(port)), Handler)
server.socket = context.wrap_socket(server.socket, server_side=True)
server.serve_forever()
"""


def _ip(*args: str) -> str:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=True, timeout=10).stdout


def _trust(ca_file: Path) -> ssl.SSLContext:
    return ssl.create_default_context(cafile=str(ca_file))


def _gone(network: PodNetwork) -> bool:
    names = [line.split(" ")[0] for line in _ip("netns", "list").splitlines()]
    links = subprocess.run(["ip", "link", "show", network.host_link], capture_output=True, timeout=10)
    return network.name not in names and links.returncode != 0 and network.host_ip not in _ip("-o", "-4", "addr")


def _wired_then_fail(made: list[tuple[PodNetwork, subprocess.Popen[bytes]]], log: Path) -> None:
    with pod_network() as network, background(network.wrap(["sleep", "600"]), log) as sleeper:
        made.append((network, sleeper))
        block = int(network.host_ip.split(".")[2])
        assert (network.host_ip, network.pod_ip) == (f"10.231.{block}.1", f"10.231.{block}.2")
        assert network.name == f"kt-{os.getpid()}-{block}"
        assert len(network.host_link) <= 15
        assert network.wrap(["true"]) == ["ip", "netns", "exec", network.name, "true"]
        inside = subprocess.run(network.wrap(["ip", "-o", "-4", "addr"]), capture_output=True, text=True,
                                check=True, timeout=10).stdout
        assert sorted(re.findall(r"inet (\S+)", inside)) == sorted(["127.0.0.1/8", f"{network.pod_ip}/30"])
        assert f"inet {network.host_ip}/30" in _ip("-o", "-4", "addr", "show", "dev", network.host_link)
        assert sleeper.poll() is None
        raise RuntimeError("boom")


def test_pod_network_is_wired_like_a_pod_and_removed_even_after_an_error(tmp_path: Path) -> None:
    made: list[tuple[PodNetwork, subprocess.Popen[bytes]]] = []
    with pytest.raises(RuntimeError, match="boom"):
        _wired_then_fail(made, tmp_path / "sleep.log")
    [(network, sleeper)] = made
    assert sleeper.returncode is not None
    assert _gone(network)


def test_two_networks_at_once_get_different_addresses() -> None:
    with pod_network() as first, pod_network() as second:
        assert first.host_ip != second.host_ip
        assert first.name != second.name
    assert _gone(first)
    assert _gone(second)


def test_a_namespace_left_by_a_run_that_died_is_removed_by_the_next() -> None:
    dead = subprocess.Popen(["true"])  # its pid names a run that is gone
    dead.wait(timeout=10)
    stale = PodNetwork(name=f"kt-{dead.pid}-7", host_ip="10.231.7.1", pod_ip="10.231.7.2", host_link=f"kt{dead.pid}h7")
    _ip("netns", "add", stale.name)
    try:
        _ip("link", "add", stale.host_link, "type", "veth", "peer", "name", f"kt{dead.pid}p7")
        _ip("link", "set", f"kt{dead.pid}p7", "netns", stale.name)
        with pod_network() as network:
            assert network.name != stale.name
            assert _gone(stale)
    finally:
        subprocess.run(["ip", "netns", "delete", stale.name], capture_output=True, timeout=10)
        subprocess.run(["ip", "link", "delete", stale.host_link], capture_output=True, timeout=10)


@dataclass(frozen=True)
class Stage:
    network: PodNetwork
    plane: ControlPlane
    record: Path  # one JSON line per request the tiny server answered
    tiny_ca: Path


def _requests(stage: Stage) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stage.record.read_text().splitlines()]


def _get_raw_when_routed(plane: ControlPlane, path: str, timeout: float = 30.0) -> str:
    """`kubectl get --raw path`, retried while it says NotFound: kube-apiserver may report the
    APIService Available a moment before its handler for the group is registered (a 404 never
    reaches the server behind it)."""
    deadline = time.monotonic() + timeout
    while True:
        result = kubectl(plane, "get", "--raw", path, check=False)
        if result.returncode == 0 or "NotFound" not in result.stderr or time.monotonic() > deadline:
            assert result.returncode == 0, result.stderr
            return result.stdout
        time.sleep(0.2)


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    """A PodNetwork, a control plane bound to its host end, the tiny server inside, the APIService."""
    root = tmp_path_factory.mktemp("netns")
    with ExitStack() as stack:
        network = stack.enter_context(pod_network())
        plane = stack.enter_context(local_control_plane(root / "cp", bind_host=network.host_ip))
        ca = pki.certificate_authority(root / "tiny", "ca", "tiny-ca")
        serving = pki.issue(ca, root / "tiny", "tiny", "tiny", names=[f"tiny.{NAMESPACE}.svc", network.pod_ip])
        script, record = root / "tiny.py", root / "requests.jsonl"
        script.write_text(TINY_SERVER)
        record.touch()
        command = [sys.executable, str(script), str(serving.cert), str(serving.key), str(plane.front_proxy_ca),
                   network.pod_ip, str(TINY_PORT), str(record), json.dumps(BODY)]
        server = stack.enter_context(background(network.wrap(command), root / "tiny.log"))
        wait_ready(server, lambda: httpx.get(f"https://{network.pod_ip}:{TINY_PORT}/healthz", verify=_trust(ca.cert),
                                             timeout=2.0).status_code == 200,
                   what="tiny server", log_path=root / "tiny.log", timeout=30)
        bundle = base64.b64encode(ca.cert.read_bytes()).decode()
        kubectl(plane, "create", "namespace", NAMESPACE)
        kubectl(plane, "apply", "-f", "-", input=json.dumps({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "tiny", "namespace": NAMESPACE},
             "spec": {"ports": [{"name": "https", "port": 443, "targetPort": TINY_PORT}]}},
            {"apiVersion": "v1", "kind": "Endpoints", "metadata": {"name": "tiny", "namespace": NAMESPACE},
             "subsets": [{"addresses": [{"ip": network.pod_ip}], "ports": [{"name": "https", "port": TINY_PORT}]}]},
            {"apiVersion": "apiregistration.k8s.io/v1", "kind": "APIService", "metadata": {"name": "v1.test.example.io"},
             "spec": {"group": "test.example.io", "version": "v1", "caBundle": bundle,
                      "service": {"name": "tiny", "namespace": NAMESPACE, "port": 443},
                      "groupPriorityMinimum": 1000, "versionPriority": 15}},
        ]}))
        kubectl(plane, "wait", "--for=condition=Available", "--timeout=60s", "apiservice/v1.test.example.io")
        _get_raw_when_routed(plane, "/apis/test.example.io/v1")
        yield Stage(network, plane, record, ca.cert)
    assert _gone(network)
    assert server.returncode is not None


def test_inside_reaches_the_api_server_and_prometheus_on_the_host_address(stage: Stage, tmp_path: Path) -> None:
    plane, network = stage.plane, stage.network
    assert plane.url.startswith(f"https://{network.host_ip}:")
    readyz = subprocess.run(network.wrap([
        "curl", "-sS", "--max-time", "10", "--cacert", str(plane.ca_file),
        "-H", f"Authorization: Bearer {plane.token}", f"{plane.url}/readyz",
    ]), capture_output=True, text=True, timeout=30)
    assert (readyz.returncode, readyz.stdout) == (0, "ok"), readyz.stderr
    with localprom.running_prometheus(tmp_path / "data", host=network.host_ip) as prometheus:
        assert prometheus.startswith(f"http://{network.host_ip}:")
        ready = subprocess.run(network.wrap(["curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w",
                                             "%{http_code}", f"{prometheus}/-/ready"]),
                               capture_output=True, text=True, timeout=30)
        assert (ready.returncode, ready.stdout) == (0, "200"), ready.stderr


def test_the_aggregated_api_reaches_the_server_inside_with_the_front_proxy_identity(stage: Stage) -> None:
    plane = stage.plane
    available = kubectl(plane, "get", "apiservice", "v1.test.example.io", "-o",
                        "jsonpath={.status.conditions[?(@.type=='Available')].status}").stdout
    assert available == "True"
    before = len(_requests(stage))
    assert json.loads(kubectl(plane, "get", "--raw", "/apis/test.example.io/v1").stdout) == BODY
    ours = [seen for seen in _requests(stage)[before:] if seen["user"] == ["admin"]]
    assert len(ours) == 1
    assert ours[0]["path"] == "/apis/test.example.io/v1"
    assert ours[0]["cn"] == FRONT_PROXY_CLIENT
    assert set(ours[0]["groups"]) == {"system:masters", "system:authenticated"}
    # every request that came through kube-apiserver (its own availability checks included) carried
    # the front-proxy certificate; only the fixture's readiness probe (from the host, no certificate) did not
    through = [seen for seen in _requests(stage) if seen["path"] != "/healthz"]
    assert {seen["cn"] for seen in through} == {FRONT_PROXY_CLIENT}
    assert {tuple(seen["user"]) for seen in through} <= {("admin",), (AGGREGATOR,)}


def test_client_sent_remote_headers_never_reach_the_server(stage: Stage) -> None:
    plane = stage.plane
    before = len(_requests(stage))
    response = httpx.get(f"{plane.url}/apis/test.example.io/v1", verify=_trust(plane.ca_file), timeout=30,
                         headers={"Authorization": f"Bearer {plane.token}", "X-Remote-User": "mallory",
                                  "X-Remote-Group": "system:masters"})
    assert response.status_code == 200, response.text
    # the availability controller polls the same path as system:kube-aggregator: leave its requests out
    users = [seen["user"] for seen in _requests(stage)[before:] if seen["user"] != [AGGREGATOR]]
    assert users == [["admin"]]
    assert not [seen for seen in _requests(stage) if "mallory" in seen["user"]]
