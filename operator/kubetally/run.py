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
from kubetally.handlers.costbudgets import BudgetGauges, budget_loop, list_budgets
from kubetally.handlers.costreports import schedule_loop
from kubetally.handlers.listing import list_objects
from kubetally.handlers.results import find_result
from kubetally.handlers.runtime import GROUP, Runtime, custom_objects_api, publish_ca_bundle
from kubetally.notify import Notifier
from kubetally.serve import Process, ServeOptions, assemble

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class RunOptions:
    serve: ServeOptions
    #: Namespaces whose CostReports see every project (the others see their own namespace's project).
    admin_namespaces: frozenset[str] = frozenset()
    #: The ValidatingWebhookConfiguration whose caBundle gets the certificate made at start ("": none).
    webhook_configuration: str = "kubetally"
    #: The operator's own namespace (budget webhooks' Secrets live there).
    namespace: str = "kubetally-system"


async def run(options: RunOptions) -> None:
    """Run the operator (cluster-wide, without peering) until it is stopped. The process is assembled
    first, so a ledger a user must fix (locked, not a ledger, newer, no space, read-only) stops the
    command with its sentence and exit code, not a startup handler kopf would retry (`keeper`)."""
    memo = kopf.Memo(options=options, assembled=await assemble(options.serve))
    try:
        await kopf.operator(clusterwide=True, standalone=True, memo=memo)
    finally:
        if getattr(memo, "process", None) is None:  # startup never took it (cleanup closes what it took)
            await memo.assembled.close()


@kopf.on.startup()
async def startup(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(prefix=GROUP)
    settings.posting.level = logging.WARNING
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    options: RunOptions = memo.options
    process = getattr(memo, "assembled", None) or await assemble(options.serve)
    try:
        runtime = Runtime(service=process.service, ledger=process.ledger, admin_namespaces=options.admin_namespaces,
                          api=custom_objects_api())
        api = await process.start(partial(find_result, runtime), partial(list_budgets, runtime),
                                  partial(list_objects, runtime))
    except BaseException:
        await process.close()
        raise
    log.info("API on %s", api.url)
    if options.webhook_configuration and api.self_signed_pem:
        await _publish(options.webhook_configuration, api.self_signed_pem)
    runtime.budget_gauges = BudgetGauges(process.metrics.registry)
    runtime.notifier = Notifier(outcomes=runtime.budget_gauges.notifications)
    runtime.namespace = options.namespace
    process.spawn(schedule_loop(runtime))
    process.spawn(budget_loop(runtime))
    memo.process, memo.runtime = process, runtime


async def _publish(configuration: str, cert_pem: str) -> None:
    """The admission webhook verifies us with the certificate made at start. A failure is logged, not
    fatal: the webhook's failure policy (Ignore) then admits objects unchecked, and the InvalidSpec
    condition still marks the bad ones (manifests/manager/webhook.yaml)."""
    try:
        count = await publish_ca_bundle(configuration, cert_pem)
    except Exception as error:  # ApiException, a timeout, no such object: the operator runs on
        if getattr(error, "status", None) == 404:  # not installed (kubetally demo, a bare `kubetally run`)
            log.info("no ValidatingWebhookConfiguration %s: no admission checks (manifests/manager/webhook.yaml "
                     "installs them); bad billing objects are marked InvalidSpec", configuration)
            return
        log.warning("could not put the serving certificate into ValidatingWebhookConfiguration %s (%s): "
                    "bad billing objects are admitted and marked InvalidSpec until it is set",
                    configuration, str(error).splitlines()[0] if str(error) else type(error).__name__)
        return
    log.info("ValidatingWebhookConfiguration %s: caBundle set on %d webhook(s)", configuration, count)


@kopf.on.cleanup()
async def cleanup(memo: kopf.Memo, **_: Any) -> None:
    runtime: Runtime | None = getattr(memo, "runtime", None)
    if runtime is not None and runtime.notifier is not None:
        await runtime.notifier.close()
    process: Process | None = getattr(memo, "process", None)
    if process is not None:
        await process.close()
