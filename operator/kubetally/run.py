"""`kubetally run`: the operator, i.e. the process of `kubetally serve` plus the kopf handlers.

The process is assembled as for `serve` (`serve.assemble`: ledger, store clients, service, caller
checks, metrics, HTTP API, ingest loop and store probe); the operator adds what only it has:

- the handlers' `Runtime` over the process's service and ledger, with a Kubernetes client to write
  report statuses with (`handlers.runtime.write_report`);
- each CostReport's `status.resultPath`, answered by `handlers.results.find_result`;
- the schedule loop that recomputes due reports (`handlers.costreports.schedule_loop`).

This module is the operator's composition root, above both the handlers and the HTTP API, so that
those two never import each other. Importing it registers the handlers (and its own startup and
cleanup) with kopf. kopf keeps its progress in annotations (`kubetally.io/...`), so no finalizer is
ever added and the status holds only what the CRD declares.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import partial
from typing import Any

import kopf

import kubetally.handlers  # noqa: F401  (registers the CostWeights and CostReport handlers)
from kubetally.handlers.costreports import schedule_loop
from kubetally.handlers.results import find_result
from kubetally.handlers.runtime import GROUP, Runtime, custom_objects_api
from kubetally.serve import Process, ServeOptions, assemble

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    serve: ServeOptions
    #: Namespaces whose CostReports see every project (the others see their own namespace's project).
    admin_namespaces: frozenset[str] = frozenset()


async def run(options: RunOptions) -> None:
    """Run the operator (cluster-wide, without peering) until it is stopped."""
    await kopf.operator(clusterwide=True, standalone=True, memo=kopf.Memo(options=options))


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    options: RunOptions = memo.options
    process = await assemble(options.serve)
    try:
        runtime = Runtime(service=process.service, ledger=process.ledger, admin_namespaces=options.admin_namespaces,
                          api=custom_objects_api())
        api = await process.start(partial(find_result, runtime))
    except BaseException:
        await process.close()
        raise
    log.info("API on %s", api.url)
    process.spawn(schedule_loop(runtime))
    memo.process, memo.runtime = process, runtime


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    process: Process | None = getattr(memo, "process", None)
    if process is not None:
        await process.close()
