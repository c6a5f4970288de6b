"""No answer from a damaged ledger: the middleware that refuses them with a 503 Status.

Why: a ledger that failed `ledger.verify` (or a read of a damaged block) must never be served as
if whole (issue 19). The refusal is decided from memory (`DuckDBLedger.failure`), per request, on
every path except those that do not read the ledger: /healthz, /readyz (which says why), /metrics
(`kubetally_ledger_damaged`), the admission webhook, API discovery and the web console's files
(whose page then shows the refusals' messages). A reader of the ledger
that raises `LedgerError` on its own (a block first found damaged mid-request) gets the same 503.

It is added innermost (after authentication), so a caller without a grant learns nothing about
the ledger either.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import orjson
from aiohttp import web
from aiohttp.typedefs import Middleware

from kubetally.api import admission, console, discovery, payloads
from kubetally.ledger.errors import LedgerError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_OPEN = frozenset({"/healthz", "/readyz", "/metrics", admission.PATH, f"/apis/{discovery.GROUP}",
                   f"/apis/{discovery.GROUP_VERSION}"})


def _console(path: str) -> bool:
    """The web console's files (`api.console`): they read no ledger, and the page shows the refusals."""
    return path == console.PREFIX or path.startswith(console.PREFIX + "/")


def refusal(error: LedgerError) -> web.Response:
    body = payloads.status(503, "ServiceUnavailable", f"the ledger cannot answer: {error}")
    return web.Response(body=orjson.dumps(body), status=503, content_type="application/json",
                        headers={"Retry-After": "60"})


def ledger_guard(failure: Callable[[], LedgerError | None]) -> Middleware:
    """The middleware over `failure` (the ledger's current failure, None while it is whole)."""

    @web.middleware
    async def guard(request: web.Request, handler: Handler) -> web.StreamResponse:
        found = failure()
        if found is not None and request.path.rstrip("/") not in _OPEN and not _console(request.path):
            return refusal(found)
        try:
            return await handler(request)
        except LedgerError as error:
            return refusal(error)

    return guard
