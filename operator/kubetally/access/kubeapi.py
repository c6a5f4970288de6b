"""The HTTP client that asks the Kubernetes API, and the front-proxy settings it publishes.

The reviews are a handful of small POSTs on the request path, so they go over an async httpx client
(the official `kubernetes` client is synchronous). Where the apiserver is and how to log in to it
is still decided by `kubernetes.config`, exactly as the operator's own client does
(`handlers.runtime`): KUBECONFIG (a list of files, as kubectl reads it), else ~/.kube/config, else
the pod's service account. That way every kubeconfig form the official client understands works here
too: a token, a client certificate, exec plugins, certificate data, `insecure-skip-tls-verify`,
`tls-server-name`, `proxy-url`.
"""

from __future__ import annotations

import os
import ssl
import urllib.request
from collections.abc import Generator
from typing import Any
from urllib.parse import urlsplit

import httpx

from kubetally.access.calls import AccessUnavailable, call_json
from kubetally.access.identity import FrontProxy, InvalidFrontProxy

#: Where the kube-apiserver publishes its client CA and front-proxy (requestheader) settings; readable
#: with the Role `extension-apiserver-authentication-reader` in kube-system.
AUTHENTICATION_CONFIGMAP = "/api/v1/namespaces/kube-system/configmaps/extension-apiserver-authentication"


def api_client(timeout_seconds: float) -> httpx.AsyncClient:
    """A client of the Kubernetes API with kubetally's own credentials; `timeout_seconds` is the default
    per-phase timeout of its requests (the reviews add an end-to-end deadline on top).

    Raises AccessUnavailable, saying what was tried, when there is neither a kubeconfig nor a service
    account to use.
    """
    return client_for(load_configuration(), timeout_seconds)


def load_configuration() -> Any:
    """A `kubernetes.client.Configuration` from KUBECONFIG / ~/.kube/config, else in-cluster."""
    from kubernetes import client, config

    configuration = client.Configuration()
    # Read KUBECONFIG now (the client reads it once, at import). An empty KUBECONFIG means unset, as for kubectl.
    path = os.environ.get("KUBECONFIG") or os.path.expanduser("~/.kube/config")
    try:
        # persist_config=False: never write refreshed credentials back into the user's kubeconfig.
        config.load_kube_config(config_file=path, client_configuration=configuration, persist_config=False)  # type: ignore[no-untyped-call]
    except Exception as kube_error:  # ConfigException, a missing or unreadable file, a bad YAML
        try:
            config.load_incluster_config(client_configuration=configuration)  # type: ignore[no-untyped-call]
        except Exception as cluster_error:
            raise AccessUnavailable(
                f"no Kubernetes API to ask: kubeconfig {path}: {kube_error}; in-cluster service account: "
                f"{cluster_error}") from None
    return configuration


def client_for(configuration: Any, timeout_seconds: float) -> httpx.AsyncClient:
    """An httpx client speaking to `configuration.host` the way the official client would."""
    if configuration.verify_ssl:
        context = ssl.create_default_context(cafile=configuration.ssl_ca_cert or None)
    else:  # insecure-skip-tls-verify: the kubeconfig's explicit choice
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    if configuration.cert_file:
        context.load_cert_chain(configuration.cert_file, configuration.key_file or None)
    hooks: dict[str, list[Any]] = {}
    server_name = getattr(configuration, "tls_server_name", None)
    if server_name:
        async def set_server_name(request: httpx.Request) -> None:
            request.extensions["sni_hostname"] = server_name  # SNI and the name the certificate must carry

        hooks["request"] = [set_server_name]
    return httpx.AsyncClient(
        base_url=configuration.host, verify=context, auth=ConfiguredToken(configuration),
        timeout=timeout_seconds, proxy=_explicit_proxy(configuration), trust_env=True,
        headers={"User-Agent": "kubetally"}, event_hooks=hooks)


class ConfiguredToken(httpx.Auth):
    """The bearer token of a Configuration, asked for on every request: its refresh hook re-reads a
    rotated service-account token (bound tokens expire within the hour) or re-runs an exec plugin."""

    def __init__(self, configuration: Any) -> None:
        self._configuration = configuration

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        value = self._configuration.get_api_key_with_prefix("BearerToken", alias="authorization")
        if value:
            request.headers["Authorization"] = value
        yield request


def _explicit_proxy(configuration: Any) -> str | None:
    """The kubeconfig's `proxy-url`, if any. A proxy from the environment is left to httpx
    (`trust_env`), which also honours NO_PROXY; newer kubernetes clients copy HTTPS_PROXY into
    `configuration.proxy`, so a value equal to the environment's is not explicit."""
    proxy: str | None = getattr(configuration, "proxy", None)
    if not proxy:
        return None
    environment = urllib.request.getproxies()
    scheme = urlsplit(configuration.host).scheme
    return None if proxy in (environment.get(scheme), environment.get("all")) else proxy


async def front_proxy(client: httpx.AsyncClient, *, timeout_seconds: float = 5.0) -> FrontProxy | None:
    """The front-proxy settings the apiserver publishes; None when the ConfigMap does not exist or
    names no requestheader CA (an apiserver without `--requestheader-client-ca-file`: no aggregated
    requests can come, and identity headers are never trusted).

    Unreachable, refused, or a ConfigMap we cannot read → AccessUnavailable.
    """
    what = "reading kube-system/extension-apiserver-authentication"
    answer = await call_json(client, "GET", AUTHENTICATION_CONFIGMAP, what=what, timeout_seconds=timeout_seconds,
                             missing_ok=True)
    if answer is None:
        return None
    data = answer.get("data") or {}
    if not (isinstance(data, dict) and all(isinstance(value, str) for value in data.values())):
        raise AccessUnavailable(f"{what}: data is not a map of strings")
    try:
        return FrontProxy.from_configmap(data)
    except InvalidFrontProxy as error:
        raise AccessUnavailable(f"{what}: {error}") from None
