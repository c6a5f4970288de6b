"""Module hops of two in-process paths through kubetally (issue 14's before/after figures).

Run: `PYTHONPATH=<checkout>/operator:<checkout> nice -n 19 .venv/bin/python scripts/hops.py [--edges]`
(measures the checkout PYTHONPATH resolves, printed first; --edges lists each edge's hop count).

A profile function (`sys.setprofile`, and `threading.setprofile` for the threads started later: the
`asyncio.to_thread` workers) sees each Python call while a scenario runs, once per frame (a resumed
generator or coroutine is no new call), all kubetally modules imported beforehand. A frame's module
is its `__name__` global (a dataclass's generated `__init__` is its class's); the caller is the frame below.
- hops: calls whose caller and callee modules are both `kubetally[.*]` and differ. A stdlib or third
  party Python frame in between breaks the chain (kubetally → asyncio/duckdb → kubetally is no hop);
  C callables (functools.partial, sorted's key) leave no frame and do not break it.
- edges: distinct (caller, callee) module pairs among the hops; modules: kubetally modules called;
  into service: hops whose callee is `kubetally.service[.*]` (entries and re-entries from elsewhere).

Scenarios (deterministic: fixed data and clocks, loopback only; `check` shows the answer):
1. /v2/cost: `GET /v2/cost?window=2025-06-01T00:00:00Z,2025-06-01T02:00:00Z&aggregate=namespace&method=Effective`
   via aiohttp's TestClient/TestServer over `build_app` on tests/unit/api/test_app.py's `topology_service`,
   from the request entering the app to its response read.
2. sample→status: a fake store answers the catalogue's queries with one container, node, claim and
   quota sampled every 60 s over 00:00–01:00; `ingest_range` collects the hour into facts and writes
   it to the ledger; `reports.compute_report` computes a CostReport (aggregate namespace) over it at 01:10:10.
"""

from __future__ import annotations

import asyncio
import importlib
import inspect
import pkgutil
import sys
import tempfile
import threading
from collections import Counter
from dataclasses import fields
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient, TestServer

T0, GIB = 1748736000, float(1024**3)  # T0: 2025-06-01T00:00:00Z
SERVICE = "kubetally.service"
RESUMABLE = inspect.CO_GENERATOR | inspect.CO_COROUTINE | inspect.CO_ASYNC_GENERATOR
WEIGHTS = {"currency": "CNY", "weights": {"cpu": "0.5", "memory": "0.5"},
           "unitPrices": {"cpuCoreHour": "0.05", "memoryGiBHour": "0.01", "storageGiBHour": "0.0001"},
           "nodePrices": [{"selector": {"matchLabels": {"node.kubernetes.io/instance-type": "big"}}, "hourly": "0.8"}],
           "storageClassPrices": [{"storageClassName": "ssd", "gibHour": "0.0002"}]}  # tests/unit/api/test_app.py's
UID = "1f0c5a2e-0000-4000-8000-000000000001"
POD = {"namespace": "shop", "pod": "web-1", "container": "main"}
WEB, N1, CLAIM = {**POD, "uid": UID}, {"node": "n1"}, {"namespace": "shop", "persistentvolumeclaim": "data"}
#: Catalogue role → (labels, value) of its one series, the same value at every minute of the hour.
SAMPLES: dict[str, tuple[dict[str, str], float]] = {
    "running": (WEB, 1.0), "cpu_request": (WEB, 0.5), "memory_request": (WEB, GIB), "memory_usage": (POD, 2 * GIB),
    "cpu_usage": ({**POD, "id": f"/kubepods/burstable/pod{UID.replace('-', '_')}/abc"}, 0.2),
    "pod_info": ({**WEB, "node": "n1", "created_by_kind": "ReplicaSet", "created_by_name": "web-7d9f"}, 1.0),
    "pod_owner": ({**WEB, "owner_kind": "ReplicaSet", "owner_name": "web-7d9f"}, 1.0),
    "replicaset_owner": ({"namespace": "shop", "replicaset": "web-7d9f", "owner_kind": "Deployment",
                          "owner_name": "web"}, 1.0),
    "pod_labels": ({**WEB, "label_app": "web"}, 1.0),
    "namespace_labels": ({"namespace": "shop", "label_kubetally_io_project": "alpha"}, 1.0),
    "node_info": ({**N1, "provider_id": "ecs://n1"}, 1.0), "node_cpu_capacity": (N1, 4.0), "node_price": (N1, 0.8),
    "node_memory_capacity": (N1, 16 * GIB), "quota": ({"namespace": "shop", "resource": "requests.cpu"}, 2.0),
    "node_labels": ({**N1, "label_node_kubernetes_io_instance_type": "big"}, 1.0),
    "pvc_request": (CLAIM, 10 * GIB), "pvc_used": (CLAIM, 5 * GIB), "pvc_info": ({**CLAIM, "storageclass": "ssd"}, 1.0),
}


def find(name: str, *modules: str) -> Any:
    """`name` from the first of `modules` that has it (the refactor may move it)."""
    for module in modules:
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError):
            continue
    raise ImportError(f"{name} is in none of {', '.join(modules)}")


class Recorder:
    """The (caller module, callee module) of every hop, and the modules called, while `active`."""

    def __init__(self) -> None:
        self.active = False
        self.hops: list[tuple[str, str]] = []
        self.modules: set[str] = set()
        self._resumable: set[FrameType] = set()  # held, so that no frame's identity is reused

    def profile(self, frame: FrameType, event: str, arg: object) -> None:
        if not self.active or event != "call":
            return
        callee = str(frame.f_globals.get("__name__", ""))
        if callee.partition(".")[0] != "kubetally":
            return
        if frame.f_code.co_flags & RESUMABLE:
            if frame in self._resumable:
                return
            self._resumable.add(frame)
        self.modules.add(callee)
        caller = str(frame.f_back.f_globals.get("__name__", "")) if frame.f_back else ""
        if caller.partition(".")[0] == "kubetally" and caller != callee:
            self.hops.append((caller, callee))


class FakeStore:
    """Answers each catalogue query with its series of `samples` within [start, end]; others with none."""

    def __init__(self, config: Any, samples: dict[str, tuple[dict[str, str], float]]) -> None:
        queries = find("catalogue", "kubetally.sources.catalogue", "kubetally.sources")(config)
        self.by_query = {getattr(queries, f.name): [samples[f.name]] for f in fields(queries) if f.name in samples}
        self.series = find("RangeSeries", "kubetally.sources.prometheus", "kubetally.sources")

    async def query_range(self, query: str, start: int, end: int, step: int) -> list[Any]:
        stamps = np.array([t for t in range(T0, T0 + 3600, 60) if start <= t <= end], dtype=np.int64)
        return [self.series(labels=labels, timestamps=stamps, values=np.full(len(stamps), value))
                for labels, value in self.by_query.get(query, []) if len(stamps)]


def topology_service(tmp: Path) -> Any:
    """tests/unit/api/test_app.py's service, or one built the same way if that helper moved."""
    try:
        return find("topology_service", "tests.unit.api.test_app")(tmp)
    except ImportError:
        topology = importlib.import_module("tests.unit.engine.topology")
    hour_batch = find("hour_batch", "tests.unit.ledger.test_store")
    ledger = find("DuckDBLedger", "kubetally.ledger.store", "kubetally.ledger")(tmp / "l.duckdb")
    for hour in (0, 1):
        ledger.write_hour("c1", topology.T0 + hour * 3600, hour_batch(hour), 1.0, ingested_at=topology.T0)
    config = find("SourceConfig", "kubetally.sources.catalogue", "kubetally.sources")(cluster="c1")
    service = find("CostService", SERVICE)(ledger, FakeStore(config, {}), config, clock=lambda: topology.T0 + 7200)
    service.record_weights("default", WEIGHTS)
    return service


async def cost_request(recorder: Recorder, tmp: Path) -> str:
    build_app = find("build_app", "kubetally.api.app", "kubetally.api")
    service = topology_service(tmp)
    params = {"window": "2025-06-01T00:00:00Z,2025-06-01T02:00:00Z", "aggregate": "namespace", "method": "Effective"}
    metrics = find("Metrics", "kubetally.api.metrics", "kubetally.api")()
    app = build_app(service, metrics, lambda: asyncio.sleep(0, True))  # /readyz: always ready
    async with TestClient(TestServer(app)) as client:
        recorder.active = True
        response = await client.get("/v2/cost", params=params)
        body = await response.json()
        recorder.active = False
    service.ledger.close()
    if response.status != 200:
        raise RuntimeError(f"/v2/cost answered {response.status}: {body}")
    return "cost " + " ".join(f"{name}={item['cost']:.6g}" for name, item in sorted(body["data"][0].items()))


async def sample_to_status(recorder: Recorder, tmp: Path) -> str:
    config = find("SourceConfig", "kubetally.sources.catalogue", "kubetally.sources")(cluster="c1")
    store, now = FakeStore(config, SAMPLES), T0 + 3600 + 610
    ledger = find("DuckDBLedger", "kubetally.ledger.store", "kubetally.ledger")(tmp / "s.duckdb")
    service = find("CostService", SERVICE)(ledger, store, config, clock=lambda: now)
    service.record_weights("default", WEIGHTS)
    ingest_range = find("ingest_range", "kubetally.ingest", "kubetally.sources.ingest")
    compute_report = find("compute_report", "kubetally.reports", "kubetally.handlers.reports")
    options = {"namespace": "ops", "name": "hops", "generation": 1, "now": datetime.fromtimestamp(now, UTC),
               "project": None, "isolated": False}
    accepted = inspect.signature(compute_report).parameters
    spec = {"window": "2025-06-01T00:00:00Z,2025-06-01T01:00:00Z", "aggregate": ["namespace"]}
    recorder.active = True
    await ingest_range(store, ledger, config, T0, T0 + 3600, now=now)
    result = await compute_report(service, spec, **{k: v for k, v in options.items() if k in accepted})
    recorder.active = False
    ledger.close()
    status = result.status
    ready = next(c["status"] for c in status["conditions"] if c["type"] == "Ready")
    return f"Ready={ready} rows={status['rowCount']} coverage={status['coverage']} totals={status['totals']}"


def main() -> None:
    for info in pkgutil.walk_packages(importlib.import_module("kubetally").__path__, "kubetally."):
        if not info.name.endswith("__main__"):
            importlib.import_module(info.name)
    print(f"kubetally from {Path(importlib.import_module('kubetally').__file__ or '').parent}")
    rows = []
    for label, scenario in (("/v2/cost", cost_request), ("sample→status", sample_to_status)):
        recorder = Recorder()
        sys.setprofile(recorder.profile)
        threading.setprofile(recorder.profile)  # threads start afterwards: asyncio.run makes a new executor
        with tempfile.TemporaryDirectory() as tmp:
            check = asyncio.run(scenario(recorder, Path(tmp)))
        sys.setprofile(None)
        threading.setprofile(None)
        into = sum(1 for _, callee in recorder.hops if callee == SERVICE or callee.startswith(SERVICE + "."))
        rows.append((label, len(recorder.hops), len(set(recorder.hops)), len(recorder.modules), into, check))
        for (caller, callee), count in sorted(Counter(recorder.hops).items(), key=lambda e: (-e[1], e[0])):
            if "--edges" in sys.argv:
                print(f"  {label}: {caller} -> {callee}  x{count}")
    print(f"{'scenario':<14} {'hops':>5} {'edges':>5} {'modules':>7} {'into service':>12}  check")
    for label, hops, edges, modules, into, check in rows:
        print(f"{label:<14} {hops:>5} {edges:>5} {modules:>7} {into:>12}  {check}")


if __name__ == "__main__":
    main()
