"""CostBudgets: computed on create, on spec change, after every ingested hour and price change, at a new period.

The handlers decide *when*; `kubetally.budgets` decides *what*. After each computation the status
is written first (it records the thresholds crossed this period), then one Kubernetes Event per
threshold newly crossed, and the budget's gauges are set. Because the crossing is recorded before
its Event is posted, an Event is posted at most once per threshold and period, across restarts too
(a restart between the two loses that one Event rather than repeating it).

`budget_loop` recomputes a budget when the ledger's newest hour or its prices stamp changed since the
budget's last computation, or its period ended (a new one starts clean). A budget outside the admin
namespaces covers its own namespace only (`budgets.scope_filter`).

Metrics (`BudgetGauges`, on the process's registry, served at /metrics), per budget (namespace,
name, currency): `kubetally_budget_amount`, `kubetally_budget_spent`, `kubetally_budget_forecast`
(money) and `kubetally_budget_ratio` (spent / amount). They are the status's numbers;
`kubetally_budget_notifications_total{outcome}` counts webhook notifications (`kubetally.notify`).

Webhook notifications: a budget in an admin namespace may name `spec.notify.secretKey` (a key of the
Secret `kubetally-budget-webhooks` in the operator's namespace, holding the URL) and a format (json,
slack). Each threshold newly crossed is
handed to the process's `Notifier` after the status recording it is written: posted at most once per
crossing, retried with backoff, in the background (a hung receiver never delays a reconcile).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import kopf
from prometheus_client import CollectorRegistry, Counter, Gauge

from kubetally.budgets import BudgetResult, Crossed, compute_budget
from kubetally.domain.budgets import WEBHOOK_SECRET
from kubetally.domain.errors import SourceUnavailable, SpecError
from kubetally.domain.timeparse import parse_rfc3339, to_epoch
from kubetally.handlers.runtime import GROUP, VERSION, WRITE_TIMEOUT, Runtime
from kubetally.reports import NoResult, failed_status

log = logging.getLogger(__name__)
PLURAL = "costbudgets"
#: How often `budget_loop` looks for budgets to recompute (seconds).
LOOP_SECONDS = 15.0


class BudgetGauges:
    """The budgets' Prometheus gauges (module doc), on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        labels = ["namespace", "name", "currency"]
        self.amount = Gauge("kubetally_budget_amount", "a CostBudget's amount per period", labels, registry=registry)
        self.spent = Gauge("kubetally_budget_spent", "spent in the current period", labels, registry=registry)
        self.forecast = Gauge("kubetally_budget_forecast", "forecast spend at the period's end", labels,
                              registry=registry)
        self.ratio = Gauge("kubetally_budget_ratio", "spent / amount", labels, registry=registry)
        self.notifications = Counter(
            "kubetally_budget_notifications", "budget webhook notifications by outcome: delivered, failed (given "
            "up), dropped (queue full or closed)", ["outcome"], registry=registry)

    def set(self, namespace: str, name: str, status: Mapping[str, Any]) -> None:
        labels = (namespace, name, str(status["currency"]))
        amount, spent = float(status["amount"]), float(status["spent"])
        self.amount.labels(*labels).set(amount)
        self.spent.labels(*labels).set(spent)
        self.forecast.labels(*labels).set(float(status["forecast"]))
        self.ratio.labels(*labels).set(spent / amount if amount > 0 else 0.0)

    def forget(self, namespace: str, name: str) -> None:
        for gauge in (self.amount, self.spent, self.forecast, self.ratio):
            for labels in [key for key in gauge._metrics if key[:2] == (namespace, name)]:
                gauge.remove(*labels)


def _mark(runtime: Runtime) -> tuple[int | None, str]:
    """What a budget's figures depend on besides its spec and the clock: the newest hour, the prices."""
    return runtime.ledger.latest_hour(runtime.service.config.cluster), runtime.ledger.prices_stamp()


async def recompute(name: str, namespace: str, body: Mapping[str, Any], runtime: Runtime) -> None:
    """Compute a budget, write its status, then post its new crossings and set its gauges."""
    meta = body.get("metadata") or {}
    # The status last written by this process is newer than the watch's copy: its crossings count.
    last = runtime.budget_marks.get((namespace, name))
    old = last[2] if last is not None and last[2].get("observedGeneration") is not None else body.get("status") or {}
    generation = int(meta.get("generation") or 0)
    now = datetime.fromtimestamp(runtime.service.clock(), UTC)
    mark = _mark(runtime)
    try:
        result: BudgetResult | None = await compute_budget(
            runtime.service, body.get("spec") or {}, namespace=namespace, generation=generation, now=now,
            isolated=namespace not in runtime.admin_namespaces, previous=old)
        status = result.status if result is not None else {}
    except (SpecError, SourceUnavailable) as error:
        result, status = None, failed_status(error, generation=generation, now=now,
                                             previous=list(old.get("conditions") or []))
    await runtime.write_status(PLURAL, namespace, name, status)
    runtime.budget_marks[(namespace, name)] = (mark, status.get("period", {}).get("end"), status)
    if result is None:
        return
    if runtime.budget_gauges is not None:
        runtime.budget_gauges.set(namespace, name, status)
    for crossed in result.crossed:
        await _post_event(runtime, body, crossed, status)
    if result.spec.notify is not None and runtime.notifier is not None and result.crossed:
        task = asyncio.create_task(_notify(runtime, namespace, name, result, status))
        runtime.tasks.add(task)
        task.add_done_callback(runtime.tasks.discard)


async def _notify(runtime: Runtime, namespace: str, name: str, result: BudgetResult, status: Mapping[str, Any]) -> None:
    """Read the webhook's URL from its Secret (in the operator's namespace), then hand each new crossing to
    the notifier, which posts it in the background (never awaited here: a hung receiver delays nothing).
    Runs after the status recording the crossings was written, so a crossing is posted at most once."""
    import base64

    from kubernetes import client

    from kubetally.notify import Crossing, Target

    notify, spec = result.spec.notify, result.spec
    if notify is None:
        return
    api: Any = client.CoreV1Api()
    try:
        secret = await asyncio.wait_for(asyncio.to_thread(api.read_namespaced_secret, WEBHOOK_SECRET,
                                                          runtime.namespace, _request_timeout=WRITE_TIMEOUT),
                                        WRITE_TIMEOUT + 1)
        url = base64.b64decode((secret.data or {})[notify.secret_key]).decode().strip()
    except Exception as error:  # no Secret, no key, no grant: say which, never the URL
        log.warning("costbudget %s/%s: no webhook URL in Secret %s/%s key %s (%s); crossings not posted", namespace,
                    name, runtime.namespace, WEBHOOK_SECRET, notify.secret_key, type(error).__name__)
        return
    zone = spec.zone()
    start = datetime.fromisoformat(status["period"]["start"].replace("Z", "+00:00")).astimezone(zone).isoformat()
    end = datetime.fromisoformat(status["period"]["end"].replace("Z", "+00:00")).astimezone(zone).isoformat()
    for crossed in result.crossed:
        threshold = crossed.threshold
        try:
            runtime.notifier.submit(Crossing(
                namespace=namespace, name=name, threshold=threshold.key, percent=threshold.number,
                basis=threshold.basis, amount=spec.amount, value=float(crossed.value), currency=spec.currency,
                period_start=start, period_end=end, crossed_at=crossed.at, target=Target(url, notify.format)))
        except ValueError as error:
            log.warning("costbudget %s/%s: notification not sent: %s", namespace, name, error)


async def _post_event(runtime: Runtime, body: Mapping[str, Any], crossed: Crossed, status: Mapping[str, Any]) -> None:
    """One Event on the budget for a threshold crossed (Warning from 100 % on, else Normal)."""
    from kubernetes import client

    meta, threshold = body.get("metadata") or {}, crossed.threshold
    what = threshold.basis
    message = (f"{what} {crossed.value:.2f} {status['currency']} reached {threshold.number}% of "
               f"{status['amount']} {status['currency']} (period {status['period']['start']} .. "
               f"{status['period']['end']})")
    event = {
        "metadata": {"generateName": f"{meta.get('name')}.", "namespace": meta.get("namespace")},
        "involvedObject": {"apiVersion": f"{GROUP}/{VERSION}", "kind": "CostBudget", "name": meta.get("name"),
                           "namespace": meta.get("namespace"), "uid": meta.get("uid")},
        "reason": "ForecastThresholdCrossed" if threshold.basis == "forecast" else "ThresholdCrossed",
        "message": message, "type": "Warning" if threshold.number >= 100 else "Normal",
        "firstTimestamp": crossed.at, "lastTimestamp": crossed.at, "count": 1,
        "source": {"component": "kubetally"},
    }
    api: Any = client.CoreV1Api()  # the client accepts a plain dict body
    try:
        await asyncio.wait_for(asyncio.to_thread(api.create_namespaced_event, str(meta.get("namespace")), event,
                                                 _request_timeout=WRITE_TIMEOUT), WRITE_TIMEOUT + 1)
    except Exception as error:  # an Event is best effort: the crossing is in the status
        log.warning("could not post the Event of %s/%s %s: %s", meta.get("namespace"), meta.get("name"),
                    threshold.key, str(error).splitlines()[0] if str(error) else type(error).__name__)


@kopf.on.resume(GROUP, VERSION, PLURAL)
@kopf.on.create(GROUP, VERSION, PLURAL)
@kopf.on.update(GROUP, VERSION, PLURAL, field="spec")
async def changed(name: str, namespace: str | None, body: kopf.Body, memo: kopf.Memo, **_: Any) -> None:
    await recompute(name, namespace or "", body, memo.runtime)


@kopf.on.event(GROUP, VERSION, PLURAL)
def seen(event: kopf.RawEvent, memo: kopf.Memo, **_: Any) -> None:
    """Keep the runtime's registry of budgets current (event handlers add no finalizer)."""
    runtime: Runtime = memo.runtime
    body = event["object"]
    key = (str(body["metadata"].get("namespace", "")), str(body["metadata"]["name"]))
    if event["type"] == "DELETED":
        runtime.budgets.pop(key, None)
        runtime.budget_marks.pop(key, None)
        if runtime.budget_gauges is not None:
            runtime.budget_gauges.forget(*key)
    else:
        runtime.budgets[key] = dict(body)


def is_due(runtime: Runtime, key: tuple[str, str], mark: tuple[int | None, str], now: int) -> bool:
    """A new hour or price since the last computation, or the budget's period over (or never computed)."""
    last = runtime.budget_marks.get(key)
    if last is None:
        return True
    seen_mark, period_end, _ = last
    try:
        ended = period_end is not None and now >= to_epoch(parse_rfc3339(str(period_end), "status.period.end"))
    except SpecError:
        ended = True
    return seen_mark != mark or ended


async def budget_loop(runtime: Runtime, interval_seconds: float = LOOP_SECONDS) -> None:
    """Recompute due budgets (module doc); one failing budget never stops the others."""
    while True:
        await asyncio.sleep(interval_seconds)
        mark, now = _mark(runtime), int(runtime.service.clock())
        for key, body in list(runtime.budgets.items()):
            if not is_due(runtime, key, mark, now):
                continue
            try:
                await recompute(key[1], key[0], body, runtime)
            except Exception:
                log.exception("recomputing costbudget %s/%s failed", *key)


async def list_budgets(runtime: Runtime, namespace: str, name: str | None) -> list[dict[str, Any]]:
    """The CostBudgets of `namespace` (or the one named) for the HTTP API (`budgets.BudgetLister`): spec as
    watched, status as last written by this process (else as watched); a name not known is a 404."""
    out = []
    for (ns, budget_name), body in sorted(runtime.budgets.items()):
        if ns != namespace or (name is not None and budget_name != name):
            continue
        mark = runtime.budget_marks.get((ns, budget_name))
        out.append({"metadata": {"namespace": ns, "name": budget_name}, "spec": body.get("spec") or {},
                    "status": mark[2] if mark is not None else body.get("status") or {}})
    if name is not None and not out:
        raise NoResult(404, "NotFound", f"no costbudget {namespace}/{name}")
    return out
