"""The HTTP API: ACK's `GET /v2/cost`, Alauda's usage endpoints, /metrics, /healthz, /readyz, and
the same under the aggregated API `query.kubetally.io/v1alpha1` (`api.discovery`).

Views only parse (`api.params`), fence what the caller may see (`api.guard`), ask the service, and
render (`api.payloads`). Every failure is a Kubernetes `Status` object: 400 for bad input (naming
the parameter and an accepted example), 401/403 for callers without identity or permission, 404
for unknown paths, 503 when the metrics store or the Kubernetes API (for the caller's credentials)
cannot be reached, and a bare 500 without details for anything unexpected (logged with its stack
trace, never sent). CSV answers are streamed.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime

import orjson
from aiohttp import web
from multidict import MultiDict, MultiDictProxy, MultiMapping
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from kubetally.access.reviews import AccessUnavailable
from kubetally.api import admission, budget_routes, console, discovery, params, payloads
from kubetally.api.guard import GATE, AccessDenied, Gate, authenticate, fence, may_read_report
from kubetally.api.metrics import Metrics
from kubetally.api.pages import paginate
from kubetally.budgets import BudgetLister, no_budgets
from kubetally.domain.errors import SourceUnavailable, SpecError
from kubetally.domain.scope import Scope
from kubetally.engine.query import CostQuery
from kubetally.objects import ObjectLister
from kubetally.reports import NoResult, ResultFinder, no_results
from kubetally.service import CostAnswer, CostService

log = logging.getLogger(__name__)

SERVICE: web.AppKey[CostService] = web.AppKey("service", CostService)
METRICS: web.AppKey[Metrics] = web.AppKey("metrics", Metrics)
READY: web.AppKey[Callable[[], Awaitable[bool]]] = web.AppKey("ready")
#: One line on the process's known state for /readyz ("ok", "degraded: ..."; `sources.health`).
STATE: web.AppKey[Callable[[], str]] = web.AppKey("state")
#: /readyz answers within this many seconds whatever `ready` does (it should only read memory).
READY_DEADLINE_SECONDS = 1.0
#: Finds CostReport results (`kubetally.reports.ResultFinder`; the operator's is `handlers.results`).
RESULTS: web.AppKey[ResultFinder] = web.AppKey("results")

ALAUDA = "/platform/cost.alauda.io/v1beta1"
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


#: How long writing one answer's body may take (a month by controller at scale L is ~45 MB).
WRITE_DEADLINE_SECONDS = 60.0


def _json(body: object, status: int = 200) -> web.Response:
    """A JSON response; orjson writes a month of namespace rows (7.6 MB) 6× faster than `json`, with the
    same shortest round-tripping floats."""
    return web.Response(body=orjson.dumps(body), status=status, content_type="application/json")


def _status(code: int, reason: str, message: str) -> web.Response:
    return _json(payloads.status(code, reason, message), status=code)


@web.middleware
async def errors_and_timing(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Map every failure to a Status, and time every request."""
    started = time.perf_counter()
    route = request.match_info.route.resource.canonical if request.match_info.route.resource else "unknown"
    try:
        response = await handler(request)
    except SpecError as error:
        response = _status(400, "BadRequest", str(error))
    except SourceUnavailable as error:
        response = _status(503, "ServiceUnavailable", f"the metrics store is unavailable: {error}")
    except AccessDenied as denied:
        response = _status(denied.code, payloads.REASONS[denied.code], denied.message)
        if denied.code == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="kubetally"'
    except AccessUnavailable as error:  # fail closed: no answer without a checked caller
        response = _status(503, "ServiceUnavailable", f"cannot check the caller's credentials: {error}")
    except web.HTTPException as error:
        reason = {404: "NotFound", 405: "MethodNotAllowed"}.get(error.status, "BadRequest")
        response = _status(error.status, reason, error.reason or reason)
    except ConnectionResetError:  # the client left mid-answer (aiohttp's ClientConnectionResetError is one):
        response = web.Response(status=499)  # nothing to log; 499 as nginx counts a closed request
    except Exception:
        log.exception("unexpected error answering %s", request.path)
        response = _status(500, "InternalError", "an unexpected error occurred; it has been logged")
    metrics = request.app[METRICS]
    code = str(response.status)
    metrics.request_seconds.labels(route, code).observe(time.perf_counter() - started)
    if response.status >= 400:
        metrics.errors.labels(route, code).inc()
    return response


def _now(request: web.Request) -> datetime:
    return datetime.fromtimestamp(request.app[SERVICE].clock(), UTC)


#: Parameters kubectl adds to `get --raw` (`--request-timeout` becomes `timeout=`): not ours, ignored.
_KUBECTL_PARAMETERS = frozenset({"timeout"})


def _aggregated(request: web.Request, *, drop: frozenset[str] = frozenset()) -> MultiMapping[str]:
    """The query parameters of a request, without kubectl's own (and `drop`) on the aggregated API's
    paths; other paths keep every parameter, so that an unknown one is refused as ever."""
    if not request.path.startswith(f"/apis/{discovery.GROUP}/"):
        return request.query
    ignored = _KUBECTL_PARAMETERS | drop
    return MultiDictProxy(MultiDict((k, v) for k, v in request.query.items() if k not in ignored))


async def cost(request: web.Request) -> web.StreamResponse:
    """`/v2/cost`, and `…/[namespaces/{namespace}/]costs[/cost]` of the aggregated API. Who may see
    what is decided before the parameters are read: a caller without a grant learns nothing, not
    even which of their parameters are wrong."""
    service = request.app[SERVICE]
    seen = await fence(request, namespace=request.match_info.get("namespace"))
    query_params = _aggregated(request)
    parsed = params.parse_cost_params(
        query_params,
        [key for key, _ in query_params.items()],
        now=_now(request),
        resolution_seconds=service.config.resolution_seconds,
    )
    query = replace(parsed.query, filter=Scope.of_viewer(parsed.query.filter, seen.namespaces).filter,
                    ratio_within_answer=not seen.everything)
    # JSON bodies are written by DuckDB (`payloads.cost_sets_sql`); CSV streams row objects. The turn
    # lasts until the body is written, so at most `--max-queries` answers are in memory at once.
    render = payloads.cost_sets_sql if parsed.format == "json" else None
    async with service.turn():
        answer = await service.cost(query, parsed.custom_weights, render=render)
        return await _answer(request, answer, query, parsed.format)


async def report_result(request: web.Request) -> web.StreamResponse:
    """A CostReport's whole result (`status.resultPath`), JSON or `?format=csv`: the operator's last
    computation, or after a restart the same numbers recomputed from the ledger (`handlers.results`)."""
    namespace, name = request.match_info["namespace"], request.match_info["name"]
    await may_read_report(request, namespace, name)
    format_ = request.query.get("format", "json")
    if format_ not in ("json", "csv"):
        raise SpecError("format", f"{format_!r} is not a format; accepted: json, csv")
    try:
        view = await request.app[RESULTS](namespace, name)
    except NoResult as missing:
        response = _status(missing.code, missing.reason, missing.message)
        if missing.retry_after is not None:
            response.headers["Retry-After"] = str(missing.retry_after)
        return response
    return await _answer(request, view.answer, view.query, format_, view.warnings)


async def _answer(
    request: web.Request, answer: CostAnswer, query: CostQuery, format_: str, notes: Sequence[str] = ()
) -> web.StreamResponse:
    """Render an answer as /v2/cost JSON, or stream it as CSV."""
    if format_ == "csv":
        response = web.StreamResponse(headers={"Content-Type": "text/csv; charset=utf-8"})
        await response.prepare(request)
        for number, line in enumerate(payloads.cost_csv_lines(answer.table), start=1):
            await response.write(line.encode())
            if number % 1000 == 0:
                await asyncio.sleep(0)  # let /healthz and other requests in between chunks of a big answer
        await response.write_eof()
        return response
    warnings = list(dict.fromkeys([*answer.plan.warnings, *_warnings(answer.coverage, answer.table.price_source),
                                   *notes]))

    def render() -> bytes:
        steps = [(step.start_epoch(), step.end_epoch()) for step in query.sets]
        return orjson.dumps(payloads.cost_json(answer.table, window=query.window, steps=query.sets,
                                               coverage=answer.coverage, warnings=warnings,
                                               step_coverage=answer.step_coverage(steps)))

    # Off the event loop: 12k pod rows take a second or more to render on a busy machine, which would
    # hold up /healthz and every other request (tests/load/test_concurrency.py).
    body = await asyncio.to_thread(render)
    return await _written(request, body)


async def _written(request: web.Request, body: bytes) -> web.StreamResponse:
    """A JSON body written before this returns (the caller's turn covers it), within
    `WRITE_DEADLINE_SECONDS`: a client that stops reading loses its connection, not everyone their turn."""
    response = web.StreamResponse(headers={"Content-Type": "application/json"})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        async with asyncio.timeout(WRITE_DEADLINE_SECONDS):
            await response.write(body)
    except TimeoutError:
        log.warning("%s: the client read %d bytes too slowly; connection closed after %.0f s", request.path,
                    len(body), WRITE_DEADLINE_SECONDS)
        if request.transport is not None:
            request.transport.close()
        return response
    await response.write_eof()
    return response


def _warnings(coverage: float, price_source: str) -> list[str]:
    out = []
    if coverage < 1.0:
        out.append(f"data coverage of the window is {coverage:.4f}: hours without data are not cost 0")
    if price_source == "opencost-default":
        out.append("no CostWeights named 'default': OpenCost's public default prices (USD) apply")
    return out


async def usage(request: web.Request) -> web.StreamResponse:
    """Alauda's usage routes, and `…/[namespaces/{namespace}/]costs/usage[?project=p]` of the
    aggregated API (where the project of Alauda's path is the `project` parameter)."""
    project, given = request.match_info.get("project"), request.query.getall("project", [])
    if request.path.startswith(f"/apis/{discovery.GROUP}/"):
        project = given[0] if given else None
    seen = await fence(request, namespace=request.match_info.get("namespace"), project=project)
    if len(given) > 1:
        raise SpecError("project", f"project is given {len(given)} times; give it once, e.g. project=my-project")
    query_params = _aggregated(request, drop=frozenset({"project"}))
    parsed = params.parse_usage_params(query_params, [key for key, _ in query_params.items()], project=project)
    scoped = Scope.of_viewer(parsed.query.filter, seen.namespaces).filter
    rows = await request.app[SERVICE].usage(replace(parsed.query, filter=scoped))
    total, page = paginate(rows, parsed.current_page, parsed.page_size)
    return _json(payloads.usage_json(page, total, parsed.current_page, parsed.page_size))


async def healthz(request: web.Request) -> web.StreamResponse:
    return web.Response(text="ok")


async def readyz(request: web.Request) -> web.StreamResponse:
    """200 with the known state ("ok", or "degraded: ..." while the store does not answer and answers
    come from the ledger), 503 until the state is known. Never calls the store inline."""
    try:
        async with asyncio.timeout(READY_DEADLINE_SECONDS):
            ready = await request.app[READY]()
    except TimeoutError:
        ready = False
    state = request.app[STATE]()
    if ready:
        return web.Response(text=state or "ok")
    return _status(503, "ServiceUnavailable",
                   f"not ready: {state or 'the metrics store or the ledger is not reachable yet'}")


async def group(request: web.Request) -> web.StreamResponse:
    return _json(discovery.api_group())


async def resources(request: web.Request) -> web.StreamResponse:
    return _json(discovery.resource_list())


async def metrics(request: web.Request) -> web.StreamResponse:
    body = generate_latest(request.app[METRICS].registry)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def not_found(request: web.Request) -> web.StreamResponse:
    """404 for an unknown path; 405 (with `Allow`) for another method on a known path, which the
    catch-all route would otherwise also call unknown."""
    for resource in request.app.router.resources():
        if resource is not request.match_info.route.resource:
            match, allowed = await resource.resolve(request)
            if match is None and allowed:
                methods = ", ".join(sorted(allowed))
                response = _status(405, "MethodNotAllowed", f"{request.method} is not allowed on {request.path}; "
                                                            f"allowed: {methods}")
                response.headers["Allow"] = methods
                return response
    return _status(
        404,
        "NotFound",
        f"no route {request.path}; routes: /v2/cost, {ALAUDA}/costs/usage, "
        f"{ALAUDA}/projects/{{project}}/costs/usage, /apis/{discovery.GROUP_VERSION}/[namespaces/{{namespace}}/]"
        "costs[/cost|/usage], /ui/ (the web console), /metrics, /healthz, /readyz",
    )


async def _no_objects(kind: str, namespaces: frozenset[str] | None) -> list[dict[str, object]]:
    return []


def build_app(
    service: CostService,
    metrics_: Metrics,
    ready: Callable[[], Awaitable[bool]],
    results: ResultFinder = no_results,
    state: Callable[[], str] = lambda: "",
    gate: Gate | None = None,
    budgets: BudgetLister = no_budgets,
    objects: ObjectLister | None = None,
) -> web.Application:
    """The aiohttp application over `service`; `results` finds CostReport results (operator mode);
    `ready` and `state` say from memory whether and how /readyz is ready (`StoreHealth`); `gate`
    checks every caller (None: open, for `kubetally serve` on loopback)."""
    # Request lines up to 128 KiB reach our own parameter checks (which cap each value at 16 KiB and
    # answer with a Status); aiohttp's default of 8 KiB would answer a long filter with a bare 400.
    app = web.Application(
        middlewares=[errors_and_timing, authenticate], handler_args={"max_line_size": 131072, "max_field_size": 131072}
    )
    app[SERVICE] = service
    app[METRICS] = metrics_
    app[READY] = ready
    app[STATE] = state
    app[RESULTS] = results
    app[budget_routes.BUDGETS] = budgets
    app[console.OBJECTS] = objects if objects is not None else _no_objects
    app[GATE] = gate
    app.router.add_get("/v2/cost", cost)
    app.router.add_get(f"{ALAUDA}/costs/usage", usage)
    app.router.add_get(f"{ALAUDA}/projects/{{project}}/costs/usage", usage)
    app.router.add_get("/apis/kubetally.io/v1alpha1/namespaces/{namespace}/costreports/{name}/result", report_result)
    query = f"/apis/{discovery.GROUP_VERSION}"
    app.router.add_get(f"/apis/{discovery.GROUP}", group)
    app.router.add_get(query, resources)
    for prefix in (query, f"{query}/namespaces/{{namespace}}"):
        app.router.add_get(f"{prefix}/costs", cost)  # DESIGN §9: the collection answers /v2/cost parameters
        app.router.add_get(f"{prefix}/costs/cost", cost)
        app.router.add_get(f"{prefix}/costs/usage", usage)
    app.router.add_get(f"{query}/namespaces/{{namespace}}/costreports/{{name}}/result", report_result)
    budget_routes.add_routes(app, query)
    console.add_routes(app, query)
    app.router.add_post(admission.PATH, admission.handler(lambda: service.clock(),
                                                          lambda: service.config.resolution_seconds))
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_route("*", "/{tail:.*}", not_found)
    return app
