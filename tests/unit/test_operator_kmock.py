"""The whole kopf operator in process against kmock (a fake Kubernetes API): fast variations the
e2e tier is too slow for. Here: an invalid spec that the schema would let through (kmock validates
nothing) becomes `Ready=False, reason=InvalidSpec`, and a bad CostWeights likewise, without any
metrics store (none is reachable: the Prometheus URL points at a closed port)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import kopf
import pytest
import yaml

from kubetally.processes import free_port
from kubetally.run import RunOptions  # registers the handlers and the operator's startup
from kubetally.serve import ServeOptions
from kubetally.sources.catalogue import SourceConfig

REPORTS = "kubetally.io/v1alpha1/costreports"
WEIGHTS = "kubetally.io/v1alpha1/costweights"


def _resource(kind: str, singular: str, namespaced: bool) -> dict[str, Any]:
    return {"namespaced": namespaced, "kind": kind, "singular": singular, "shortnames": [], "categories": [],
            "verbs": ["list", "watch", "get", "patch", "create", "delete"], "subresources": ["status"]}


async def _wait_for(kmock: Any, key: tuple[str | None, ...], deadline: float = 20.0) -> dict[str, Any]:
    loop = asyncio.get_running_loop()
    until = loop.time() + deadline
    while loop.time() < until:
        status = (kmock.objects[key] or {}).get("status") or {}
        if status.get("conditions"):
            return dict(status)
        await asyncio.sleep(0.1)
    raise AssertionError(f"no conditions on {key}")


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # kmock 0.8 uses importlib.resources.read_binary
async def test_invalid_specs_are_marked_in_process(kmock: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    kmock.resources.load_bundled()
    kmock.resources[REPORTS] = _resource("CostReport", "costreport", True)
    kmock.resources[WEIGHTS] = _resource("CostWeights", "costweights", False)
    kmock.objects[REPORTS, "ops", "r1"] = {
        "apiVersion": "kubetally.io/v1alpha1", "kind": "CostReport",
        "metadata": {"name": "r1", "namespace": "ops", "resourceVersion": "1", "uid": "u1", "generation": 1},
        "spec": {"window": "fortnight"}}
    kmock.objects[WEIGHTS, None, "lopsided"] = {
        "apiVersion": "kubetally.io/v1alpha1", "kind": "CostWeights",
        "metadata": {"name": "lopsided", "resourceVersion": "1", "uid": "u2", "generation": 1},
        "spec": {"currency": "CNY", "weights": {"cpu": "0.7", "memory": "0.2"}}}
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "kmock",
        "clusters": [{"name": "kmock", "cluster": {"server": str(kmock.url).rstrip("/")}}],
        "contexts": [{"name": "kmock", "context": {"cluster": "kmock", "user": "u"}}],
        "users": [{"name": "u", "user": {"token": "t"}}]}))
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    server = str(kmock.url).rstrip("/")

    @kopf.on.login()
    def login(**_: Any) -> kopf.ConnectionInfo:
        return kopf.ConnectionInfo(server=server, token="t")

    options = RunOptions(serve=ServeOptions(prometheus_url="http://127.0.0.1:1", ledger=tmp_path / "l.duckdb",
                                            weights=(), port=free_port(), host="127.0.0.1",
                                            config=SourceConfig(cluster="c1"), ingest_interval_seconds=3600))
    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    stop: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    task = asyncio.create_task(kopf.operator(clusterwide=True, standalone=True, settings=settings,
                                             memo=kopf.Memo(options=options), stop_flag=stop))
    try:
        report = await _wait_for(kmock, (REPORTS, "ops", "r1"))
        weights = await _wait_for(kmock, (WEIGHTS, None, "lopsided"))
    finally:
        if not stop.done():
            stop.set_result(None)
        await asyncio.wait_for(task, 20)
    ready = next(c for c in report["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "fortnight" in ready["message"]
    ready = next(c for c in weights["conditions"] if c["type"] == "Ready")
    assert (ready["status"], ready["reason"]) == ("False", "InvalidSpec")
    assert "weights" in ready["message"]
