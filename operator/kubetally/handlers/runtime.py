"""The operator process: one runtime in kopf's memo, built at startup and closed at cleanup.

It holds the ledger, the Prometheus client, the service, the HTTP API (same routes as
`kubetally serve`, plus each CostReport's `status.resultPath`, served by `handlers.results`) and the
background ingest loop, so the API and the ingest run in the operator's own process. Options come
from `kubetally run` through `memo.options`.
"""

from __future__ import annotations

import asyncio
import logging
import os
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from functools import partial
from typing import Any

import kopf

from kubetally.api.app import ReportView
from kubetally.api.metrics import Metrics
from kubetally.ledger.store import DuckDBLedger
from kubetally.serve import (
    Api,
    ServeOptions,
    background_tasks,
    check_exposure,
    make_clock,
    open_clients,
    open_gate,
    start_api,
)
from kubetally.service import CostService
from kubetally.sources.prometheus import PrometheusClient

GROUP, VERSION = "kubetally.io", "v1alpha1"


@dataclass
class RunOptions:
    serve: ServeOptions
    admin_namespaces: frozenset[str] = frozenset()


@dataclass
class Runtime:
    options: RunOptions
    ledger: DuckDBLedger
    client: PrometheusClient
    service: CostService
    api_servers: Api | None = None
    tasks: list[asyncio.Task[Any]] = field(default_factory=list)
    #: Closes the store's clients (`client` is the live one: serve.StoreClients).
    stack: AsyncExitStack = field(default_factory=AsyncExitStack)
    #: (namespace, name) → the last result of each CostReport, served at its status.resultPath (after
    #: a restart, recomputed on the first request: `handlers.results`).
    results: dict[tuple[str, str], ReportView] = field(default_factory=dict)
    #: Held while a result is recomputed, so concurrent requests after a restart compute it once.
    recomputing: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: (namespace, name) → the newest body of each CostReport seen by the watch.
    reports: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    api: Any = None  # kubernetes.client.CustomObjectsApi

    def patch_report(self, namespace: str, name: str, status: dict[str, Any], stamp: str) -> None:
        """Write a recomputed status (status subresource) and the prices stamp it was computed at."""
        self.api.patch_namespaced_custom_object_status(
            GROUP, VERSION, namespace, "costreports", name, {"status": status}
        )
        self.api.patch_namespaced_custom_object(
            GROUP, VERSION, namespace, "costreports", name, {"metadata": {"annotations": {COMPUTED_AT_PRICES: stamp}}}
        )


#: Annotation holding the ledger's prices stamp a report was computed at.
COMPUTED_AT_PRICES = "kubetally.io/prices-version"


def _custom_objects_api() -> Any:
    """A Kubernetes client from KUBECONFIG (or ~/.kube/config), else the in-cluster service account."""
    from kubernetes import client, config

    try:
        # The client reads KUBECONFIG once at import; read it now so a later setting counts.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    except Exception:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.CustomObjectsApi()


async def schedule_loop(runtime: Runtime) -> None:
    from kubetally.handlers.costreports import schedule_loop as loop

    await loop(runtime)


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    options: RunOptions = memo.options
    check_exposure(options.serve)
    ledger = DuckDBLedger(options.serve.ledger, memory_limit=options.serve.memory_limit)
    stack = AsyncExitStack()
    clients = await open_clients(options.serve, stack)
    service = CostService(ledger, clients.live, options.serve.config, make_clock(options.serve.now))
    metrics = Metrics()
    runtime = Runtime(options=options, ledger=ledger, client=clients.live, service=service, stack=stack)
    runtime.api = _custom_objects_api()
    from kubetally.handlers.results import find_result  # imports this module

    gate = await open_gate(options.serve, ledger, stack)
    runtime.api_servers = await start_api(service, metrics, clients.health, options.serve, gate,
                                          partial(find_result, runtime))
    logging.getLogger(__name__).info("API on %s", runtime.api_servers.url)
    runtime.tasks.extend(background_tasks(service, clients, options.serve, metrics))
    runtime.tasks.append(asyncio.create_task(schedule_loop(runtime)))
    memo.runtime = runtime


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is None:
        return
    for task in runtime.tasks:
        task.cancel()
    await asyncio.gather(*runtime.tasks, return_exceptions=True)
    if runtime.api_servers is not None:
        await runtime.api_servers.close()
    await runtime.stack.aclose()
    runtime.ledger.close()
