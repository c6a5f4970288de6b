"""The documented topology every engine test starts from, with its cost table computed by hand.

Window 2025-06-01T00:00Z–02:00Z (T0 = 1748736000), two hour segments h0 = [T0, T0+1h) and
h1 = [T0+1h, T0+2h). One cluster `c1`. Prices (CostWeights `default`, CNY):
weights cpu 0.5 / memory 0.5; unit prices cpuCoreHour 0.05, memoryGiBHour 0.01,
storageGiBHour 0.0001; nodePrices: instance-type `big` → 0.8/h; storage class `ssd` → 0.0002/GiB-h.

Nodes (both hours, 3600 s each)
    node  type   cores  GiB  P (per h)                       cpu pool  mem pool  per core-h  per GiB-h
    n1    big    4      16   0.8 (rule)                      0.4       0.4       0.1         0.025
    n2    big    4      16   0.8 (rule)                      0.4       0.4       0.1         0.025
    n3    small  2      10   0.05·2 + 0.01·10 = 0.2 (units)  0.1       0.1       0.05        0.01
    cluster cost = 1.8 per hour, 3.6 for the window.

Namespaces: shop, web (project alpha); data, batch (project beta).
Pods (one container `main`; web-1 also has a pause container `POD`, which must never count)
    pod       ns     controller             node  hours          request        usage (avg)          effective
    web-1     shop   Deployment/web         n1    h0,h1          1 core, 2 GiB  0.5, 1 GiB           1, 2 GiB
    burst-1   shop   Deployment/burst       n1    h0,h1          1 core, 2 GiB  h0 1.0, h1 0.5; 1GiB  h0 1.5, h1 1; 2 GiB
    api-1     web    StatefulSet/api        n2    h0,h1          2 cores, 4 GiB 1, 2 GiB             2, 4 GiB
    etl-1     data   (none, no labels)      n2    h0,h1          none           0.5, 1 GiB           0.5, 1 GiB
    agent-n3  data   DaemonSet/agent        n3    h0,h1          0.5, 1 GiB     0.25, 0.5 GiB        0.5, 1 GiB
    job-1     batch  Job/report             n3    h1 15 min      1 core, 2 GiB  1, 1 GiB             1, 2 GiB
burst-1 bursts over its request in h0: 2 cores for 30 min, then idle, so the per-sample max gives
1.5 core-hours of effective CPU where the max of the averages would give 1.0.

Effective cost (cpu + memory) per pod
    pod       h0                       h1                          window
    web-1     0.1 + 0.05   = 0.15      0.15                        0.30
    burst-1   0.15 + 0.05  = 0.20      0.1 + 0.05 = 0.15           0.35
    api-1     0.2 + 0.1    = 0.30      0.30                        0.60
    etl-1     0.05 + 0.025 = 0.075     0.075                       0.15
    agent-n3  0.025 + 0.01 = 0.035     0.035                       0.07
    job-1     –                        0.0125 + 0.005 = 0.0175     0.0175
    workload  0.76                     0.7275                      1.4875
Idle per node (pool − costs, cpu + memory)
    n1        (0.4−0.25) + (0.4−0.1)  = 0.45     (0.4−0.2) + (0.4−0.1)      = 0.5      0.95
    n2        (0.4−0.25) + (0.4−0.125) = 0.425   0.425                                 0.85
    n3        (0.1−0.025) + (0.1−0.01) = 0.165   (0.1−0.0375) + (0.1−0.015) = 0.1475   0.3125
    idle      1.04                               1.0725                                2.1125
    check     0.76 + 1.04 = 1.8                  0.7275 + 1.0725 = 1.8                 3.6
Request cost per pod (window): web-1 0.30, burst-1 0.30, api-1 0.60, etl-1 0, agent-n3 0.07,
job-1 0.0175 → 1.2875. Usage cost: web-1 0.15, burst-1 0.125+0.075 = 0.2, api-1 0.30, etl-1 0.15,
agent-n3 0.035, job-1 0.0125+0.0025 = 0.015 → 0.85.
Per namespace (Effective): shop 0.65, web 0.60, data 0.22, batch 0.0175.

Volumes (both hours): data/warehouse class ssd, request 100 GiB, used 40 GiB;
shop/logs class standard, request 10 GiB, used 5 GiB.
Effective storage: warehouse 200 GiB-h × 0.0002 = 0.04; logs 20 GiB-h × 0.0001 = 0.002.
ResourceQuotas (both hours): shop requests.cpu 4, requests.memory 8 GiB, requests.storage 50 GiB;
data requests.cpu 2, requests.memory 4 GiB, requests.storage 200 GiB.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from kubetally.domain.prices import NodePriceRule, PriceBook, PriceVersion
from kubetally.domain.window import Window
from kubetally.engine.facts import Facts, load_facts

T0 = 1748736000  # 2025-06-01T00:00:00Z
H = 3600
GIB = 1024**3
WINDOW = Window(datetime(2025, 6, 1, 0, tzinfo=UTC), datetime(2025, 6, 1, 2, tzinfo=UTC))
TYPE_KEY = "node_kubernetes_io_instance_type"


def default_version(**changes: object) -> PriceVersion:
    """The fixture's `default` CostWeights; keyword arguments replace fields."""
    fields: dict[str, object] = {
        "currency": "CNY",
        "cpu_core_hour": Decimal("0.05"),
        "memory_gib_hour": Decimal("0.01"),
        "storage_gib_hour": Decimal("0.0001"),
        "weights": (Decimal("0.5"), Decimal("0.5")),
        "node_rules": (NodePriceRule(hourly=Decimal("0.8"), match_labels={"node.kubernetes.io/instance-type": "big"}),),
        "storage_class_prices": {"ssd": Decimal("0.0002")},
        "source": "CostWeights/default",
    }
    fields.update(changes)
    return PriceVersion(**fields)  # type: ignore[arg-type]


def default_book(**changes: object) -> PriceBook:
    return PriceBook(versions=(default_version(**changes),))


def _node(name: str, kind: str, cores: float, gib: float, hour: int) -> dict[str, object]:
    return {
        "cluster": "c1",
        "node": name,
        "provider_id": f"ecs://{name}",
        "labels": {TYPE_KEY: kind, "kubernetes_io_hostname": name},
        "segment_start": T0 + hour * H,
        "segment_end": T0 + (hour + 1) * H,
        "running_seconds": H,
        "cpu_capacity_core_seconds": cores * H,
        "memory_capacity_byte_seconds": gib * GIB * H,
    }


def _container(
    pod: str,
    hour: int,
    *,
    seconds: float = H,
    request: tuple[float, float],
    usage: tuple[float, float],
    effective: tuple[float, float],
    container: str = "main",
    **dims: object,
) -> dict[str, object]:
    """Per-hour averages (cores, GiB) × `seconds` of running time starting at the hour's start."""
    start = T0 + hour * H
    fact: dict[str, object] = {
        "cluster": "c1",
        "pod": pod,
        "pod_uid": f"uid-{pod}",
        "container": container,
        "segment_start": start,
        "segment_end": start + H,
        "active_start": float(start),
        "active_end": float(start + seconds),
        "running_seconds": seconds,
        "cpu_request_core_seconds": request[0] * seconds,
        "cpu_usage_core_seconds": usage[0] * seconds,
        "cpu_effective_core_seconds": effective[0] * seconds,
        "memory_request_byte_seconds": request[1] * GIB * seconds,
        "memory_usage_byte_seconds": usage[1] * GIB * seconds,
        "memory_effective_byte_seconds": effective[1] * GIB * seconds,
    }
    fact.update(dims)
    return fact


SHOP = {"namespace": "shop", "project": "alpha"}
WEB = {"namespace": "web", "project": "alpha"}
DATA = {"namespace": "data", "project": "beta"}
BATCH = {"namespace": "batch", "project": "beta"}


def containers() -> list[dict[str, object]]:
    facts: list[dict[str, object]] = []
    for hour in (0, 1):
        facts.append(
            _container(
                "web-1",
                hour,
                request=(1, 2),
                usage=(0.5, 1),
                effective=(1, 2),
                node="n1",
                controller_kind="Deployment",
                controller="web",
                labels={"app": "web"},
                **SHOP,
            )
        )
        facts.append(
            _container(
                "web-1",
                hour,
                request=(5, 5),
                usage=(5, 5),
                effective=(5, 5),
                node="n1",
                container="POD",
                controller_kind="Deployment",
                controller="web",
                labels={"app": "web"},
                **SHOP,
            )
        )
        burst_usage, burst_effective = (1.0, 1.5) if hour == 0 else (0.5, 1.0)
        facts.append(
            _container(
                "burst-1",
                hour,
                request=(1, 2),
                usage=(burst_usage, 1),
                effective=(burst_effective, 2),
                node="n1",
                controller_kind="Deployment",
                controller="burst",
                labels={"app": "burst"},
                **SHOP,
            )
        )
        facts.append(
            _container(
                "api-1",
                hour,
                request=(2, 4),
                usage=(1, 2),
                effective=(2, 4),
                node="n2",
                controller_kind="StatefulSet",
                controller="api",
                labels={"app": "api"},
                **WEB,
            )
        )
        facts.append(
            _container("etl-1", hour, request=(0, 0), usage=(0.5, 1), effective=(0.5, 1), node="n2", labels={}, **DATA)
        )
        facts.append(
            _container(
                "agent-n3",
                hour,
                request=(0.5, 1),
                usage=(0.25, 0.5),
                effective=(0.5, 1),
                node="n3",
                controller_kind="DaemonSet",
                controller="agent",
                labels={"app": "agent"},
                **DATA,
            )
        )
    facts.append(
        _container(
            "job-1",
            1,
            seconds=900,
            request=(1, 2),
            usage=(1, 1),
            effective=(1, 2),
            node="n3",
            controller_kind="Job",
            controller="report",
            labels={"app": "report"},
            **BATCH,
        )
    )
    return facts


def nodes() -> list[dict[str, object]]:
    return [
        _node(name, kind, cores, gib, hour)
        for hour in (0, 1)
        for name, kind, cores, gib in (("n1", "big", 4, 16), ("n2", "big", 4, 16), ("n3", "small", 2, 10))
    ]


def volumes() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for hour in (0, 1):
        for pvc, dims, klass, request, used in (("warehouse", DATA, "ssd", 100, 40), ("logs", SHOP, "standard", 10, 5)):
            out.append(
                {
                    "cluster": "c1",
                    "pvc": pvc,
                    "storage_class": klass,
                    **dims,
                    "segment_start": T0 + hour * H,
                    "segment_end": T0 + (hour + 1) * H,
                    "running_seconds": H,
                    "request_byte_seconds": request * GIB * H,
                    "used_byte_seconds": used * GIB * H,
                    "effective_byte_seconds": max(request, used) * GIB * H,
                }
            )
    return out


def quotas() -> list[dict[str, object]]:
    out: list[dict[str, object]] = []
    for hour in (0, 1):
        for dims, cpu, mem, storage in ((SHOP, 4, 8, 50), (DATA, 2, 4, 200)):
            out.append(
                {
                    "cluster": "c1",
                    **dims,
                    "segment_start": T0 + hour * H,
                    "segment_end": T0 + (hour + 1) * H,
                    "cpu_core_seconds": cpu * H,
                    "memory_byte_seconds": mem * GIB * H,
                    "storage_byte_seconds": storage * GIB * H,
                }
            )
    return out


def topology_facts() -> Facts:
    return load_facts(containers=containers(), nodes=nodes(), volumes=volumes(), quotas=quotas())
