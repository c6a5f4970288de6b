"""A fake Kubernetes API for the reviews (an httpx.MockTransport handler) and a hand-driven clock."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx

TOKEN_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"

#: token → the user block of an accepting TokenReview.
USERS: dict[str, dict[str, Any]] = {
    "tok-alice": {"username": "alice", "uid": "u-1", "groups": ["team-a", "system:authenticated"],
                  "extra": {"scopes": ["view", "cost"]}},
    "tok-bob": {"username": "bob", "groups": ["system:authenticated"]},
    "tok-carol": {"username": "carol"},
}


class FakeClock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


class FakeKube:
    """Answers TokenReviews from USERS and SubjectAccessReviews from `grants` (user → namespaces where
    anything is allowed, "" = cluster-wide; `paths`: user → non-resource paths). Records every request
    body, counts requests in flight (`peak` = the most at once) and waits `delay` seconds in each."""

    def __init__(self, grants: dict[str, set[str]] | None = None, paths: dict[str, set[str]] | None = None,
                 delay: float = 0.0) -> None:
        self.grants = grants or {}
        self.paths = paths or {}
        self.delay = delay
        self.bodies: list[dict[str, Any]] = []
        self.in_flight = 0
        self.peak = 0
        #: namespace → a response to give instead of the review's answer.
        self.broken: dict[str, httpx.Response] = {}

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(base_url="https://kube.test:6443", transport=httpx.MockTransport(self))

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        body = json.loads(request.content)
        self.bodies.append(body)
        self.in_flight += 1
        self.peak = max(self.peak, self.in_flight)
        try:
            if self.delay:
                await asyncio.sleep(self.delay)
            if request.url.path == TOKEN_PATH:
                user = USERS.get(body["spec"]["token"])
                status = {"authenticated": True, "user": user} if user else {
                    "user": {}, "error": "[invalid bearer token, token lookup failed]"}
                return httpx.Response(201, json={**body, "status": status})
            assert request.url.path == ACCESS_PATH, request.url.path
            spec = body["spec"]
            if "nonResourceAttributes" in spec:
                allowed = spec["nonResourceAttributes"]["path"] in self.paths.get(spec["user"], set())
            else:
                namespace = spec["resourceAttributes"].get("namespace", "")
                if namespace in self.broken:
                    return self.broken[namespace]
                granted = self.grants.get(spec["user"], set())
                allowed = "" in granted or (namespace != "" and namespace in granted)
            verdict: dict[str, Any] = {"allowed": allowed}
            if not allowed:
                verdict["reason"] = "no RBAC policy matched"
            return httpx.Response(201, json={**body, "status": verdict})
        finally:
            self.in_flight -= 1

    def count(self, path_kind: str) -> int:
        kind = {"token": "TokenReview", "access": "SubjectAccessReview"}[path_kind]
        return sum(1 for body in self.bodies if body["kind"] == kind)
