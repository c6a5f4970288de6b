"""The web console: its files under `/ui/`, and the lists of billing objects it shows.

Files (`kubetally.console.STATIC`): `/ui/` is the page, `/ui/<file>` our script and style,
`/ui/settings.json` whether to ask for a token, `/ui/vendor/<file>` the charting library (ECharts,
installed by `scripts/console-assets.py`, with its licence at `/ui/vendor/echarts-LICENSE.txt`).
They are the same for everyone and hold no data, so they are open like /healthz
(`api.guard.OPEN_PREFIXES`); the page reads every number from the APIs below and `/v2/cost` with the
caller's own token, so a tenant's page is fenced exactly as the tenant's API calls are. Every file is
sent with a Content-Security-Policy allowing only this origin (`'self'`): the page can load no
script, style, font or image from elsewhere, nor send data there. A file that is missing because
the assets were never installed is a 503 naming the script, not a 404.

Lists (`objects.ObjectLister`), fenced like the cost data (`api.guard.fence`):
- `GET …/v1alpha1/costreports`, `…/namespaces/{ns}/costreports`: CostReportList of the namespaces the
  caller may see the costs of (the report's status: conditions and totals);
- `GET …/v1alpha1/costbudgets`: CostBudgetList likewise (`…/namespaces/{ns}/costbudgets` is
  `api.budget_routes`);
- `GET …/v1alpha1/costweights`: CostWeightsList, the prices in force; any caller with a cost grant
  may read them, since they explain every number that caller sees.
"""

from __future__ import annotations

import orjson
from aiohttp import web

from kubetally.api import payloads
from kubetally.api.guard import GATE, fence
from kubetally.console import STATIC, VENDOR
from kubetally.objects import KINDS, ObjectLister
from kubetally.reports import NoResult

OBJECTS: web.AppKey[ObjectLister] = web.AppKey("objects")
PREFIX = "/ui"
GROUP_VERSION = "query.kubetally.io/v1alpha1"

#: Only this origin: no external script, style, font, image or connection; no framing.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
                               "connect-src 'self'; font-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
                               "form-action 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}
_TYPES = {".html": "text/html; charset=utf-8", ".js": "text/javascript; charset=utf-8",
          ".css": "text/css; charset=utf-8", ".txt": "text/plain; charset=utf-8", ".svg": "image/svg+xml"}


def _file(relative: str) -> web.StreamResponse:
    """A file of the console, or a Status: 404 for a name that is not one, 503 when assets are missing."""
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") or part.startswith(".") for part in parts) or len(parts) > 2 \
            or (len(parts) == 2 and parts[0] != "vendor"):
        raise web.HTTPNotFound(reason=f"no console file {relative!r}; the console is {PREFIX}/")
    path = STATIC.joinpath(*parts)
    kind = _TYPES.get(path.suffix)
    if kind is None or not path.is_file():
        if parts[0] == "vendor" and kind is not None:
            body = payloads.status(503, "ServiceUnavailable",
                                   f"the console's charting library is not installed ({VENDOR}); run "
                                   "scripts/console-assets.py (scripts/setup.sh does) and restart")
            return web.Response(body=orjson.dumps(body), status=503, content_type="application/json")
        raise web.HTTPNotFound(reason=f"no console file {relative!r}; the console is {PREFIX}/")
    return web.Response(body=path.read_bytes(), headers={**HEADERS, "Content-Type": kind})


async def settings(request: web.Request) -> web.StreamResponse:
    """Whether the page must ask for a token (this process checks callers) before it calls the APIs, and
    which lists this process has (`kubetally serve` has no CostReports or CostBudgets), so that the
    page never makes a call it knows will be refused."""
    lists = ["costweights"]  # every process has prices; the others are asked for no namespace, which
    for kind in ("costreports", "costbudgets"):  # reveals nothing but whether this process has the kind
        try:
            await request.app[OBJECTS](kind, frozenset())
        except NoResult:
            continue
        lists.append(kind)
    body = orjson.dumps({"signIn": request.app[GATE] is not None, "lists": lists})
    return web.Response(body=body, headers={**HEADERS, "Content-Type": "application/json"})


async def page(request: web.Request) -> web.StreamResponse:
    return _file("index.html")


async def asset(request: web.Request) -> web.StreamResponse:
    return _file(request.match_info["name"])


async def to_page(request: web.Request) -> web.StreamResponse:
    """`/ui` → `/ui/`, keeping the query (a deep link typed without the slash still works)."""
    target = f"{PREFIX}/" + (f"?{request.query_string}" if request.query_string else "")
    return web.Response(status=308, headers={"Location": target})  # not raised: the error middleware makes
    # every raised HTTPException a Status


async def objects(request: web.Request) -> web.StreamResponse:
    kind = request.match_info["kind"]
    namespace = request.match_info.get("namespace")
    seen = await fence(request, namespace=namespace)
    try:
        items = await request.app[OBJECTS](kind, None if kind == "costweights" else seen.namespaces)
    except NoResult as missing:
        return web.Response(body=orjson.dumps(payloads.status(missing.code, missing.reason, missing.message)),
                            status=missing.code, content_type="application/json")
    body = {"apiVersion": GROUP_VERSION, "kind": f"{KINDS[kind]}List", "items": items}
    return web.Response(body=orjson.dumps(body), content_type="application/json")


def add_routes(app: web.Application, query_prefix: str) -> None:
    app.router.add_get(PREFIX, to_page)
    app.router.add_get(f"{PREFIX}/", page)
    app.router.add_get(f"{PREFIX}/settings.json", settings)
    app.router.add_get(f"{PREFIX}/{{name:.+}}", asset)
    app.router.add_get(f"{query_prefix}/{{kind:costreports|costbudgets|costweights}}", objects)
    app.router.add_get(f"{query_prefix}/namespaces/{{namespace}}/{{kind:costreports}}", objects)
