"""What the kube-apiserver's two proxies carry to the operator, observed, and what the operator makes of it.

The service proxy (`/api/v1/namespaces/kubetally-system/services/https:kubetally:443/proxy/<path>`, the
seed-001 URL shape; `https:` because the operator serves HTTPS) is probed with an echo server standing
where the operator stands (same pod IP, its own Service): kube-apiserver 1.20 forwards neither the
caller's `Authorization` header (its authentication filter removes it once it has authenticated the
caller) nor a client certificate, and passes client-sent `X-Remote-User`/`X-Remote-Group` through
unchanged. So through the service proxy the operator sees no identity: every data route answers 401,
even to a cluster admin, and forged `X-Remote-*` headers change nothing; RBAC on `services/proxy`
decides who reaches it at all (a tenant without it: 403 from the apiserver). /healthz answers there.

With `--service-proxy-port` the operator also answers the service proxy on a port of its own, the
admin route of DESIGN §9: nothing there is checked by the operator (no identity arrives), so RBAC on
`services/proxy` decides who reaches it and what they see is the cluster-wide view, equal to the cost
admin's answer on the checked port.

The aggregated path drops client-sent `X-Remote-*` and sends the authenticated user instead: a tenant
sending `X-Remote-User: cost-admin` still gets only its own namespace.
"""

from __future__ import annotations

import json
import ssl
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from kubetally.processes import background, wait_ready
from tests.access import kube
from tests.access.conftest import ADMIN_PORT, Tier
from tests.access.summary import SUMMARY
from tests.access.world import OPERATOR_NAMESPACE

pytestmark = pytest.mark.access
ECHO_PORT = 9443
PROXY = f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/services"
FORGED = {"X-Remote-User": "forged-user", "X-Remote-Group": "system:masters"}


@pytest.fixture(scope="module")
def echo(tier: Tier) -> Iterator[str]:
    """`tests/access/echo.py` in the network namespace at the pod IP, behind Service `echo`."""
    network, serving = tier.network, tier.workdir / "certs"
    command = network.wrap([sys.executable, str(Path(__file__).with_name("echo.py")), network.pod_ip, str(ECHO_PORT),
                            str(serving / "serving.crt"), str(serving / "serving.key"), str(tier.plane.front_proxy_ca)])
    url = f"https://{network.pod_ip}:{ECHO_PORT}"
    verify = ssl.create_default_context(cafile=str(tier.operator.ca))
    with background(command, tier.workdir / "echo.log") as process:
        wait_ready(process, lambda: httpx.get(f"{url}/", verify=verify, timeout=2).status_code == 200,
                   what="echo server", log_path=tier.workdir / "echo.log", timeout=30)
        with kube.admin(tier.plane) as client:
            pod = client.get(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/{kube.POD}").json()
        kube.service_to(tier.plane, "echo", network.pod_ip, ECHO_PORT, pod["metadata"]["uid"])
        yield "echo"


def _as(tier: Tier, user: str | None) -> httpx.Client:
    token = tier.plane.token if user is None else tier.tokens[user]
    return httpx.Client(base_url=tier.plane.url, timeout=30.0, headers={"Authorization": f"Bearer {token}"},
                        verify=ssl.create_default_context(cafile=str(tier.plane.ca_file)))


def _refused(answer: httpx.Response, code: int, words: str) -> None:
    assert answer.status_code == code, answer.text[:300]
    body = answer.json()
    assert (body["kind"], body["code"]) == ("Status", code), body
    assert words in body["message"], body
    assert "data" not in body


def _header(seen: dict[str, Any], name: str) -> list[str]:
    return [value for key, value in seen["headers"] if key.lower() == name.lower()]


def test_the_service_proxy_forwards_no_identity(tier: Tier, echo: str) -> None:
    with _as(tier, None) as admin:
        answer = admin.get(f"{PROXY}/https:{echo}:443/proxy/probe", params={"x": "1"}, headers=FORGED)
    assert answer.status_code == 200, answer.text[:300]
    seen = answer.json()
    finding = {"authorization": _header(seen, "Authorization"), "client certificate": seen["peer"],
               "X-Remote-User": _header(seen, "X-Remote-User"), "X-Remote-Group": _header(seen, "X-Remote-Group"),
               "X-Forwarded-For": _header(seen, "X-Forwarded-For"), "path": seen["path"]}
    SUMMARY.append(f"access: the service proxy delivered to the backend: {json.dumps(finding)}")
    print(SUMMARY[-1])
    assert finding["authorization"] == [], "the apiserver forwarded the caller's Authorization header"
    assert finding["client certificate"] is None, "the service proxy presented a client certificate"
    assert (finding["X-Remote-User"], finding["X-Remote-Group"]) == (["forged-user"], ["system:masters"])
    assert seen["path"] == "/probe?x=1"
    # The probe itself sees a client certificate when one is sent: the front proxy's, sent directly.
    real = tier.plane.front_proxy_client
    context = ssl.create_default_context(cafile=str(tier.operator.ca))
    context.load_cert_chain(str(real.cert), str(real.key))
    with httpx.Client(verify=context, timeout=30.0) as direct:
        probe = direct.get(f"https://{tier.network.pod_ip}:{ECHO_PORT}/direct").json()
    assert probe["peer"] == "front-proxy-client"


@pytest.mark.parametrize("shape", ["https:kubetally:443", "https:kubetally:https"])
def test_through_the_service_proxy_the_operator_answers_401_to_everyone(tier: Tier, shape: str) -> None:
    path = f"{PROXY}/{shape}/proxy/v2/cost"
    with _as(tier, None) as admin, _as(tier, "cost-admin") as cost_admin, _as(tier, "tenant-a") as tenant:
        # the cluster admin reaches the operator, which sees no identity, forged headers or not
        for headers in ({}, FORGED):
            _refused(admin.get(path, params={"window": "1h"}, headers=headers), 401, "no bearer token")
        # without a services/proxy grant the apiserver refuses before the operator is reached
        for client in (cost_admin, tenant):
            _refused(client.get(path, params={"window": "1h"}), 403, 'cannot get resource "services/proxy"')
        health = admin.get(f"{PROXY}/{shape}/proxy/healthz")
    assert (health.status_code, health.text.strip()) == (200, "ok")


def test_the_aggregated_path_replaces_client_sent_remote_headers(tier: Tier) -> None:
    (mine,) = tier.world.grants["tenant-a"]
    forged = {"X-Remote-User": "cost-admin", "X-Remote-Group": "system:masters"}
    api = "/apis/query.kubetally.io/v1alpha1"
    with _as(tier, "tenant-a") as tenant:
        own = tenant.get(f"{api}/namespaces/{mine}/costs/cost", params={"window": "6h", "aggregate": "namespace"},
                         headers=forged)
        wide = tenant.get(f"{api}/costs/cost", params={"window": "6h"}, headers=forged)
    assert own.status_code == 200, own.text[:300]
    (step,) = own.json()["data"]
    assert set(step) <= {mine, "__idle__"}, sorted(step)
    assert mine in step
    assert wide.status_code == 403, wide.text[:300]


def test_the_service_proxy_admin_route_shows_the_cluster_view_to_services_proxy_holders(tier: Tier) -> None:
    """An absolute window inside the data (the six whole hours before the world's now), so both answers
    cover the very same hours whenever they are asked."""
    with kube.admin(tier.plane) as client:
        pod = client.get(f"/api/v1/namespaces/{OPERATOR_NAMESPACE}/pods/{kube.POD}").json()
    kube.service_to(tier.plane, "kubetally-admin", tier.network.pod_ip, ADMIN_PORT, pod["metadata"]["uid"])
    end = tier.world.now - tier.world.now % 3600
    stamp = "%Y-%m-%dT%H:%M:%SZ"
    window = ",".join(time.strftime(stamp, time.gmtime(t)) for t in (end - 6 * 3600, end))
    query = {"window": window, "aggregate": "namespace", "idle": "true"}
    path = f"{PROXY}/https:kubetally-admin:443/proxy/v2/cost"
    with _as(tier, None) as admin, _as(tier, "tenant-a") as tenant:
        routed = admin.get(path, params=query, headers=FORGED)
        refused = tenant.get(path, params=query)
    with httpx.Client(verify=tier.operator.verify, timeout=60.0,
                      headers={"Authorization": f"Bearer {tier.tokens['cost-admin']}"}) as direct:
        checked = direct.get(f"{tier.operator.url}/v2/cost", params=query)
    assert routed.status_code == 200, routed.text[:300]
    assert checked.status_code == 200, checked.text[:300]
    _refused(refused, 403, 'cannot get resource "services/proxy"')
    got = {name: item["cost"] for step in routed.json()["data"] for name, item in step.items()}
    want = {name: item["cost"] for step in checked.json()["data"] for name, item in step.items()}
    assert set(got) == set(want)
    assert "__idle__" in got
    assert got == pytest.approx(want, rel=1e-12)
