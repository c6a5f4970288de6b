"""Container costs on their node, scaled so that no node-hour is sold twice, and node idle.

For each container fact c on node n in segment s (one price book; DESIGN.md §5–§6):

    q_cpu, q_mem   = the basis integrals chosen by the method            [core·s], [byte·s]
                     Request → *_request_*, Usage → *_usage_*, Effective → *_effective_*
    raw_cpu        = q_cpu · cpu_rate(n, s)                              [currency]
    raw_mem        = q_mem · mem_rate(n, s)
    f_cpu(n, s)    = min(1, cpu_pool / Σ_c raw_cpu)   (conservation: never more than the pool)
    cpu_cost       = raw_cpu · f_cpu ;  mem_cost = raw_mem · f_mem
    idle(n, s)     = (cpu_pool − Σ cpu_cost) + (mem_pool − Σ mem_cost)  ≥ 0

Idle is computed per resource pool: CPU bought beyond a node's capacity never eats into that
node's memory idle. A node-segment whose basis exceeded a pool is counted as overcommitted.

A container fact whose (cluster, node, segment) has no node fact is a join mismatch: it is priced
at the unit prices of its segment's version (`q/3600·cpuCoreHour + q/3600/2^30·memoryGiBHour`),
stays outside conservation, and is counted, never silently dropped.

Containers named "" or "POD" (cgroup totals and pause containers) are never counted.
"""

from __future__ import annotations

from kubetally.domain.vocabulary import GIB, Method
from kubetally.engine.pricing import PricedBook, unit_price, version_expression
from kubetally.engine.sql import Params

_BASIS = {
    Method.REQUEST: ("cpu_request_core_seconds", "memory_request_byte_seconds"),
    Method.USAGE: ("cpu_usage_core_seconds", "memory_usage_byte_seconds"),
    Method.EFFECTIVE: ("cpu_effective_core_seconds", "memory_effective_byte_seconds"),
}

_NODE_KEY = "cluster, node, segment_start, segment_end"
#: A node-segment counts as overcommitted when its load exceeds a pool by more than this factor.
_OVER = "(1 + 1e-9)"


def basis_columns(method: Method) -> tuple[str, str]:
    """The container fact columns (CPU, memory) that measure `method`."""
    if method not in _BASIS:
        raise ValueError(f"method {method.value} has no container basis")
    return _BASIS[method]


def container_cost_sql(
    books: list[PricedBook], params: Params, containers: str, window: tuple[int, int], method: Method,
    *, labels: bool = True,
) -> str:
    """SELECT of one row per counted container fact with `q_cpu`, `q_mem`, `matched`,
    `provider_id` and, per book suffix s, `cpu_cost{s}` and `mem_cost{s}`. Reads `node_idle`.

    With `labels=False` the `labels` column is a typed NULL: a label map per container-hour is most
    of the row's bytes (at scale L, 7.2M maps made a 30-day answer hold ~10 GiB), and only label
    grouping, label filters and pod rows read it."""
    cpu_column, mem_column = basis_columns(method)
    labels_column = "labels" if labels else "CAST(NULL AS MAP(VARCHAR, VARCHAR)) AS labels"
    start, end = params.add(window[0]), params.add(window[1])
    versions = ", ".join(f"{version_expression(b.book, params)} AS version{b.suffix}" for b in books)
    raw: list[str] = []
    scaled: list[str] = []
    for b in books:
        s = b.suffix
        cpu_unit = unit_price(b.book, params, "cpu_core_hour", f"c.version{s}")
        mem_unit = unit_price(b.book, params, "memory_gib_hour", f"c.version{s}")
        raw.append(
            f"CASE WHEN n.node IS NOT NULL THEN c.q_cpu * n.cpu_rate{s} "
            f"ELSE c.q_cpu / 3600.0 * {cpu_unit} END AS raw_cpu{s}, "
            f"CASE WHEN n.node IS NOT NULL THEN c.q_mem * n.mem_rate{s} "
            f"ELSE c.q_mem / 3600.0 / {GIB} * {mem_unit} END AS raw_mem{s}, "
            f"n.f_cpu{s}, n.f_mem{s}"
        )
        scaled.append(
            f"raw_cpu{s} * coalesce(f_cpu{s}, 1.0) AS cpu_cost{s}, raw_mem{s} * coalesce(f_mem{s}, 1.0) AS mem_cost{s}"
        )
    hidden = ", ".join(f"raw_cpu{b.suffix}, raw_mem{b.suffix}, f_cpu{b.suffix}, f_mem{b.suffix}" for b in books)
    return f"""
SELECT * EXCLUDE ({hidden}),
       {", ".join(scaled)}
FROM (
    SELECT c.*, n.provider_id, n.node IS NOT NULL AS matched, {", ".join(raw)}
    FROM (
        SELECT coalesce(cluster, '') AS cluster, node, namespace, project, pod, coalesce(pod_uid, '') AS pod_uid,
               controller_kind, controller, {labels_column}, segment_start, segment_end,
               active_start, active_end,
               coalesce({cpu_column}, 0) AS q_cpu, coalesce({mem_column}, 0) AS q_mem,
               coalesce(cpu_request_core_seconds, 0) AS cpu_request_core_seconds,
               coalesce(cpu_usage_core_seconds, 0) AS cpu_usage_core_seconds,
               coalesce(memory_request_byte_seconds, 0) AS memory_request_byte_seconds,
               coalesce(memory_usage_byte_seconds, 0) AS memory_usage_byte_seconds,
               {versions}
        FROM {containers}
        WHERE segment_start >= {start} AND segment_end <= {end}
          AND coalesce(container, '') NOT IN ('', 'POD')
    ) AS c
    LEFT JOIN node_idle AS n USING ({_NODE_KEY})
)"""


def raw_load_sql(
    books: list[PricedBook], params: Params, containers: str, window: tuple[int, int], method: Method
) -> str:
    """SELECT of Σ_c raw_cpu and raw_mem per node-segment (per book), from `node_priced`."""
    cpu_column, mem_column = basis_columns(method)
    start, end = params.add(window[0]), params.add(window[1])
    sums = ", ".join(
        f"sum(coalesce(c.{cpu_column}, 0) * n.cpu_rate{b.suffix}) AS load_cpu{b.suffix}, "
        f"sum(coalesce(c.{mem_column}, 0) * n.mem_rate{b.suffix}) AS load_mem{b.suffix}"
        for b in books
    )
    return f"""
SELECT n.cluster, n.node, n.segment_start, n.segment_end, {sums}
FROM {containers} AS c
JOIN node_priced AS n
  ON coalesce(c.cluster, '') = n.cluster AND c.node = n.node
 AND c.segment_start = n.segment_start AND c.segment_end = n.segment_end
WHERE c.segment_start >= {start} AND c.segment_end <= {end}
  AND coalesce(c.container, '') NOT IN ('', 'POD')
GROUP BY ALL"""


def node_idle_sql(books: list[PricedBook], load_sql: str) -> str:
    """SELECT of every priced node-segment with, per book, the scale factors `f_cpu`, `f_mem`,
    `idle`, and an `overcommitted` flag (true if any book's load exceeded a pool)."""
    columns: list[str] = []
    over: list[str] = []
    for b in books:
        s = b.suffix
        load_cpu, load_mem = f"coalesce(l.load_cpu{s}, 0)", f"coalesce(l.load_mem{s}, 0)"
        columns.append(
            f"CASE WHEN {load_cpu} > n.cpu_pool{s} THEN n.cpu_pool{s} / {load_cpu} ELSE 1.0 END AS f_cpu{s}, "
            f"CASE WHEN {load_mem} > n.mem_pool{s} THEN n.mem_pool{s} / {load_mem} ELSE 1.0 END AS f_mem{s}, "
            f"greatest(0.0, n.cpu_pool{s} - least({load_cpu}, n.cpu_pool{s})) "
            f"+ greatest(0.0, n.mem_pool{s} - least({load_mem}, n.mem_pool{s})) AS idle{s}"
        )
        if not s:  # Diagnostics describe the cost book; customCost's own scaling is not counted.
            # Flag only a real excess: a node filled exactly to capacity can exceed its pool by an ulp.
            over.append(f"{load_cpu} > n.cpu_pool * {_OVER} OR {load_mem} > n.mem_pool * {_OVER}")
    return f"""
SELECT n.*, {", ".join(columns)}, ({" OR ".join(over)}) AS overcommitted
FROM node_priced AS n
LEFT JOIN ({load_sql}) AS l USING ({_NODE_KEY})"""
