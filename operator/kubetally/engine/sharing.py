"""Pods per segment, and the share of idle each would carry (DESIGN.md §6).

Containers roll up to pods first: no answer is finer than a pod, and a pod is the unit of the
`even` split. Pod identity is (cluster, namespace, pod, pod_uid), so a pod name reused by a new pod
is a new pod.

Idle is shared per segment within a *domain*: the cluster, or the node with idleByNode. With the
domain's idle I (Σ node idle) and its pods p:

    weighted:  share_p = I · cost_p / Σ_q cost_q          (the pod's own cost is its weight)
    even:      share_p = I / |pods in the domain-segment|

Where the weights sum to 0 (no pods, or pods that cost nothing), the domain's idle cannot be
shared and becomes unallocated idle, a row of its own, never dropped.

Shares are computed here, over every pod, before any filter: a filter then selects pods with the
shares they already carry, so it can never inflate them. Sharing per segment (an hour in the
ledger) keeps results step-invariant: a day is exactly the sum of its hours.
"""

from __future__ import annotations

from kubetally.domain.vocabulary import ShareSplit
from kubetally.engine.pricing import PricedBook

POD_KEY = "cluster, namespace, pod, pod_uid, node, segment_start, segment_end"


def pod_segments_sql(books: list[PricedBook]) -> str:
    """SELECT of one row per pod and segment from the `container_cost` table."""
    costs = ", ".join(f"sum(cpu_cost{b.suffix} + mem_cost{b.suffix}) AS cost{b.suffix}, "
                      f"sum(cpu_cost{b.suffix}) AS cpu_cost{b.suffix}, sum(mem_cost{b.suffix}) AS mem_cost{b.suffix}"
                      for b in books)
    return f"""
SELECT {POD_KEY},
       any_value(project) AS project, any_value(controller_kind) AS controller_kind,
       any_value(controller) AS controller, any_value(labels) AS labels,
       any_value(provider_id) AS provider_id,
       {costs},
       sum(q_cpu) AS q_cpu, sum(q_mem) AS q_mem,
       sum(cpu_request_core_seconds) AS cpu_request_core_seconds,
       sum(cpu_usage_core_seconds) AS cpu_usage_core_seconds,
       sum(memory_request_byte_seconds) AS memory_request_byte_seconds,
       sum(memory_usage_byte_seconds) AS memory_usage_byte_seconds,
       min(active_start) AS active_start, max(active_end) AS active_end
FROM container_cost
GROUP BY {POD_KEY}"""


def _domain(idle_by_node: bool) -> str:
    return "cluster, node, segment_start, segment_end" if idle_by_node else "cluster, segment_start, segment_end"


def _weight(split: ShareSplit, suffix: str) -> str:
    return f"cost{suffix}" if split is ShareSplit.WEIGHTED else "1.0"


def _pod_weight(split: ShareSplit, suffix: str) -> str:
    return f"p.cost{suffix}" if split is ShareSplit.WEIGHTED else "1.0"


def pod_shares_sql(books: list[PricedBook], split: ShareSplit, idle_by_node: bool) -> str:
    """SELECT of `pod_segments` rows with `share{s}`: the idle each pod carries per book."""
    domain = _domain(idle_by_node)
    idle = ", ".join(f"sum(idle{b.suffix}) AS idle{b.suffix}" for b in books)
    weights = ", ".join(f"sum({_weight(split, b.suffix)}) AS total_w{b.suffix}" for b in books)
    shares = ", ".join(
        f"CASE WHEN dw.total_w{b.suffix} > 0 THEN coalesce(di.idle{b.suffix}, 0) * "
        f"{_pod_weight(split, b.suffix)} / dw.total_w{b.suffix} ELSE 0.0 END AS share{b.suffix}"
        for b in books
    )
    return f"""
SELECT p.*, {shares}
FROM pod_segments AS p
LEFT JOIN (SELECT {domain}, {idle} FROM node_idle GROUP BY {domain}) AS di USING ({domain})
LEFT JOIN (SELECT {domain}, {weights} FROM pod_segments GROUP BY {domain}) AS dw USING ({domain})"""


def unallocated_idle_sql(books: list[PricedBook], split: ShareSplit, idle_by_node: bool) -> str:
    """SELECT per segment of the idle of domains with nothing to share it with (`unallocated{s}`)."""
    domain = _domain(idle_by_node)
    idle = ", ".join(f"sum(idle{b.suffix}) AS idle{b.suffix}" for b in books)
    weights = ", ".join(f"sum({_weight(split, b.suffix)}) AS total_w{b.suffix}" for b in books)
    unallocated = ", ".join(
        f"sum(CASE WHEN coalesce(dw.total_w{b.suffix}, 0) > 0 THEN 0.0 ELSE di.idle{b.suffix} END) "
        f"AS unallocated{b.suffix}"
        for b in books
    )
    return f"""
SELECT di.segment_start, di.segment_end, {unallocated}
FROM (SELECT {domain}, {idle} FROM node_idle GROUP BY {domain}) AS di
LEFT JOIN (SELECT {domain}, {weights} FROM pod_segments GROUP BY {domain}) AS dw USING ({domain})
GROUP BY di.segment_start, di.segment_end"""
