"""The gates in front of the data, on the operator's own port: who gets 401, 403, 503 and when.

- no token (or a token the apiserver does not know) → 401 Status on every route but /healthz and /readyz;
- forged `X-Remote-User`/`X-Remote-Group` on the direct port are ignored: alone → 401; with a tenant's
  token → that tenant's answer (the oracle's numbers); with a client certificate from another CA → refused.
  The positive control: the apiserver's real front-proxy client certificate with `X-Remote-User: tenant-a`
  → tenant-a's answer (the headers count only with that certificate);
- /metrics: the Prometheus ServiceAccount 200, tenants, nobody and the cost admin 403;
- a revoked RoleBinding stops access within the cache TTL (`--auth-cache-ttl 3`; measured);
- kube-apiserver stopped (SIGSTOP) → 503 Status for a new token and for a known one after the TTL, never
  data, while /healthz and /readyz still answer; answers resume after SIGCONT;
- /healthz and /readyz answer `ok` to anyone, and nothing else.
Exact numbers come from the oracle (`tests.access.fence.namespace_rows`), never from the server.
"""

from __future__ import annotations

import json
import math
import os
import signal
import ssl
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.access import conftest, kube
from tests.access.conftest import Tier
from tests.access.fence import namespace_rows
from tests.access.summary import SUMMARY
from tests.campaign.oracle import Oracle
from tests.campaign.windows import to_rfc3339

pytestmark = pytest.mark.access
API = "/apis/query.kubetally.io/v1alpha1"
ALAUDA = "/platform/cost.alauda.io/v1beta1"
DEADLINE = 30.0


def _window(tier: Tier, hours: int = 6) -> tuple[int, int]:
    hour = tier.world.now - tier.world.now % 3600
    return hour - hours * 3600, hour


def _cost_params(tier: Tier) -> dict[str, str]:
    start, end = _window(tier)
    return {"window": f"{to_rfc3339(start)},{to_rfc3339(end)}", "aggregate": "namespace"}


def _direct(tier: Tier, cert: tuple[Path, Path] | None = None) -> httpx.Client:
    context = ssl.create_default_context(cafile=str(tier.operator.ca))
    if cert is not None:
        context.load_cert_chain(str(cert[0]), str(cert[1]))
    return httpx.Client(base_url=tier.operator.url, verify=context, timeout=DEADLINE)


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _status(response: httpx.Response, code: int) -> dict[str, Any]:
    """The body of a `code` Status without data (AssertionError otherwise)."""
    assert response.status_code == code, f"{response.request.url}: {response.status_code} {response.text[:300]}"
    body: dict[str, Any] = response.json()
    assert (body["kind"], body["code"]) == ("Status", code), body
    assert not {"data", "items"} & body.keys(), body
    return body


def _rows(body: dict[str, Any]) -> dict[str, tuple[float, float]]:
    (step,) = body["data"]
    return {name: (item["cost"], item["costRatio"]) for name, item in step.items()}


def _expected(oracle: Oracle, tier: Tier, scope: frozenset[str] | None) -> dict[str, tuple[float, float]]:
    rows = namespace_rows(oracle, *_window(tier), scope)
    return {name: (row["cost"], row["costRatio"]) for name, row in rows.items()}


def _same(got: dict[str, tuple[float, float]], want: dict[str, tuple[float, float]]) -> None:
    """The same rows, each cost and costRatio equal to rel 1e-9."""
    assert set(got) == set(want), (sorted(got), sorted(want))
    for name, pair in got.items():
        assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(pair, want[name], strict=True)), \
            (name, pair, want[name])


DATA_PATHS = ("/v2/cost?window=1h", f"{ALAUDA}/costs/usage?start=2026-01-01&end=2026-01-02",
              f"{ALAUDA}/projects/retail/costs/usage?start=2026-01-01&end=2026-01-02", f"{API}/costs/cost?window=1h",
              f"{API}/namespaces/shop/costs/cost?window=1h",
              f"{API}/namespaces/shop/costs/usage?start=2026-01-01&end=2026-01-02",
              f"{API}/namespaces/shop/costreports/any/result", "/apis/kubetally.io/v1alpha1/namespaces/shop/costreports/any/result",
              "/metrics")


def test_no_token_or_an_unknown_token_is_401_on_every_route(tier: Tier) -> None:
    with _direct(tier) as client:
        for path in DATA_PATHS:
            body = _status(client.get(path), 401)
            assert "Bearer" in body["message"], body
            _status(client.get(path, headers=_bearer("not-a-token-anyone-issued")), 401)
            _status(client.get(path, headers={"Authorization": "Basic YWRtaW46YWRtaW4="}), 401)


def test_forged_remote_headers_on_the_direct_port_are_ignored(tier: Tier, oracle: Oracle) -> None:
    forged = {"X-Remote-User": "cost-admin", "X-Remote-Group": "system:masters"}
    mine = tier.world.grants["tenant-a"]
    with _direct(tier) as client:
        for path in DATA_PATHS:
            _status(client.get(path, headers=forged), 401)
        honest = client.get("/v2/cost", params=_cost_params(tier), headers=_bearer(tier.tokens["tenant-a"]))
        lying = client.get("/v2/cost", params=_cost_params(tier), headers={**forged, **_bearer(tier.tokens["tenant-a"])})
    assert honest.status_code == lying.status_code == 200, lying.text[:300]
    _same(_rows(lying.json()), _expected(oracle, tier, mine))
    _same(_rows(lying.json()), _rows(honest.json()))
    # A client certificate named like the front proxy's, from another CA: the TLS handshake refuses it.
    with _direct(tier, (tier.rogue.cert, tier.rogue.key)) as rogue, pytest.raises(httpx.HTTPError):
        rogue.get("/v2/cost", params=_cost_params(tier), headers=forged)
    # The positive control: the apiserver's own front-proxy certificate makes the headers count.
    real = tier.plane.front_proxy_client
    with _direct(tier, (real.cert, real.key)) as proxy:
        answer = proxy.get("/v2/cost", params=_cost_params(tier), headers={"X-Remote-User": "tenant-a"})
        admin = proxy.get("/v2/cost", params=_cost_params(tier), headers=forged)
    assert answer.status_code == 200, answer.text[:300]
    _same(_rows(answer.json()), _expected(oracle, tier, mine))
    assert admin.status_code == 200, admin.text[:300]
    _same(_rows(admin.json()), _expected(oracle, tier, None))


def test_namespaced_paths_on_the_direct_port_need_a_grant_there(tier: Tier, oracle: Oracle) -> None:
    (mine,) = tier.world.grants["tenant-a"]
    other = next(ns for ns in tier.world.namespaces if ns != mine)
    params = _cost_params(tier)
    with _direct(tier) as client:
        own = client.get(f"{API}/namespaces/{mine}/costs/cost", params=params, headers=_bearer(tier.tokens["tenant-a"]))
        theirs = client.get(f"{API}/namespaces/{other}/costs/cost", params=params,
                            headers=_bearer(tier.tokens["tenant-a"]))
    assert own.status_code == 200, own.text[:300]
    _same(_rows(own.json()), _expected(oracle, tier, frozenset({mine})))
    assert other in _status(theirs, 403)["message"]


def test_metrics_only_for_the_metrics_reader(tier: Tier) -> None:
    with _direct(tier) as client:
        scraped = client.get("/metrics", headers=_bearer(tier.tokens["prometheus"]))
        assert scraped.status_code == 200, scraped.text[:300]
        assert f'kubetally_ledger_hours{{cluster="{tier.world.spec.name}"}}' in scraped.text
        for user in ("tenant-a", "tenant-p", "nobody", "cost-admin"):
            _status(client.get("/metrics", headers=_bearer(tier.tokens[user])), 403)


def test_health_routes_are_open_and_say_only_ok(tier: Tier) -> None:
    with _direct(tier) as client:
        for path in ("/healthz", "/readyz"):
            for headers in ({}, _bearer("not-a-token"), _bearer(tier.tokens["nobody"])):
                answer = client.get(path, headers=headers)
                assert (answer.status_code, answer.text.strip()) == (200, "ok"), (path, answer.text)


def test_a_revoked_rolebinding_stops_access_within_the_ttl(tier: Tier) -> None:
    """tenant-r reads its namespace; its RoleBinding is deleted right after a request refreshed the cache.
    No request sent later than TTL + 0.5 s after the deletion returned (0.5 s: the apiserver's RBAC
    informer) may still be answered with data, and once refused it stays refused."""
    (namespace,) = tier.world.grants["tenant-r"]
    params, token = _cost_params(tier), _bearer(tier.tokens["tenant-r"])
    with _direct(tier) as client:
        assert client.get("/v2/cost", params=params, headers=token).status_code == 200
        kube.kubectl(tier.plane, "delete", "rolebinding", "-n", namespace, "cost-viewer-tenant-r")
        deleted = time.monotonic()
        last_allowed = 0.0
        while True:
            sent = time.monotonic() - deleted
            answer = client.get("/v2/cost", params=params, headers=token)
            if answer.status_code == 403:
                break
            assert answer.status_code == 200, answer.text[:300]
            assert set(_rows(answer.json())) <= {namespace, "__idle__"}
            last_allowed = sent
            assert sent < conftest.TTL + 5, "still allowed long after the TTL"
            time.sleep(0.05)
        refused = time.monotonic() - deleted
        _status(answer, 403)
        for _ in range(3):
            _status(client.get("/v2/cost", params=params, headers=token), 403)
    SUMMARY.append(f"access: revoked RoleBinding: the last request answered with data was sent {last_allowed:.2f} s "
                   f"after the deletion, the first refusal came {refused:.2f} s after it "
                   f"(--auth-cache-ttl {conftest.TTL:g})")
    print(SUMMARY[-1])
    assert last_allowed <= conftest.TTL + 0.5


def _apiserver_pid(tier: Tier) -> int:
    """The kube-apiserver of this tier's control plane: its command line names our --secure-port."""
    port = tier.plane.url.rsplit(":", 1)[1].encode()
    for entry in Path("/proc").iterdir():
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"kube-apiserver") and b"--secure-port" in argv and \
                argv[argv.index(b"--secure-port") + 1] == port:
            return int(entry.name)
    raise AssertionError(f"no kube-apiserver process with --secure-port {port.decode()}")


@pytest.fixture
def stopped_apiserver(tier: Tier) -> Iterator[int]:
    """SIGSTOP the control plane's kube-apiserver; SIGCONT it whatever happens."""
    pid = _apiserver_pid(tier)
    os.kill(pid, signal.SIGSTOP)
    try:
        yield pid
    finally:
        os.kill(pid, signal.SIGCONT)


def test_the_apiserver_unreachable_is_503_never_data(tier: Tier, request: pytest.FixtureRequest) -> None:
    params, known = _cost_params(tier), _bearer(tier.tokens["tenant-p"])
    timings = []
    with _direct(tier) as client:
        assert client.get("/v2/cost", params=params, headers=known).status_code == 200
        request.getfixturevalue("stopped_apiserver")
        stopped = time.monotonic()
        for headers in (_bearer("a-token-never-seen-before"), known):
            if headers is known:  # the cached answers have expired
                time.sleep(max(0.0, conftest.TTL + 0.5 - (time.monotonic() - stopped)))
            sent = time.monotonic()
            body = _status(client.get("/v2/cost", params=params, headers=headers), 503)
            timings.append(time.monotonic() - sent)
            assert "credentials" in body["message"], body
        for path in ("/healthz", "/readyz"):
            assert client.get(path).text.strip() == "ok"
        os.kill(_apiserver_pid(tier), signal.SIGCONT)
        resumed = time.monotonic()
        while (answer := client.get("/v2/cost", params=params, headers=known)).status_code != 200:
            _status(answer, 503)
            assert time.monotonic() - resumed < 60, "answers did not resume within 60 s of SIGCONT"
            time.sleep(0.2)
        back = time.monotonic() - resumed
    json.loads(answer.text)
    SUMMARY.append(f"access: apiserver stopped: 503 after {timings[0]:.1f} s (new token) and "
                            f"{timings[1]:.1f} s (known token after the TTL); answers again {back:.1f} s after SIGCONT")
    print(SUMMARY[-1])
    kube.wait_routed(tier.plane, tier.world.namespaces[0])
