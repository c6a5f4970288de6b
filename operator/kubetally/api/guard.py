"""Who is asking, and what they may see: authentication and authorization of every HTTP route.

Why here, in the process: the operator's API is the one tenants are given, and a cost API without
authorization is OpenCost's weakness (anyone who reaches the Service reads every namespace). The
checks are Kubernetes' own (kube-rbac-proxy's model, in-process): a bearer token is checked with a
TokenReview, permissions with SubjectAccessReviews (`kubetally.access.reviews`), so cluster admins
grant cost views with ordinary RBAC. Every failure fails closed.

Identity (in this order):
1. a TLS connection whose client certificate verifies against the front proxy's CA (the
   `extension-apiserver-authentication` ConfigMap) with an allowed CN: the kube-apiserver proxying
   the aggregated API; the user and groups come from its `X-Remote-*` headers;
2. otherwise `Authorization: Bearer <token>`, reviewed by the Kubernetes API. `X-Remote-*` headers
   on such a connection are ignored: anyone can send them.
No identity → 401; the Kubernetes API not answering → 503 (`AccessUnavailable`), never data.

Routes:
- `/healthz`, `/readyz`: open, they say only ok / not ready.
- `/ui`, `/ui/*` (`api.console`): open, the web console's static files; its data comes from the
  routes below, called with the caller's token.
- `/validate` (`api.admission`): open, the kube-apiserver's admission webhook calls come without
  credentials; it judges the object it is sent and reveals nothing else.
- `/metrics`: SAR on the non-resource URL `/metrics`, verb get (kube-rbac-proxy's rule).
- discovery of `query.kubetally.io`: open (static documents; the APIService availability check
  of the kube-apiserver reads them without a user).
- cost and usage data: `fence()`: the namespaces the caller may `get` `costs.query.kubetally.io` in;
  a cluster-wide grant sees everything (idle and node rows as they are). A partial viewer gets the
  answer for their filter AND `namespace in V` (`domain.scope.Scope.of_viewer`) with costRatio
  within the answer; none visible → 403.
- a CostReport's result: SAR get `costreports/result` in `query.kubetally.io` on the report
  (namespace, name): the very check the kube-apiserver makes on the aggregated path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field

from aiohttp import web

from kubetally.access.identity import FrontProxy, Identity
from kubetally.access.reviews import PathCheck, ResourceCheck, Reviews
from kubetally.access.tls import peer_common_name
from kubetally.api.discovery import GROUP as QUERY_GROUP
from kubetally.api.discovery import VERSION as QUERY_VERSION

#: The routes anyone may call: health, and the discovery documents of the aggregated API (static,
#: the same for everyone; the kube-apiserver's APIService availability check reads them with no user).
OPEN = frozenset({"/healthz", "/readyz", f"/apis/{QUERY_GROUP}", f"/apis/{QUERY_GROUP}/{QUERY_VERSION}",
                  "/validate"})
#: Path prefixes anyone may call: the web console's files (`api.console`), the same for everyone and
#: holding no data; the page reads its numbers from the checked routes with the caller's own token.
OPEN_PREFIXES = ("/ui/",)
IDENTITY: web.RequestKey[Identity] = web.RequestKey("identity", Identity)
#: How long the namespaces known to the ledger are reused before they are read again (seconds).
NAMESPACES_TTL_SECONDS = 30.0

#: Namespace → the projects it was seen in (`DuckDBLedger.namespaces`), read in a worker thread.
NamespaceSource = Callable[[], Mapping[str, frozenset[str]]]


class AccessDenied(Exception):
    """401 (who are you?) or 403 (you may not): a Status with `message` saying what is needed."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass(frozen=True, slots=True)
class Fence:
    """What a caller may see of the data: the namespaces the answer is fenced to (None: no fence),
    and whether the caller may see the whole cluster (else costRatio is within the answer)."""

    namespaces: frozenset[str] | None
    everything: bool = True


@dataclass
class Gate:
    """The checks of one process: its reviews client, the front proxy's settings (None: the
    aggregated API is not served) and the namespaces its ledger knows."""

    reviews: Reviews
    front_proxy: FrontProxy | None
    known_namespaces: NamespaceSource
    clock: Callable[[], float] = time.monotonic
    _cached: tuple[float, Mapping[str, frozenset[str]]] | None = field(default=None, init=False)
    _lock: asyncio.Lock = field(default_factory=asyncio.Lock, init=False)

    async def namespaces(self) -> Mapping[str, frozenset[str]]:
        """The ledger's namespaces, read at most every NAMESPACES_TTL_SECONDS (one reader at a time)."""
        async with self._lock:
            if self._cached is None or self.clock() - self._cached[0] > NAMESPACES_TTL_SECONDS:
                self._cached = (self.clock(), await asyncio.to_thread(self.known_namespaces))
            return self._cached[1]


GATE: web.AppKey[Gate | None] = web.AppKey("gate")

_GRANT = ("ask a cluster admin for `get` on `costs` in API group query.kubetally.io (ClusterRole "
          "kubetally-cost-viewer, bound with a RoleBinding in the namespace)")


def _costs(namespace: str = "") -> ResourceCheck:
    return ResourceCheck(verb="get", group=QUERY_GROUP, resource="costs", namespace=namespace)


async def _identity(request: web.Request, gate: Gate) -> Identity:
    ssl_object = request.transport.get_extra_info("ssl_object") if request.transport is not None else None
    if gate.front_proxy is not None and ssl_object is not None:
        name = peer_common_name(ssl_object)
        if name is not None and gate.front_proxy.accepts(name):
            who = gate.front_proxy.identity(request.headers.items())
            if who is None:
                raise AccessDenied(401, "the front proxy named no user")
            return who
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AccessDenied(401, "no bearer token: send `Authorization: Bearer <token>` with a Kubernetes token "
                                "(a service account's, or your kubeconfig's), or use the aggregated API "
                                f"/apis/{QUERY_GROUP}/{QUERY_VERSION} through the kube-apiserver")
    who = await gate.reviews.authenticate(token.strip())
    if who is None:
        raise AccessDenied(401, "the Kubernetes API did not accept the bearer token (TokenReview)")
    return who


@web.middleware
async def authenticate(request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
                       ) -> web.StreamResponse:
    """Set the caller's identity on every request but the open routes; /metrics is authorized here."""
    gate = request.app[GATE]
    if gate is None or request.path in OPEN or request.path == "/ui" or request.path.startswith(OPEN_PREFIXES):
        return await handler(request)
    who = await _identity(request, gate)
    request[IDENTITY] = who
    if request.path == "/metrics" and not await gate.reviews.allowed(who, PathCheck("/metrics")):
        raise AccessDenied(403, f"{who.user} may not get /metrics; ask for the non-resource URL /metrics, verb get "
                                "(ClusterRole kubetally-metrics-reader)")
    return await handler(request)


async def fence(request: web.Request, *, namespace: str | None = None, project: str | None = None) -> Fence:
    """What the caller may see of a data route. `namespace` (a namespaced path) fences to it and
    needs a grant there; `project` (the Alauda project route) counts only the project's namespaces.

    Without a gate (`kubetally serve` on loopback, open) only the path's namespace fences."""
    gate = request.app[GATE]
    if gate is None:
        return Fence(None if namespace is None else frozenset({namespace}))
    who = request[IDENTITY]
    everything = await gate.reviews.allowed(who, _costs())
    if namespace is not None:
        if not everything and not await gate.reviews.allowed(who, _costs(namespace)):
            raise AccessDenied(403, f"{who.user} may not see the cost of namespace {namespace}; {_GRANT}")
        return Fence(frozenset({namespace}), everything)
    if everything:
        return Fence(None)
    known = await gate.namespaces()
    candidates = [ns for ns, projects in known.items() if project is None or project in projects]
    visible = await gate.reviews.visible(who, candidates, check=_costs())
    seen = frozenset(candidates) if visible.everything else visible.namespaces & frozenset(candidates)
    if not seen:
        where = f" of project {project}" if project is not None else ""
        raise AccessDenied(403, f"{who.user} may not see the cost of any namespace{where}; {_GRANT}")
    return Fence(seen, everything=False)


async def may_read_report(request: web.Request, namespace: str, name: str) -> None:
    """Raise 403 unless the caller may get `costreports/result` (query.kubetally.io) `name` in `namespace`."""
    gate = request.app[GATE]
    if gate is None:
        return
    who = request[IDENTITY]
    check = ResourceCheck(verb="get", group=QUERY_GROUP, resource="costreports", subresource="result",
                          namespace=namespace, name=name)
    if not await gate.reviews.allowed(who, check):
        raise AccessDenied(403, f"{who.user} may not read the result of costreport {namespace}/{name}; ask for "
                                f"`get` on costreports/result in API group {QUERY_GROUP} in {namespace} "
                                "(ClusterRole kubetally-cost-viewer)")
