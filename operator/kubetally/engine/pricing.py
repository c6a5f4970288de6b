"""Node prices, the CPU/memory split, and the rates that turn basis quantities into money.

For each node fact of segment s (DESIGN.md §5), with the price version v in force at s's start:

    cap_cores = cpu_capacity_core_seconds / running_seconds                     [cores]
    cap_gib   = memory_capacity_byte_seconds / running_seconds / 2^30           [GiB]
    P         = first matching v.nodePrices rule                                [currency/h]
                else hourly_price_seconds / running_seconds  (node_total_hourly_cost)
                else v.cpuCoreHour·cap_cores + v.memoryGiBHour·cap_gib
    w_cpu     = v.weights.cpu, or cpuCoreHour·cap_cores / (cpuCoreHour·cap_cores + memoryGiBHour·cap_gib)
    node_cost = P · running_seconds / 3600                                      [currency]
    cpu_pool  = w_cpu · node_cost ; mem_pool = (1 − w_cpu) · node_cost
    cpu_rate  = cpu_pool / cpu_capacity_core_seconds                            [currency per core·s]
    mem_rate  = mem_pool / memory_capacity_byte_seconds                         [currency per byte·s]

so a container's cost on the node is `q_cpu·cpu_rate + q_mem·mem_rate`, which is
`w_cpu·P·q_cpu/cpu_capacity + w_mem·P·q_mem/memory_capacity` per hour, as DESIGN.md states.

Everything is emitted as SQL expressions whose prices are parameters, so one query prices every
node of every segment; several price books (cost and customCost) become several column sets,
told apart by a column suffix.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetally.domain.labels import sanitize_label_key
from kubetally.domain.prices import NodePriceRule, PriceBook
from kubetally.domain.vocabulary import GIB
from kubetally.engine.sql import Params, case_by_version


@dataclass(frozen=True, slots=True)
class PricedBook:
    """A PriceBook and the column suffix its money columns carry (`""` for cost, `_custom`)."""

    book: PriceBook
    suffix: str


def version_expression(book: PriceBook, params: Params, time_column: str = "segment_start") -> str:
    """SQL for the index of the version in force at `time_column` (the earliest one before all)."""
    if len(book.versions) == 1:
        return "0"
    arms = [
        f"WHEN {time_column} >= {params.add(int(version.effective_from.timestamp()))} THEN {index}"
        for index, version in reversed(list(enumerate(book.versions)))
        if index > 0
    ]
    return f"(CASE {' '.join(arms)} ELSE 0 END)"


def unit_price(book: PriceBook, params: Params, attribute: str, version_column: str) -> str:
    """SQL for a unit price (`cpu_core_hour`, `memory_gib_hour`, `storage_gib_hour`) by version."""
    return case_by_version(
        version_column,
        [f"{params.add(float(getattr(version, attribute)))}::DOUBLE" for version in book.versions],
    )


def _rule_condition(rule: NodePriceRule, params: Params, labels_column: str) -> str:
    parts: list[str] = []
    for key, wanted in rule.match_labels.items():
        parts.append(f"{labels_column}[{params.add(sanitize_label_key(key))}] = {params.add(wanted)}")
    for requirement in rule.match_expressions:
        lookup = f"{labels_column}[{params.add(sanitize_label_key(requirement.key))}]"
        values = ", ".join(params.add(value) for value in requirement.values) or "NULL"
        if requirement.operator == "In":
            parts.append(f"coalesce({lookup} IN ({values}), FALSE)")
        elif requirement.operator == "NotIn":
            parts.append(f"coalesce({lookup} NOT IN ({values}), TRUE)")
        elif requirement.operator == "Exists":
            parts.append(f"{lookup} IS NOT NULL")
        elif requirement.operator == "DoesNotExist":
            parts.append(f"{lookup} IS NULL")
        else:
            raise ValueError(f"unknown label selector operator {requirement.operator!r}")
    return " AND ".join(parts) if parts else "TRUE"


def rule_price(book: PriceBook, params: Params, version_column: str, labels_column: str) -> str:
    """SQL for the hourly price of the first nodePrices rule matching the node, else NULL."""
    per_version: list[str] = []
    for version in book.versions:
        if not version.node_rules:
            per_version.append("NULL::DOUBLE")
            continue
        arms = " ".join(
            f"WHEN {_rule_condition(rule, params, labels_column)} THEN {params.add(float(rule.hourly))}::DOUBLE"
            for rule in version.node_rules
        )
        per_version.append(f"(CASE {arms} ELSE NULL::DOUBLE END)")
    return case_by_version(version_column, per_version)


def fixed_cpu_weight(book: PriceBook, params: Params, version_column: str) -> str:
    """SQL for the configured CPU weight of the version, or NULL where weights are not set."""
    return case_by_version(
        version_column,
        [
            f"{params.add(float(version.weights[0]))}::DOUBLE" if version.weights else "NULL::DOUBLE"
            for version in book.versions
        ],
    )


def node_cost_ctes(books: list[PricedBook], params: Params, nodes: str, window: tuple[int, int]) -> str:
    """CTEs `node_base` and `node_priced`: one row per node fact in the window, with, per book
    suffix s: `hourly{s}`, `node_cost{s}`, `cpu_pool{s}`, `mem_pool{s}`, `cpu_rate{s}`, `mem_rate{s}`."""
    start, end = params.add(window[0]), params.add(window[1])
    version_columns = ", ".join(f"{version_expression(item.book, params)} AS version{item.suffix}" for item in books)
    base = f"""
node_base AS (
    SELECT coalesce(cluster, '') AS cluster, node, provider_id, labels, segment_start, segment_end, running_seconds,
           cpu_capacity_core_seconds, memory_capacity_byte_seconds, hourly_price_seconds,
           CASE WHEN running_seconds > 0 THEN cpu_capacity_core_seconds / running_seconds ELSE 0 END
               AS cap_cores,
           CASE WHEN running_seconds > 0 THEN memory_capacity_byte_seconds / running_seconds / {GIB}
               ELSE 0 END AS cap_gib,
           {version_columns}
    FROM {nodes}
    WHERE segment_start >= {start} AND segment_end <= {end}
)"""
    columns: list[str] = []
    for item in books:
        s, v = item.suffix, f"version{item.suffix}"
        cpu_unit = unit_price(item.book, params, "cpu_core_hour", v)
        mem_unit = unit_price(item.book, params, "memory_gib_hour", v)
        a, b = f"({cpu_unit} * cap_cores)", f"({mem_unit} * cap_gib)"
        hourly = (
            f"coalesce({rule_price(item.book, params, v, 'labels')}, "
            f"CASE WHEN hourly_price_seconds IS NOT NULL AND running_seconds > 0 "
            f"THEN hourly_price_seconds / running_seconds END, {a} + {b})"
        )
        weight = (
            f"coalesce({fixed_cpu_weight(item.book, params, v)}, "
            f"CASE WHEN {a} + {b} > 0 THEN {a} / ({a} + {b}) ELSE 0.5 END)"
        )
        columns.append(
            f"{hourly} AS hourly{s}, {weight} AS w_cpu{s}, {cpu_unit} AS cpu_unit{s}, {mem_unit} AS mem_unit{s}"
        )
    priced = f"""
node_weighted AS (
    SELECT *, {", ".join(columns)} FROM node_base
)"""
    money: list[str] = []
    for item in books:
        s = item.suffix
        cost = f"(hourly{s} * running_seconds / 3600.0)"
        money.append(
            f"{cost} AS node_cost{s}, w_cpu{s} * {cost} AS cpu_pool{s}, (1 - w_cpu{s}) * {cost} AS mem_pool{s}, "
            f"CASE WHEN cpu_capacity_core_seconds > 0 THEN w_cpu{s} * {cost} / cpu_capacity_core_seconds "
            f"ELSE 0 END AS cpu_rate{s}, "
            f"CASE WHEN memory_capacity_byte_seconds > 0 THEN (1 - w_cpu{s}) * {cost} / "
            f"memory_capacity_byte_seconds ELSE 0 END AS mem_rate{s}"
        )
    final = f"""
node_priced AS (
    SELECT *, {", ".join(money)} FROM node_weighted
)"""
    return ",".join([base, priced, final])
