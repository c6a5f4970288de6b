"""Who asks, by which route, for what: a campaign request placed for one caller on one route.

Why: the same randomised request (`tests.campaign.requests.Generator`) is sent by every caller on every
route, so the operator's live parts and the oracle's priced pieces are shared, and each caller's answer
is checked against what that caller may see (`tests.access.fence`).

Routes:
- `direct`: HTTPS to the operator's pod IP with `Authorization: Bearer <token>`, on the campaign's own
  paths (`/v2/cost`, Alauda `costs/usage` and `projects/{project}/costs/usage`).
- `aggregated`: the kube-apiserver's URL with the caller's token; the apiserver authorizes the path
  itself, then proxies to the operator with its front-proxy client certificate. Partial viewers (and
  callers without any grant) use `/apis/query.kubetally.io/v1alpha1/namespaces/<ns>/costs/cost|usage`
  (<ns> one of theirs 85% of the time, else any other namespace of the cluster: 403 from the
  apiserver); the cost admin the cluster paths `.../costs/cost` and `.../costs/usage[?project=p]`
  half the time and a namespaced path otherwise.

Expected outcome: callers without any grant get 403 on every data request; a partial viewer gets 403
where the scope is empty (the Alauda project route of a project with none of its namespaces), else the
oracle's answer fenced to its scope; the scope of a namespaced path is that one namespace.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, replace

from tests.campaign.requests import V2, Case, Request, Usage

API = "/apis/query.kubetally.io/v1alpha1"
DIRECT, AGGREGATED = "direct", "aggregated"
#: Share of a partial viewer's namespaced requests that name a namespace outside its grants.
OUTSIDE = 0.15


@dataclass(frozen=True)
class Caller:
    name: str
    token: str
    grants: frozenset[str] | None  # None: sees everything (a cluster-wide grant); empty: no grant at all


@dataclass
class Placed(Request):
    """A campaign request as one caller sends it on one route, with what must come back."""

    route: str = DIRECT
    scope: frozenset[str] | None = None  # the namespaces the answer may hold (None: all)
    forbidden: bool = False  # 403 expected

    @property
    def api(self) -> str:
        if isinstance(self.spec, V2):
            kind = "v2-csv" if self.spec.csv else "v2-json"
        else:
            kind = "alauda-project" if "/projects/" in self.path or ("project", self.spec.project) in self.params \
                else "alauda"
        if "/namespaces/" in self.path:
            kind += "-ns"
        return kind


class Placement:
    """Places the cases of one caller on one route; draws (the namespace of a namespaced path, cluster or
    namespaced for the admin) come from a random.Random seeded by (seed, caller, route)."""

    def __init__(self, seed: int, caller: Caller, route: str, namespaces: tuple[str, ...],
                 projects: dict[str, frozenset[str]]) -> None:
        self.caller, self.route = caller, route
        self.rng = random.Random(f"{seed}:{caller.name}:{route}")
        self.namespaces, self.projects = namespaces, projects

    @property
    def label(self) -> str:
        return f"{self.caller.name}/{self.route}"

    def place(self, case: Case) -> Case:
        grants = self.caller.grants
        if self.route == DIRECT:
            return Case(case.kind, [self._direct(request) for request in case.requests])
        if grants is None and self.rng.random() < 0.5:
            return Case(case.kind, [self._cluster_path(request) for request in case.requests])
        mine = sorted(grants or ())
        others = [ns for ns in self.namespaces if ns not in mine]
        namespace = self.rng.choice(mine if mine and (self.rng.random() >= OUTSIDE or not others) else others)
        if grants is None:
            namespace = self.rng.choice(self.namespaces)
        return Case(case.kind, [self._namespaced(request, namespace) for request in case.requests])

    def _expect(self, request: Request, path: str, params: list[tuple[str, str]], spec: V2 | Usage,
                scope: frozenset[str] | None) -> Placed:
        grants = self.caller.grants
        if grants is not None:  # a partial viewer, or no grant at all
            scope = grants if scope is None else scope & grants
        return Placed(path, params, spec, curl=request.curl, route=self.route, scope=scope,
                      forbidden=scope is not None and not scope)

    def _direct(self, request: Request) -> Placed:
        scope = None
        if isinstance(request.spec, Usage) and request.spec.project is not None:
            scope = self.projects.get(request.spec.project, frozenset())
            if self.caller.grants is None:
                scope = None  # the admin's project route is today's answer (a ghost project: no rows)
        return self._expect(request, request.path, list(request.params), request.spec, scope)

    def _cluster_path(self, request: Request) -> Placed:
        params = list(request.params)
        spec = request.spec
        if isinstance(spec, V2):
            return self._expect(request, f"{API}/costs/cost", params, spec, None)
        if spec.project is not None:
            params.append(("project", spec.project))
        return self._expect(request, f"{API}/costs/usage", params, spec, None)

    def _namespaced(self, request: Request, namespace: str) -> Placed:
        params = list(request.params)
        spec = request.spec
        scope = frozenset({namespace})
        if isinstance(spec, V2):
            return self._expect(request, f"{API}/namespaces/{namespace}/costs/cost", params, spec, scope)
        if spec.project is not None:  # the namespaced usage path takes no project: name it as the object
            if spec.kind == "project" and not any(key == "name" for key, _ in params):
                params.append(("name", spec.project))
            spec = replace(spec, project=None)
        return self._expect(request, f"{API}/namespaces/{namespace}/costs/usage", params, spec, scope)
