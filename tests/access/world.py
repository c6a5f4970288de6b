"""The access tier's world: one printed seed fixes the cluster, the server's clock, the users and every query.

Why a world of its own (not the campaign's): the tier runs ~10k queries through a real kube-apiserver and a
real operator on 2 cores in a few minutes, so the cluster is small (3 nodes, ~20 pods, 30 hours before the
server's starting instant and 2 after it), while still having what authorization must get right: three
projects of several namespaces each, one namespace without a project, churn, short Jobs and idle.

Users (control plane token file, plus one real ServiceAccount):

    tenant-a     RoleBinding of kubetally-cost-viewer in one namespace that has pods
    tenant-p     RoleBindings in every namespace of one project (every one the ledger knows, see `_grants`)
    tenant-r     like tenant-a, in another namespace; its RoleBinding is deleted by the revocation test
    nobody       no grant at all
    cost-admin   ClusterRoleBinding of kubetally-cost-admin (sees everything, idle and nodes included)
    monitoring/prometheus   a ServiceAccount bound to kubetally-metrics-reader only (token: TokenRequest)

`KUBETALLY_ACCESS_SEED` repeats a run; `KUBETALLY_ACCESS_QUERIES` (default 1000) is the number of
randomised queries each user sends on each route.
"""

from __future__ import annotations

import os
import random
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime

from kubetally.controlplane import TokenUser
from kubetally.synthetic import Cluster, ClusterSpec, Namespace, NodeType, expected_facts, generate

SEED_VARIABLE = "KUBETALLY_ACCESS_SEED"
QUERIES_VARIABLE = "KUBETALLY_ACCESS_QUERIES"
DEFAULT_QUERIES = 1000
HOUR = 3600
#: Hours of data before the hour of the server's starting instant (so `yesterday` always holds data),
#: and after it (the server's clock runs while the tier does).
HOURS_BEFORE = 30
HOURS_AFTER = 2
#: tenant-a's namespace has pods in each of these whole hours before the server's starting hour.
RECENT_HOURS = 6

NAMESPACES = (Namespace("shop", "retail"), Namespace("payments", "retail"), Namespace("web", "retail"),
              Namespace("ml", "research"), Namespace("batch", "research"), Namespace("kube-system", "platform"),
              Namespace("logging", "platform"), Namespace("sandbox"))
OPERATOR_NAMESPACE = "kubetally-system"
OPERATOR_ACCOUNT = "kubetally"
PROMETHEUS_NAMESPACE = "monitoring"
PROMETHEUS_ACCOUNT = "prometheus"
VIEWER_ROLE = "kubetally-cost-viewer"
ADMIN_ROLE = "kubetally-cost-admin"
METRICS_ROLE = "kubetally-metrics-reader"


@dataclass(frozen=True)
class World:
    seed: int
    queries: int
    now: int  # the server clock's starting instant (unix seconds, never on a minute)
    spec: ClusterSpec
    users: dict[str, TokenUser]
    grants: dict[str, frozenset[str]]  # partial viewer -> the namespaces its RoleBindings cover

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return (f"access seed {self.seed} ({SEED_VARIABLE}={self.seed} to repeat), {self.queries} queries per user "
                f"and route ({QUERIES_VARIABLE}), server clock starts at {at}, data {self.spec.hours} h")

    def project_namespaces(self, project: str) -> frozenset[str]:
        return frozenset(ns.name for ns in self.spec.namespaces if ns.project == project)

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(ns.name for ns in self.spec.namespaces)


def _seen_before(spec: ClusterSpec, cluster: Cluster, until: int) -> frozenset[str]:
    """The namespaces of which the generator's exact facts (containers, volumes, quotas) hold anything
    in [spec.start, until): what the operator's ledger knows once it has ingested those hours."""
    seen: set[str] = set()
    for hour in range(spec.start, until, HOUR):
        facts = expected_facts(cluster, hour, hour + HOUR)
        seen.update(str(fact["namespace"]) for fact in (*facts.containers, *facts.volumes, *facts.quotas))
    return frozenset(seen)


def _busy_throughout(cluster: Cluster, first: int, until: int) -> frozenset[str]:
    """The namespaces with running containers in every hour of [first, until): a window inside those
    hours has rows for them whenever the tests ask (the seed-573007168 world granted tenant-a a namespace
    whose Jobs had all ended 8 hours before, so its 6-hour answers were rightly empty)."""
    hours = [{str(fact["namespace"]) for fact in expected_facts(cluster, hour, hour + HOUR).containers}
             for hour in range(first, until, HOUR)]
    return frozenset(set.intersection(*hours)) if hours else frozenset()


def _grants(rng: random.Random, spec: ClusterSpec, now: int) -> dict[str, frozenset[str]]:
    """The namespaces each partial viewer's RoleBindings cover (cost-admin sees everything; nobody nothing).

    A partial viewer sees the namespaces it is granted *that the ledger knows* (AUTH.md "Who sees what").
    The ledger knows every hour before now's hour when the tier starts, and may ingest now's hour while it
    runs, so only namespaces with facts before now's hour are granted: what each tenant sees then never
    depends on when a request arrives. tenant-a gets one such namespace with pods in each of the
    RECENT_HOURS before now's hour (the tests ask it for the last 6 hours); tenant-p the known
    namespaces of a project without tenant-a's namespace; tenant-r one more with pods. No two tenants
    share a namespace, so each one's data is another's forbidden data."""
    cluster = generate(spec)
    known = _seen_before(spec, cluster, now - now % HOUR)
    busy = sorted({pod.namespace for pod in cluster.pods} & known)
    hour = now - now % HOUR
    recent = sorted(_busy_throughout(cluster, hour - RECENT_HOURS * HOUR, hour) & known)
    tenant_a = rng.choice(recent or busy)
    projects = sorted({ns.project for ns in spec.namespaces
                       if ns.project and ns.name in known and ns.project != cluster.project_of(tenant_a)})
    project = rng.choice(projects)
    tenant_p = frozenset(ns.name for ns in spec.namespaces if ns.project == project and ns.name in known)
    tenant_r = rng.choice([ns for ns in busy if ns != tenant_a and ns not in tenant_p])
    return {"tenant-a": frozenset({tenant_a}), "tenant-p": tenant_p, "tenant-r": frozenset({tenant_r})}


def seed_from_environment() -> int:
    text = os.environ.get(SEED_VARIABLE, "").strip()
    return int(text) if text else random.SystemRandom().randrange(1, 2**31)


def queries_from_environment() -> int:
    text = os.environ.get(QUERIES_VARIABLE, "").strip()
    return int(text) if text else DEFAULT_QUERIES


def world(seed: int, queries: int) -> World:
    """The seed's world: an instant in 2024-2027 at a random hour, minute 1-59 and second 1-59."""
    rng = random.Random(seed)
    now = int(datetime(rng.randint(2024, 2027), rng.randint(1, 12), rng.randint(1, 28), rng.randint(0, 23),
                       rng.randint(1, 59), rng.randint(1, 59), tzinfo=UTC).timestamp())
    start = now - now % HOUR - HOURS_BEFORE * HOUR
    spec = ClusterSpec(
        seed=rng.randrange(1, 2**31),
        start=start,
        hours=HOURS_BEFORE + 1 + HOURS_AFTER,
        node_types=(NodeType("m5.xlarge", 8, 32, 2, 0.384), NodeType("r5.xlarge", 4, 32, 1, None)),
        namespaces=NAMESPACES,
        deployments=6,
        replicas=(1, 2),
        statefulsets=1,
        statefulset_replicas=2,
        daemonsets=1,
        jobs=8,
        bare_pods=1,
        pending_pods=1,
        mean_pod_lifetime_hours=10.0,
        late_nodes=1,
    )
    users = {name: TokenUser(secrets.token_urlsafe(24), name, f"uid-{name}")
             for name in ("tenant-a", "tenant-p", "tenant-r", "nobody", "cost-admin")}
    return World(seed=seed, queries=queries, now=now, spec=spec, users=users, grants=_grants(rng, spec, now))
