"""Hand-built micro clusters: one node, a few pods, literal times (r = 60 s, data from 2026-01-01)."""

from __future__ import annotations

from typing import Any

from kubetally.synthetic.model import (
    DEFAULT_START,
    Cluster,
    ClusterSpec,
    Container,
    Namespace,
    Node,
    Pod,
)

S = DEFAULT_START
MIN = 60
HOUR = 3600
T10 = S + 10 * HOUR  # 10:00:00
GIB = 2**30
MIB = 2**20


def at(minutes: float) -> int:
    """10:00 plus `minutes` (fractions allowed: 0.5 = 10:00:30)."""
    return T10 + round(minutes * MIN)


def spec(**overrides: Any) -> ClusterSpec:
    fields: dict[str, Any] = {"seed": 0, "hours": 24, "namespaces": (Namespace("shop", "retail"),)}
    fields.update(overrides)
    return ClusterSpec(**fields)


def node(name: str = "n1", price: float | None = 0.2, start: int = S, end: int = S + 24 * HOUR) -> Node:
    return Node(name=name, instance_type="m5.xlarge", cores=4, memory_bytes=16 * GIB, allocatable_cores=3.8,
                allocatable_memory_bytes=15 * GIB, provider_id=f"aws:///us-east-1a/i-{name}", start=start, end=end,
                hourly_price=price)


def container(name: str = "app", cpu_request: float | None = 0.5, memory_request: int | None = 100 * MIB,
              cpu_rate: float = 0.75, memory_base: int = 50 * MIB, memory_span: int = 0, key: int = 1) -> Container:
    return Container(name=name, image=f"example/{name}:1", cpu_request=cpu_request, memory_request=memory_request,
                     cpu_rate=cpu_rate, memory_base=memory_base, memory_span=memory_span, key=key)


def pod(name: str, start: int, end: int, *containers: Container, uid: str | None = None,
        owner: tuple[str | None, str | None] = (None, None), pending: bool = False,
        volumes: tuple[tuple[str, str], ...] = ()) -> Pod:
    return Pod(namespace="shop", name=name, uid=uid or f"uid-{name}", node="n1", start=start, end=end,
               containers=containers or (container(),), owner_kind=owner[0], owner_name=owner[1],
               labels=(("app", name), ("app.kubernetes.io/name", name)), volumes=volumes, pending=pending)


def cluster(*pods: Pod, **kwargs: Any) -> Cluster:
    the_spec = kwargs.pop("spec", None) or spec()
    nodes = kwargs.pop("nodes", None) or (node(),)
    return Cluster(spec=the_spec, nodes=nodes, pods=pods, **kwargs)
