"""The operator's state, in kopf's memo: what the handlers read and the one writer of report statuses.

`kubetally.run` assembles the process (`serve.assemble`, as for `kubetally serve`) at startup and
hands the handlers this runtime over its service and ledger: the handlers never see the process, its
HTTP API or its options beyond the admin namespaces, so `kubetally.handlers` and `kubetally.api`
import nothing of each other. This module imports no other handler module, so the handlers form no
import cycle: runtime ← costweights, costreports ← results.

`write_report` is the one writer of a CostReport's status, for a computation on create or spec
change and for one of the schedule loop alike.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from kubetally.ledger.store import DuckDBLedger
from kubetally.reports import ReportView
from kubetally.service import CostService

GROUP, VERSION = "kubetally.io", "v1alpha1"
#: Annotation holding the ledger's prices stamp a report was computed at.
COMPUTED_AT_PRICES = "kubetally.io/prices-version"
#: Deadline of one write to the API server (seconds): the request's own timeout, and one more second
#: for the thread that makes it.
WRITE_TIMEOUT = 10.0


@dataclass
class Runtime:
    service: CostService
    ledger: DuckDBLedger
    #: Namespaces whose CostReports see every project (`kubetally run --admin-namespaces`).
    admin_namespaces: frozenset[str] = frozenset()
    api: Any = None  # kubernetes.client.CustomObjectsApi
    #: (namespace, name) → the last result of each CostReport, served at its status.resultPath (after
    #: a restart, recomputed on the first request: `handlers.results`).
    results: dict[tuple[str, str], ReportView] = field(default_factory=dict)
    #: Held while a result is recomputed, so concurrent requests after a restart compute it once.
    recomputing: asyncio.Lock = field(default_factory=asyncio.Lock)
    #: (namespace, name) → the newest body of each CostReport seen by the watch.
    reports: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: Names of the CostWeights the watch sees (the console lists those in force: `handlers.listing`).
    weights: set[str] = field(default_factory=set)
    #: (namespace, name) → the newest body of each CostBudget seen by the watch.
    budgets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: (namespace, name) → what a budget was last computed at (`handlers.costbudgets`): the ledger's
    #: (newest hour, prices stamp), its period's end and the status written (newer than the watch's).
    budget_marks: dict[tuple[str, str], tuple[Any, Any, dict[str, Any]]] = field(default_factory=dict)
    #: The budgets' gauges on the process's registry (`handlers.costbudgets.BudgetGauges`).
    budget_gauges: Any = None
    #: Posts budget threshold crossings to webhooks (`kubetally.notify.Notifier`), or None.
    notifier: Any = None
    #: The operator's own namespace: where the Secrets of budget webhooks live.
    namespace: str = "kubetally-system"
    #: Background work the handlers started and must not lose (a Secret read before a notification).
    tasks: set[asyncio.Task[None]] = field(default_factory=set)

    async def write_report(self, namespace: str, name: str, status: dict[str, Any], stamp: str) -> None:
        """Write a report's new status and the prices stamp it was computed at: two merge patches,
        because the status subresource of a custom resource keeps only `status` and the resource
        itself ignores `status`. The status goes first: a reader between the two sees a stamp older
        than the ledger's, which `handlers.results` answers with 503 and Retry-After, never a result
        of other prices. kopf keeps its own progress in annotations it writes itself."""
        await _patch(self.api.patch_namespaced_custom_object_status, namespace, name, {"status": status})
        await _patch(self.api.patch_namespaced_custom_object, namespace, name,
                     {"metadata": {"annotations": {COMPUTED_AT_PRICES: stamp}}})


    async def write_status(self, plural: str, namespace: str, name: str, status: dict[str, Any]) -> None:
        """Write the status of a namespaced kubetally.io object (a merge patch of the subresource)."""
        await _patch(self.api.patch_namespaced_custom_object_status, namespace, name, {"status": status}, plural)


async def _patch(call: Callable[..., Any], namespace: str, name: str, body: dict[str, Any],
                 plural: str = "costreports") -> None:
    """One merge patch of a namespaced object (a CostReport by default), within WRITE_TIMEOUT."""
    await asyncio.wait_for(
        asyncio.to_thread(call, GROUP, VERSION, namespace, plural, name, body, _request_timeout=WRITE_TIMEOUT),
        WRITE_TIMEOUT + 1,
    )


def custom_objects_api() -> Any:
    """A Kubernetes client from KUBECONFIG (or ~/.kube/config), else the in-cluster service account."""
    from kubernetes import client, config

    try:
        # The client reads KUBECONFIG once at import; read it now so a later setting counts.
        config.load_kube_config(config_file=os.environ.get("KUBECONFIG"))  # type: ignore[no-untyped-call]
    except Exception:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    return client.CustomObjectsApi()


async def publish_ca_bundle(configuration: str, cert_pem: str) -> int:
    """Put `cert_pem` (the serving certificate the operator made at start, its own CA) into the
    caBundle of every webhook of ValidatingWebhookConfiguration `configuration`, within WRITE_TIMEOUT
    per call: the apiserver then verifies the webhook's TLS. Returns how many webhooks were set.
    A JSON patch by index, read just before: `add` sets the member whether or not it is there."""
    import base64

    from kubernetes import client

    api = client.AdmissionregistrationV1Api()
    found = await asyncio.wait_for(asyncio.to_thread(
        api.read_validating_webhook_configuration, configuration, _request_timeout=WRITE_TIMEOUT), WRITE_TIMEOUT + 1)
    bundle = base64.b64encode(cert_pem.encode()).decode()
    patch = [{"op": "add", "path": f"/webhooks/{index}/clientConfig/caBundle", "value": bundle}
             for index, _ in enumerate(found.webhooks or [])]
    if patch:
        await asyncio.wait_for(asyncio.to_thread(
            api.patch_validating_webhook_configuration, configuration, patch, _request_timeout=WRITE_TIMEOUT),
            WRITE_TIMEOUT + 1)
    return len(patch)
