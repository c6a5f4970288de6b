"""Ask the apiserver who a token belongs to (TokenReview) and what they may do (SubjectAccessReview).

kubetally decides nothing itself: authentication is the apiserver's (every kind of token it accepts
works here: service-account tokens, OIDC, token files, webhooks), authorization is its RBAC (or
whatever authorizer the cluster runs). That keeps one source of truth for "who may see namespace N",
and a RoleBinding an admin writes for `kubectl` is the same one that opens our API.

Fail closed: every review has a deadline, and anything but a well-formed answer (timeout, refused
connection, an error status, 401/403 to our own service account, a body of the wrong shape) raises
`AccessUnavailable` (HTTP 503); never data. Answers, positive and negative, are cached for
`ttl_seconds` (see `kubetally.access.cache` for the trade-off: a revoked RoleBinding or token stops
working within `ttl_seconds` plus the apiserver's own RBAC watch delay). Tokens are cached under their
SHA-256 digest: the process never keeps a bearer token longer than the request that carried it, so a
memory dump, a debugger or a log of the cache shows no credential, and every key is 32 bytes however
long the token.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from typing import Any

import httpx

from kubetally.access.cache import AnswerCache
from kubetally.access.calls import AccessUnavailable, call_json
from kubetally.access.identity import Identity

__all__ = ["COSTS", "METRICS", "AccessUnavailable", "PathCheck", "ResourceCheck", "Reviews", "Visibility"]

TOKEN_REVIEWS = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEWS = "/apis/authorization.k8s.io/v1/subjectaccessreviews"


@dataclass(frozen=True)
class ResourceCheck:
    """May the caller `verb` `resource` (of API `group`, "" = core) in `namespace` ("" = in every
    namespace: a cluster-wide grant)? `name`/`subresource` narrow it to one object."""

    verb: str
    group: str
    resource: str
    namespace: str = ""
    name: str = ""
    subresource: str = ""


@dataclass(frozen=True)
class PathCheck:
    """May the caller `verb` a non-resource URL such as /metrics (kube-rbac-proxy's check)?"""

    path: str
    verb: str = "get"


Check = ResourceCheck | PathCheck

#: Reading cost data: verb get on `costs` of the aggregated API's group (namespace set per check).
COSTS = ResourceCheck(verb="get", group="query.kubetally.io", resource="costs")
#: Scraping /metrics.
METRICS = PathCheck(path="/metrics")


@dataclass(frozen=True)
class Visibility:
    """What a caller may see: `everything` (a cluster-wide grant: every namespace, idle and node rows)
    or only `namespaces`. With `everything`, `namespaces` is every candidate asked about."""

    everything: bool
    namespaces: frozenset[str]


class Reviews:
    """TokenReviews and SubjectAccessReviews over `client` (an httpx client whose base URL is the
    apiserver and whose credentials are kubetally's own: `kubetally.access.kubeapi.api_client`).

    `timeout_seconds` bounds each review end to end; `concurrency` bounds the reviews one `visible`
    call has in flight; `clock` (monotonic seconds) times the caches.
    """

    def __init__(self, client: httpx.AsyncClient, *, ttl_seconds: float = 10.0, max_entries: int = 4096,
                 timeout_seconds: float = 5.0, concurrency: int = 16,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if timeout_seconds <= 0 or concurrency < 1:
            raise ValueError("timeout_seconds must be > 0 and concurrency >= 1")
        self._client = client
        self.timeout_seconds = timeout_seconds
        self.concurrency = concurrency
        self._tokens: AnswerCache[bytes, Identity | None] = AnswerCache(
            ttl_seconds=ttl_seconds, max_entries=max_entries, clock=clock)
        self._decisions: AnswerCache[tuple[Identity, Check], bool] = AnswerCache(
            ttl_seconds=ttl_seconds, max_entries=max_entries, clock=clock)

    async def authenticate(self, token: str) -> Identity | None:
        """The identity a bearer token belongs to, or None when the apiserver rejects it."""
        try:
            digest = hashlib.sha256(token.encode("utf-8")).digest()
        except UnicodeEncodeError:  # lone surrogates: no token the apiserver issues
            return None
        if not token:
            return None
        return await self._tokens.get(digest, lambda: self._token_review(token))

    async def allowed(self, who: Identity, check: Check) -> bool:
        """Whether the apiserver's authorizer allows `who` the `check`."""
        return await self._decisions.get((who, check), lambda: self._access_review(who, check))

    async def visible(self, who: Identity, candidates: Iterable[str], *, check: ResourceCheck = COSTS) -> Visibility:
        """Which of `candidates` (namespaces) `who` may see: one cluster-wide review first (namespace
        ""), which settles it for admins in one call; else one review per candidate, at most
        `concurrency` in flight. Any review that cannot be made fails the whole answer."""
        names = sorted({name for name in candidates if name})
        if await self.allowed(who, replace(check, namespace="")):
            return Visibility(everything=True, namespaces=frozenset(names))
        seen: set[str] = set()
        pending = iter(names)

        async def worker() -> None:
            for name in pending:  # one iterator shared by the workers: each namespace asked once
                if await self.allowed(who, replace(check, namespace=name)):
                    seen.add(name)

        workers = [asyncio.create_task(worker()) for _ in range(min(self.concurrency, len(names)))]
        try:
            await asyncio.gather(*workers)
        finally:
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
        return Visibility(everything=False, namespaces=frozenset(seen))

    async def _token_review(self, token: str) -> Identity | None:
        body = {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview", "spec": {"token": token}}
        try:
            answer = await self._call(TOKEN_REVIEWS, body, what="TokenReview")
        except AccessUnavailable as error:  # the apiserver's message could quote the request
            raise AccessUnavailable(str(error).replace(token, "<token>")) from None
        return identity_of(answer)

    async def _access_review(self, who: Identity, check: Check) -> bool:
        answer = await self._call(ACCESS_REVIEWS, access_review(who, check), what="SubjectAccessReview")
        status = answer.get("status")
        allowed = status.get("allowed") if isinstance(status, dict) else None
        if not isinstance(allowed, bool):
            raise AccessUnavailable("SubjectAccessReview: the answer has no boolean status.allowed")
        return allowed

    async def _call(self, path: str, body: dict[str, Any], *, what: str) -> dict[str, Any]:
        answer = await call_json(self._client, "POST", path, body=body, what=what,
                                 timeout_seconds=self.timeout_seconds)
        if answer is None:  # not reached: only a missing_ok call answers None
            raise AccessUnavailable(f"{what}: no answer")
        return answer


def access_review(who: Identity, check: Check) -> dict[str, Any]:
    """The SubjectAccessReview for `who` and `check`. Empty fields are left out, as the Go client does
    (`omitempty`); a namespace left out of a namespaced check means every namespace."""
    spec: dict[str, Any] = {"user": who.user}
    if who.groups:
        spec["groups"] = list(who.groups)
    if who.uid:
        spec["uid"] = who.uid
    if who.extra:
        spec["extra"] = {key: list(values) for key, values in who.extra}
    if isinstance(check, PathCheck):
        spec["nonResourceAttributes"] = {"path": check.path, "verb": check.verb}
    else:
        attributes = {"namespace": check.namespace, "verb": check.verb, "group": check.group,
                      "resource": check.resource, "subresource": check.subresource, "name": check.name}
        spec["resourceAttributes"] = {key: value for key, value in attributes.items() if value}
    return {"apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview", "spec": spec}


def identity_of(answer: dict[str, Any]) -> Identity | None:
    """The identity in a TokenReview answer; None when not authenticated (the apiserver leaves
    `authenticated` out when false). A body of any other shape is AccessUnavailable."""
    status = answer.get("status")
    if not isinstance(status, dict):
        raise AccessUnavailable("TokenReview: the answer has no status object")
    authenticated = status.get("authenticated", False)
    if not isinstance(authenticated, bool):
        raise AccessUnavailable("TokenReview: status.authenticated is not a boolean")
    if not authenticated:
        return None
    user = status.get("user")
    if not isinstance(user, dict) or not isinstance(user.get("username"), str) or not user["username"]:
        raise AccessUnavailable("TokenReview: authenticated, but status.user.username is missing")
    groups = user.get("groups") or []
    uid = user.get("uid") or ""
    extra = user.get("extra") or {}
    if not (isinstance(groups, list) and all(isinstance(group, str) for group in groups)):
        raise AccessUnavailable("TokenReview: status.user.groups is not a list of strings")
    if not isinstance(uid, str):
        raise AccessUnavailable("TokenReview: status.user.uid is not a string")
    if not (isinstance(extra, dict) and all(isinstance(values, list) and all(isinstance(v, str) for v in values)
                                            for values in extra.values())):
        raise AccessUnavailable("TokenReview: status.user.extra is not a map of string lists")
    return Identity(user=user["username"], groups=tuple(groups), uid=uid, extra=Identity.make_extra(extra))
