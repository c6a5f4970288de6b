"""Who sees what, in process: the API over the documented topology, callers checked by a fake
Kubernetes API (an httpx.MockTransport answering TokenReviews and SubjectAccessReviews from a table).

Expected numbers are the hand-computed table of tests/unit/engine/topology.py (window 00:00–02:00 on
2025-06-01, Effective, idle=false): shop 0.65, web 0.60, data 0.22, batch 0.0175; shop and web are
project alpha, data and batch project beta. A viewer of web and shop sees {shop 0.65, web 0.60} with
costRatio 0.65/1.25 = 0.52 and 0.60/1.25 = 0.48 (within the answer); the admin sees every namespace
with costRatio = cost / 3.6 (the step's node cost, tests/unit/api/test_app.py).

The real TokenReview/SubjectAccessReview path (real kube-apiserver, RBAC, the aggregated API) is
proven in tests/access.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiohttp.test_utils import TestClient, TestServer

from kubetally.access.reviews import Reviews
from kubetally.api.app import build_app
from kubetally.api.guard import Gate
from kubetally.api.metrics import Metrics
from kubetally.ledger.store import DuckDBLedger
from tests.unit.api.test_app import WINDOW, by_name, ready, topology_service
from tests.unit.engine import topology
from tests.unit.ledger.test_store import hour_batch

TOKENS = {"t-admin": "admin", "t-alpha": "alpha-viewer", "t-web": "web-viewer", "t-none": "nobody",
          "t-prom": "system:serviceaccount:monitoring:prometheus"}
#: user → namespaces where `get costs.query.kubetally.io` is granted ("" = cluster-wide).
GRANTS = {"admin": {""}, "alpha-viewer": {"shop", "web"}, "web-viewer": {"web"}}
ALAUDA = "/platform/cost.alauda.io/v1beta1"
QUERY = "/apis/query.kubetally.io/v1alpha1"
V2 = {"window": WINDOW, "aggregate": "namespace", "method": "Effective", "idle": "false"}


class FakeKubernetes:
    """TokenReview and SubjectAccessReview answers from TOKENS and GRANTS; `down` = unreachable."""

    def __init__(self) -> None:
        self.down = False
        self.calls: list[dict[str, Any]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if self.down:
            raise httpx.ConnectError("connection refused", request=request)
        body = json.loads(request.content)
        self.calls.append(body)
        spec = body["spec"]
        if request.url.path.endswith("/tokenreviews"):
            user = TOKENS.get(spec["token"])
            status: dict[str, Any] = {"authenticated": user is not None}
            if user is not None:
                status["user"] = {"username": user, "uid": f"uid-{user}", "groups": ["system:authenticated"]}
            return httpx.Response(201, json={**body, "status": status})
        user = spec["user"]
        if "nonResourceAttributes" in spec:
            allowed = user in ("admin", TOKENS["t-prom"]) and spec["nonResourceAttributes"]["path"] == "/metrics"
        else:
            attributes = spec["resourceAttributes"]
            grants = GRANTS.get(user, set())
            allowed = attributes["group"] == "query.kubetally.io" and attributes["verb"] == "get" and (
                "" in grants or (attributes.get("namespace", "") != "" and attributes["namespace"] in grants))
        return httpx.Response(201, json={**body, "status": {"allowed": allowed}})


@pytest.fixture
async def kube() -> FakeKubernetes:
    return FakeKubernetes()


@asynccontextmanager
async def gated(tmp_path: Path, kube: FakeKubernetes, **app: Any) -> AsyncIterator[TestClient[Any, Any]]:
    """A client of the app over the topology's service, callers checked by `kube`; `app`: more of
    `build_app`'s arguments."""
    service = topology_service(tmp_path)
    ledger = service.ledger
    async with httpx.AsyncClient(base_url="https://kubernetes.invalid", transport=httpx.MockTransport(kube)) as api:
        gate = Gate(Reviews(api, ttl_seconds=10.0), None, lambda: ledger.namespaces("c1"))
        async with TestClient(TestServer(build_app(service, Metrics(), ready, gate=gate, **app))) as test_client:
            yield test_client
    ledger.close()


@pytest.fixture
async def client(tmp_path: Path, kube: FakeKubernetes) -> AsyncIterator[TestClient[Any, Any]]:
    async with gated(tmp_path, kube) as test_client:
        yield test_client


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def test_the_ledger_knows_the_namespaces_and_their_projects(tmp_path: Path) -> None:
    ledger = DuckDBLedger(tmp_path / "l.duckdb")
    for hour in (0, 1):  # the batch job runs in the second hour only
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0)
    assert ledger.namespaces("c1") == {"shop": {"alpha"}, "web": {"alpha"}, "data": {"beta"}, "batch": {"beta"}}
    assert ledger.namespaces("other") == {}
    ledger.close()


async def test_no_token_is_401_and_forged_front_proxy_headers_are_ignored(client: TestClient[Any, Any]) -> None:
    for headers in ({}, {"X-Remote-User": "admin", "X-Remote-Group": "system:masters"}, bearer("t-unknown"),
                    {"Authorization": "Basic YWRtaW46YWRtaW4="}):
        response = await client.get("/v2/cost", params=V2, headers=headers)
        assert response.status == 401, headers
        body = await response.json()
        assert (body["kind"], body["code"], body["reason"]) == ("Status", 401, "Unauthorized")
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


async def test_health_and_discovery_are_open_and_say_nothing(client: TestClient[Any, Any]) -> None:
    assert await (await client.get("/healthz")).text() == "ok"
    assert (await client.get("/readyz")).status == 200
    resources = await (await client.get(QUERY)).json()
    assert {r["name"]: r["verbs"] for r in resources["resources"]} == {
        "costs": ["get", "list"], "costreports/result": ["get"]}
    assert (await (await client.get("/apis/query.kubetally.io")).json())["preferredVersion"]["version"] == "v1alpha1"


async def test_an_admin_sees_everything_with_cluster_ratios(client: TestClient[Any, Any]) -> None:
    body = await (await client.get("/v2/cost", params=V2, headers=bearer("t-admin"))).json()
    assert by_name(body) == pytest.approx({"shop": 0.65, "web": 0.60, "data": 0.22, "batch": 0.0175})
    assert body["data"][0]["shop"]["costRatio"] == pytest.approx(0.65 / 3.6)


async def test_a_partial_viewer_sees_only_their_namespaces_with_ratios_within(client: TestClient[Any, Any]) -> None:
    for path in ("/v2/cost", f"{QUERY}/costs/cost"):
        body = await (await client.get(path, params=V2, headers=bearer("t-alpha"))).json()
        assert by_name(body) == pytest.approx({"shop": 0.65, "web": 0.60})
        ratios = {name: item["costRatio"] for name, item in body["data"][0].items()}
        assert ratios == pytest.approx({"shop": 0.52, "web": 0.48})
    one = await (await client.get("/v2/cost", params={**V2, "aggregate": "cluster"}, headers=bearer("t-web"))).json()
    assert [item["cost"] for item in one["data"][0].values()] == pytest.approx([0.60])


async def test_the_namespaced_path_fences_and_needs_a_grant_there(client: TestClient[Any, Any]) -> None:
    body = await (await client.get(f"{QUERY}/namespaces/web/costs/cost", params=V2, headers=bearer("t-alpha"))).json()
    assert by_name(body) == pytest.approx({"web": 0.60})
    admin = await (await client.get(f"{QUERY}/namespaces/data/costs/cost", params=V2,
                                    headers=bearer("t-admin"))).json()
    assert by_name(admin) == pytest.approx({"data": 0.22})
    assert admin["data"][0]["data"]["costRatio"] == pytest.approx(0.22 / 3.6)  # an admin's ratio stays the cluster's
    denied = await client.get(f"{QUERY}/namespaces/data/costs/cost", params=V2, headers=bearer("t-alpha"))
    assert denied.status == 403
    assert "kubetally-cost-viewer" in (await denied.json())["message"]


async def test_a_caller_who_may_see_nothing_gets_403_everywhere(client: TestClient[Any, Any]) -> None:
    usage = {"start": "2025-06-01", "end": "2025-06-01", "kind": "namespace_all"}
    for path, params in (("/v2/cost", V2), (f"{ALAUDA}/costs/usage", usage), (f"{QUERY}/costs/usage", usage),
                         (f"{ALAUDA}/projects/alpha/costs/usage", usage)):
        for token in ("t-none", "t-prom"):
            response = await client.get(path, params=params, headers=bearer(token))
            assert response.status == 403, (path, token)
            assert (await response.json())["reason"] == "Forbidden"


async def test_alauda_usage_is_fenced_and_a_project_maps_to_its_visible_namespaces(
    client: TestClient[Any, Any]
) -> None:
    usage = {"start": "2025-06-01", "end": "2025-06-01", "kind": "namespace_all"}

    async def items(path: str, token: str, **extra: str) -> dict[str, float]:
        body = await (await client.get(path, params={**usage, **extra}, headers=bearer(token))).json()
        return {item["namespace"]: item["cost"] for item in body["items"]}

    admin = await items(f"{ALAUDA}/costs/usage", "t-admin")
    assert set(admin) == {"shop", "web", "data", "batch"}
    assert await items(f"{ALAUDA}/costs/usage", "t-web") == pytest.approx({"web": admin["web"]})
    assert await items(f"{ALAUDA}/projects/alpha/costs/usage", "t-web") == pytest.approx({"web": admin["web"]})
    assert await items(f"{QUERY}/costs/usage", "t-web", project="alpha") == pytest.approx({"web": admin["web"]})
    assert await items(f"{QUERY}/namespaces/web/costs/usage", "t-alpha") == pytest.approx({"web": admin["web"]})
    beta = await client.get(f"{ALAUDA}/projects/beta/costs/usage", params=usage, headers=bearer("t-alpha"))
    assert beta.status == 403
    assert "of project beta" in (await beta.json())["message"]


async def test_metrics_need_the_non_resource_grant(client: TestClient[Any, Any]) -> None:
    assert (await client.get("/metrics", headers=bearer("t-prom"))).status == 200
    assert (await client.get("/metrics", headers=bearer("t-alpha"))).status == 403
    assert (await client.get("/metrics")).status == 401


async def test_reviews_are_cached_and_an_unreachable_api_fails_closed(
    client: TestClient[Any, Any], kube: FakeKubernetes
) -> None:
    assert (await client.get("/v2/cost", params=V2, headers=bearer("t-web"))).status == 200
    calls = len(kube.calls)
    assert (await client.get("/v2/cost", params=V2, headers=bearer("t-web"))).status == 200
    assert len(kube.calls) == calls  # token and permissions reused within the TTL
    kube.down = True
    response = await client.get("/v2/cost", params=V2, headers=bearer("t-admin"))  # not cached: must ask
    assert response.status == 503
    body = await response.json()
    assert body["reason"] == "ServiceUnavailable"
    assert "credentials" in body["message"]
    assert "data" not in body


async def test_a_caller_without_grant_learns_nothing_of_their_parameters(client: TestClient[Any, Any]) -> None:
    """Refused before parsing: a bad parameter is a 403 for `nobody` and a 400 for the admin."""
    bad = {"window": "next tuesday"}
    assert (await client.get("/v2/cost", params=bad, headers=bearer("t-none"))).status == 403
    assert (await client.get(f"{ALAUDA}/costs/usage", params=bad, headers=bearer("t-none"))).status == 403
    assert (await client.get("/v2/cost", params=bad, headers=bearer("t-admin"))).status == 400


async def test_the_collection_path_and_kubectls_timeout_parameter(client: TestClient[Any, Any]) -> None:
    """`kubectl get --raw --request-timeout=30s` adds `timeout=30s`: ignored on the aggregated paths,
    still an unknown parameter on /v2/cost."""
    timed = {**V2, "timeout": "30s"}
    for path in (f"{QUERY}/namespaces/web/costs", f"{QUERY}/namespaces/web/costs/cost"):
        body = await (await client.get(path, params=timed, headers=bearer("t-web"))).json()
        assert by_name(body) == pytest.approx({"web": 0.60})
    usage = {"start": "2025-06-01", "end": "2025-06-01", "kind": "namespace_all", "timeout": "30s"}
    assert (await client.get(f"{QUERY}/namespaces/web/costs/usage", params=usage, headers=bearer("t-web"))).status == 200
    refused = await client.get("/v2/cost", params=timed, headers=bearer("t-web"))
    assert refused.status == 400
    assert "unknown parameter" in (await refused.json())["message"]
