"""The client to the Kubernetes API (from a kubeconfig or in-cluster) and the front-proxy ConfigMap.

`api_client` is exercised against a real HTTPS server on 127.0.0.1 (aiohttp with a certificate made
by tests/unit/access/certs.py) that answers the ConfigMap only to the credentials the kubeconfig
holds: a token, or a client certificate. The ConfigMap's answers and failures use a MockTransport.
"""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import httpx
import pytest
import yaml
from aiohttp import web
from kubernetes.client import Configuration
from kubernetes.config import incluster_config

from kubetally.access.kubeapi import AUTHENTICATION_CONFIGMAP, ConfiguredToken, _explicit_proxy, api_client, front_proxy
from kubetally.access.reviews import AccessUnavailable
from kubetally.access.tls import peer_common_name, server_context
from tests.unit.access.certs import Pair, make_ca, make_leaf
from tests.unit.access.test_identity import configmap_data

SERVER_CA = make_ca("kubernetes-ca")
USER_CA = make_ca("kubernetes-client-ca")
CONFIGMAP = {"apiVersion": "v1", "kind": "ConfigMap",
             "metadata": {"name": "extension-apiserver-authentication", "namespace": "kube-system"},
             "data": configmap_data()}


@pytest.fixture(autouse=True)
def _no_proxies(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"):
        monkeypatch.delenv(name, raising=False)


@asynccontextmanager
async def apiserver(tmp_path: Path, *, sans: tuple[str, ...] = ("127.0.0.1",)) -> AsyncIterator[tuple[str, list[str]]]:
    """(URL, log): answers the ConfigMap to `Bearer kt-token` or a client certificate of USER_CA; the
    log holds the credential each request came with."""
    cert_file, key_file = make_leaf(SERVER_CA, "kube-apiserver", client=False, sans=sans).write(tmp_path, "apiserver")
    context = server_context(cert_file, key_file, hosts=[], client_ca_pem=USER_CA.cert_pem)
    log: list[str] = []

    async def configmap(request: web.Request) -> web.Response:
        name = peer_common_name(request.transport.get_extra_info("ssl_object") if request.transport else None)
        authorization = request.headers.get("Authorization", "")
        log.append(f"cert:{name}" if name else authorization)
        if name == "kubetally" or authorization.lower() in ("bearer kt-token", "bearer sa-token"):
            return web.json_response(CONFIGMAP)
        return web.json_response({"kind": "Status", "code": 401}, status=401)

    app = web.Application()
    app.router.add_get(AUTHENTICATION_CONFIGMAP, configmap)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"https://127.0.0.1:{port}", log
    finally:
        await runner.cleanup()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def kubeconfig(path: Path, server: str, user: dict[str, str], **cluster: Any) -> Path:
    path.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "ctx",
        "clusters": [{"name": "c", "cluster": {"server": server, **cluster}}],
        "users": [{"name": "u", "user": user}],
        "contexts": [{"name": "ctx", "context": {"cluster": "c", "user": "u"}}],
    }))
    return path


def client_user(pair: Pair) -> dict[str, str]:
    return {"client-certificate-data": b64(pair.cert_pem), "client-key-data": b64(pair.key_pem)}


async def test_a_kubeconfig_token_reads_the_front_proxy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with apiserver(tmp_path) as (url, log):
        config = kubeconfig(tmp_path / "config", url, {"token": "kt-token"},
                            **{"certificate-authority-data": b64(SERVER_CA.cert_pem)})
        monkeypatch.setenv("KUBECONFIG", f"{tmp_path / 'absent'}:{config}")  # a list, as kubectl reads it
        async with api_client(timeout_seconds=5) as client:
            proxy = await front_proxy(client)
    assert proxy is not None
    assert proxy.allowed_names == {"front-proxy-client"}
    assert log == ["Bearer kt-token"]


async def test_a_kubeconfig_client_certificate_is_presented(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with apiserver(tmp_path) as (url, log):
        config = kubeconfig(tmp_path / "config", url, client_user(make_leaf(USER_CA, "kubetally", client=True)),
                            **{"certificate-authority-data": b64(SERVER_CA.cert_pem)})
        monkeypatch.setenv("KUBECONFIG", str(config))
        async with api_client(timeout_seconds=5) as client:
            assert await front_proxy(client) is not None
    assert log == ["cert:kubetally"]


async def test_tls_server_name_and_insecure_skip_verify_are_honoured(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """The server's certificate names only kube.internal; it is reached at 127.0.0.1."""
    async with apiserver(tmp_path, sans=("kube.internal",)) as (url, log):
        ca: dict[str, Any] = {"certificate-authority-data": b64(SERVER_CA.cert_pem)}
        cases: list[tuple[str, dict[str, Any], bool]] = [
            ("plain", ca, False), ("named", {**ca, "tls-server-name": "kube.internal"}, True),
            ("insecure", {"insecure-skip-tls-verify": True}, True)]
        for name, cluster, works in cases:
            monkeypatch.setenv("KUBECONFIG", str(kubeconfig(tmp_path / name, url, {"token": "kt-token"}, **cluster)))
            async with api_client(timeout_seconds=5) as client:
                if works:
                    assert await front_proxy(client) is not None, name
                else:
                    with pytest.raises(AccessUnavailable, match=r"cannot reach the Kubernetes API \(ConnectError.*"
                                                                r"(?i:certificate)"):
                        await front_proxy(client)
    assert log == ["Bearer kt-token", "Bearer kt-token"]


async def test_in_cluster_uses_the_service_account(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    async with apiserver(tmp_path) as (url, log):
        (tmp_path / "token").write_text("sa-token")
        (tmp_path / "ca.crt").write_text(SERVER_CA.cert_pem)
        monkeypatch.setattr(incluster_config, "SERVICE_TOKEN_FILENAME", str(tmp_path / "token"))
        monkeypatch.setattr(incluster_config, "SERVICE_CERT_FILENAME", str(tmp_path / "ca.crt"))
        monkeypatch.setenv("KUBERNETES_SERVICE_HOST", "127.0.0.1")
        monkeypatch.setenv("KUBERNETES_SERVICE_PORT", url.rsplit(":", 1)[1])
        monkeypatch.setenv("KUBECONFIG", str(tmp_path / "no-such-kubeconfig"))
        async with api_client(timeout_seconds=5) as client:
            assert await front_proxy(client) is not None
    assert [entry.lower() for entry in log] == ["bearer sa-token"]


def test_no_kubeconfig_and_no_service_account_says_both(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KUBECONFIG", str(tmp_path / "nothing"))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    with pytest.raises(AccessUnavailable, match=r"no Kubernetes API to ask: kubeconfig .*nothing: .*; "
                                                r"in-cluster service account: Service host/port is not set"):
        api_client(timeout_seconds=5)


async def test_the_token_is_asked_for_on_every_request_so_rotation_counts() -> None:
    configuration = Configuration()
    configuration.api_key["BearerToken"] = "Bearer t0"
    turns = iter(range(1, 10))

    def rotate(config: Any) -> None:
        config.api_key["BearerToken"] = f"Bearer t{next(turns)}"

    configuration.refresh_api_key_hook = rotate  # type: ignore[assignment]
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["Authorization"])
        return httpx.Response(404)

    async with httpx.AsyncClient(base_url="https://kube.test", auth=ConfiguredToken(configuration),
                                 transport=httpx.MockTransport(handler)) as client:
        assert await front_proxy(client) is None
        assert await front_proxy(client) is None
    assert seen == ["Bearer t1", "Bearer t2"]


def test_only_a_kubeconfig_proxy_url_is_passed_explicitly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.corp:3128")
    host = "https://10.0.0.1:6443"
    assert _explicit_proxy(SimpleNamespace(host=host, proxy=None)) is None
    assert _explicit_proxy(SimpleNamespace(host=host, proxy="http://proxy.corp:3128")) is None  # from the environment
    assert _explicit_proxy(SimpleNamespace(host=host, proxy="socks5://jump:1080")) == "socks5://jump:1080"


def answering(response: httpx.Response) -> httpx.AsyncClient:
    def handler(request: httpx.Request) -> httpx.Response:
        assert (request.method, request.url.path) == ("GET", AUTHENTICATION_CONFIGMAP)
        return response

    return httpx.AsyncClient(base_url="https://kube.test", transport=httpx.MockTransport(handler))


async def test_a_missing_configmap_or_requestheader_ca_is_no_front_proxy() -> None:
    async with answering(httpx.Response(404, json={"kind": "Status", "code": 404})) as client:
        assert await front_proxy(client) is None
    data = configmap_data()
    del data["requestheader-client-ca-file"]
    async with answering(httpx.Response(200, json={**CONFIGMAP, "data": data})) as client:
        assert await front_proxy(client) is None


@pytest.mark.parametrize(("response", "message"), [
    (httpx.Response(403, json={"kind": "Status"}), r"reading kube-system/extension-apiserver-authentication: .*"
                                                   r"HTTP 403.*extension-apiserver-authentication-reader"),
    (httpx.Response(500, text="etcdserver: request timed out"), r"HTTP 500: 'etcdserver: request timed out'"),
    (httpx.Response(200, json={**CONFIGMAP, "data": {"requestheader-client-ca-file": 7}}), r"data is not a map"),
    (httpx.Response(200, json={**CONFIGMAP, "data": configmap_data(**{"requestheader-group-headers": "X"})}),
     r"requestheader-group-headers is not a JSON array of strings"),
])
async def test_a_configmap_that_cannot_be_read_is_unavailable(response: httpx.Response, message: str) -> None:
    async with answering(response) as client:
        with pytest.raises(AccessUnavailable, match=message):
            await front_proxy(client)


async def test_a_hung_apiserver_is_unavailable_at_the_deadline(hung_url: str) -> None:
    async with httpx.AsyncClient(base_url=hung_url) as client:
        with pytest.raises(AccessUnavailable, match=r"did not answer within 0.2s"):
            await front_proxy(client, timeout_seconds=0.2)
