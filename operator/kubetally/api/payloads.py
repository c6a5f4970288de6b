"""Engine answers → HTTP bodies: /v2/cost JSON and CSV, Alauda usage JSON, Kubernetes `Status`.

Why: the shape of every body is part of the API contract; keeping it in one pure module (no I/O,
no clock, dicts and strings out) lets tests check it field by field and keeps the server thin.

Decisions:

- Numbers are JSON numbers at full float64 precision (`json` writes the shortest round-tripping
  repr); rounding would break conservation checks made by clients. NaN and ±inf are never emitted:
  the engine never produces them, so meeting one raises ValueError (a bug, answered as a 500),
  rather than silently sending 0. Serialize with `allow_nan=False` as a second guard.
- Times are RFC3339 in UTC with a `Z` and whole seconds (`2024-03-24T00:00:00Z`), written by the one
  formatter, `domain.timeparse.format_rfc3339`.
- `/v2/cost` envelope: ACK documents the cost sets but no envelope, so we follow OpenCost's
  allocation API, which ACK's cost API derives from: `{"code": 200, "status": "success", "data": [...]}`
  with one map per step, in step order, `{}` for a step without rows. We add `currency`,
  `customCurrency` (only when custom weights were used), `priceSource`, the queried `window`,
  `coverage` (the share of the window with data; null when unknown), `steps` (each step's `start`,
  `end` and `coverage`, in the order of `data`: `CostAnswer.step_coverage`; coverage 0 is a step
  without data, which a chart draws as a gap, since its `{}` is not cost 0) and `warnings`.
- A cost set (`_cost_set`) has ACK's fields: `name`, `properties` (cluster, node, namespace,
  controllerKind, controller, pod, podUID, providerID, project when known, then `labels`),
  `start`, `end`, `cpuCoreRequestAverage`, `cpuCoreUsageAverage`, `ramByteRequestAverage`,
  `ramByteUsageAverage`, `cost`, `costRatio`, `customCost` (null without custom weights); plus
  `cpuCoreHours` and `ramByteHours` (the basis quantities priced, by the query's method; OpenCost's
  names, bytes like the averages) and `sharedIdleCost` (the part of `cost` that is shared idle).
  Properties with an absent or empty value are omitted, as are `labels` when the group's members do
  not share them (an empty map is kept). Idle rows carry whatever the engine knows, e.g. node,
  cluster and providerID for `idle:<node>`.
- Keys of a step's map are row names (key values joined by `/`). When several rows of one step share
  a name (a pod name reused by a new pod), every one of them becomes `<name>/<podUID>`, so that the
  key does not depend on row order; if that still collides (no podUID), `/2`, `/3`... are appended in
  row order. The set's `name` field equals its key. CSV uses the same names.
- CSV: RFC 4180 (`csv` module, `\\r\\n` line ends, quoting only where needed), a header and then one
  line per row, rows ordered by step (stable, so the engine's order within a step stays); steps
  without rows have no line. `customCost` is empty without custom weights. CSV injection defence
  (OWASP): a text cell starting with `=`, `+`, `-`, `@`, tab or carriage return gets a leading `'`,
  so that spreadsheets do not run it as a formula; numbers are never prefixed.
- `status`: a Kubernetes `Status` (kind, apiVersion v1, metadata {}, status Failure, message, reason,
  code); `REASONS` maps the codes we answer to their reasons.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import orjson

from kubetally.domain.timeparse import format_rfc3339
from kubetally.domain.vocabulary import GIB
from kubetally.domain.window import Window
from kubetally.engine import grouping
from kubetally.engine.query import NUMBER_FIELDS, CostRow, CostTable, UsageRow, WorkloadRows

__all__ = ["CSV_COLUMNS", "PROPERTY_KEYS", "REASONS", "cost_csv_lines", "cost_json", "status", "usage_json"]

#: The reason of a Status per HTTP code.
REASONS: Mapping[int, str] = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    500: "InternalError",
    503: "ServiceUnavailable",
}

#: Row properties rendered in `properties`, in this order (labels follow).
PROPERTY_KEYS = ("cluster", "node", "namespace", "controllerKind", "controller", "pod", "podUID", "providerID",
                 "project")

CSV_COLUMNS = (
    "start", "end", "name", "cluster", "namespace", "pod", "node", "controllerKind", "controller", "providerID",
    "cpuCoreRequestAverage", "cpuCoreUsageAverage", "ramByteRequestAverage", "ramByteUsageAverage", "cost",
    "costRatio", "customCost",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def status(code: int, reason: str, message: str) -> dict[str, Any]:
    """A Kubernetes `Status` failure body, e.g. `status(400, "BadRequest", "window: ...")`."""
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _finite(value: float, what: str) -> float:
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(f"{what} is {number}: the engine must never produce a non-finite number")
    return number


def _row_names(steps: Sequence[tuple[int, int]], bases: Sequence[str], uids: Sequence[str]) -> list[str]:
    """Each row's key in its step's map: its name, made unique within the step (module doc). Row i
    lies in step `steps[i]`, is named `bases[i]` and has pod UID `uids[i]` ("" when none)."""
    counts = Counter(zip(steps, bases, strict=True))
    if max(counts.values(), default=0) < 2:
        return list(bases)  # the usual case: every name is unique in its step
    used: set[tuple[tuple[int, int], str]] = set()
    names: list[str] = []
    for step, base, uid in zip(steps, bases, uids, strict=True):
        if counts[(step, base)] > 1 and uid:
            base = f"{base}/{uid}"
        name, ordinal = base, 2
        while (step, name) in used:
            name, ordinal = f"{base}/{ordinal}", ordinal + 1
        used.add((step, name))
        names.append(name)
    return names


def _names(table: CostTable) -> list[str]:
    """The names of the table's rows: its workload rows (in order), then its other rows (`_row_names`)."""
    workload, rendered = table.workload, table.rendered
    if rendered is not None:
        bounds = [(step.step_start, step.step_end) for step in table.steps]
        steps = [bounds[index] for index in rendered.step_index]
        bases, uids = list(rendered.bases), list(rendered.uids)
    else:
        steps = list(zip(workload.step_start, workload.step_end, strict=True))
        bases = ["/".join(key) for key in workload.key]
        uids = [properties.get("podUID", "") for properties in workload.properties]
    steps += [(row.step_start, row.step_end) for row in table.others]
    bases += [row.name for row in table.others]
    uids += [row.properties.get("podUID", "") for row in table.others]
    return _row_names(steps, bases, uids)


def _properties(row: CostRow) -> dict[str, Any]:
    out: dict[str, Any] = {key: row.properties[key] for key in PROPERTY_KEYS if row.properties.get(key)}
    if row.labels is not None:
        out["labels"] = {key: row.labels[key] for key in sorted(row.labels)}
    return out


def _cost_set(row: CostRow, name: str, start: str, end: str) -> dict[str, Any]:
    values = (row.cpu_core_request_average, row.cpu_core_usage_average, row.ram_byte_request_average,
              row.ram_byte_usage_average, row.cpu_core_hours, row.memory_gib_hours, row.cost, row.cost_ratio,
              row.shared_idle_cost, 0.0 if row.custom_cost is None else row.custom_cost)
    if not all(map(math.isfinite, values)):  # never expected: name the field in the error
        where = f"row {name!r} at {row.step_start}"
        for field, value in zip(_NUMBER_FIELDS, values, strict=True):
            _finite(value, f"{where}: {field}")
    return {
        "name": name,
        "properties": _properties(row),
        "start": start,
        "end": end,
        "cpuCoreRequestAverage": row.cpu_core_request_average,
        "cpuCoreUsageAverage": row.cpu_core_usage_average,
        "ramByteRequestAverage": row.ram_byte_request_average,
        "ramByteUsageAverage": row.ram_byte_usage_average,
        "cpuCoreHours": row.cpu_core_hours,
        "ramByteHours": row.memory_gib_hours * GIB,
        "cost": row.cost,
        "costRatio": row.cost_ratio,
        "customCost": row.custom_cost,
        "sharedIdleCost": row.shared_idle_cost,
    }


_NUMBER_FIELDS = ("cpuCoreRequestAverage", "cpuCoreUsageAverage", "ramByteRequestAverage", "ramByteUsageAverage",
                  "cpuCoreHours", "ramByteHours", "cost", "costRatio", "sharedIdleCost", "customCost")


def cost_json(
    table: CostTable,
    *,
    window: Window,
    steps: tuple[Window, ...],
    coverage: float | None,
    warnings: Iterable[str],
    step_coverage: Sequence[float | None] | None = None,
) -> dict[str, Any]:
    """The /v2/cost JSON body: one map of cost sets per step of `steps` (module doc).

    Every row must belong to one of `steps` (same start and end); otherwise ValueError, a bug.
    """
    bounds = [(step.start_epoch(), step.end_epoch()) for step in steps]
    slots = {(a, b): (index, format_rfc3339(a), format_rfc3339(b)) for index, (a, b) in enumerate(bounds)}
    data: list[dict[str, Any]] = [{} for _ in steps]
    names = _names(table)
    if table.rendered is not None:
        if not table.rendered.finite:  # never expected: the engine never produces a non-finite number
            raise ValueError("a workload row holds a non-finite number: the engine must never produce one")
        for index, name, text in zip(table.rendered.step_index, names, table.rendered.bodies, strict=False):
            data[index][name] = orjson.Fragment('{"name":' + orjson.dumps(name).decode() + text)
    else:
        _workload_sets(table.workload, names, slots, data)
    workload_count = len(names) - len(table.others)
    for row, name in zip(table.others, names[workload_count:], strict=True):
        slot = _slot(slots, row.step_start, row.step_end, name)
        data[slot[0]][name] = _cost_set(row, name, slot[1], slot[2])
    body: dict[str, Any] = {"code": 200, "status": "success", "data": data, "currency": table.currency}
    if table.custom_currency is not None:
        body["customCurrency"] = table.custom_currency
    body["priceSource"] = table.price_source
    body["window"] = {"start": format_rfc3339(window.start_epoch()), "end": format_rfc3339(window.end_epoch())}
    body["coverage"] = None if coverage is None else _finite(coverage, "coverage")
    if step_coverage is not None:
        if len(step_coverage) != len(steps):
            raise ValueError(f"{len(step_coverage)} step coverages for {len(steps)} steps")
        body["steps"] = [{"start": start, "end": end, "coverage": None if value is None else _finite(value, "steps")}
                         for (_, start, end), value in zip(slots.values(), step_coverage, strict=True)]
    body["warnings"] = list(warnings)
    return body


_Slots = Mapping[tuple[int, int], tuple[int, str, str]]

#: A cost set's numbers in `_cost_set`'s order, as SQL over `engine.workload.finished_sql`'s columns.
_SET_NUMBERS = (("cpuCoreRequestAverage", "cpu_core_request_average"),
                ("cpuCoreUsageAverage", "cpu_core_usage_average"),
                ("ramByteRequestAverage", "ram_byte_request_average"),
                ("ramByteUsageAverage", "ram_byte_usage_average"),
                ("cpuCoreHours", "cpu_core_hours"), ("ramByteHours", f"memory_gib_hours * {GIB}"), ("cost", "cost"),
                ("costRatio", "cost_ratio"))


def cost_sets_sql(keys: int, custom: bool) -> tuple[str, dict[str, object]]:
    """The /v2/cost cost sets of the engine's finished workload rows, written by DuckDB (an
    `engine.query.Renderer`): at scale L a month by day by controller is 80k sets, which as Python
    dicts cost more than the whole computation (issue 15). The same fields, order and rules as
    `_cost_set`: properties in `PROPERTY_KEYS` order without empty values, then `labels` (keys
    sorted); numbers are written as their shortest round-tripping text. The body starts after the
    name, which `cost_json` writes once `_row_names` has made it unique in its step.

    One `concat` per text: a chain of `||` builds an intermediate string per operator, which made
    this list three times slower (issue 15)."""
    columns = grouping.PROPERTY_COLUMNS
    # '"<key>":<value>' for each shared property, NULL for the others, which concat_ws skips.
    entries = [f"CASE WHEN p_{columns[key]} <> '' THEN concat('\"{key}\":', to_json(p_{columns[key]})) END"
               for key in PROPERTY_KEYS]
    labels = "CASE WHEN labels IS NOT NULL THEN concat('\"labels\":', labels) END"
    numbers = [*_SET_NUMBERS, ("customCost", "custom_cost" if custom else "NULL::DOUBLE"),
               ("sharedIdleCost", "shared_idle_cost")]
    finite = " AND ".join(f"isfinite({sql})" for field, sql in numbers if field != "customCost" or custom)
    when = "strftime(make_timestamp(CAST({0} AS BIGINT) * 1000000), '%Y-%m-%dT%H:%M:%SZ')"
    pieces = [f"',\"properties\":{{', concat_ws(',', {', '.join([*entries, labels])}), '}}'",
              f"',\"start\":\"', {when.format('step_start')}, '\"'",
              f"',\"end\":\"', {when.format('step_end')}, '\"'",
              *(f"',\"{field}\":', coalesce(to_json({sql}), 'null')" for field, sql in numbers), "'}'"]
    base = f"concat_ws('/', {', '.join(f'k{i}' for i in range(keys))})"
    return f"{base} AS base, p_pod_uid AS uid, {finite} AS finite, concat({', '.join(pieces)}) AS body", {}


def _slot(slots: _Slots, start: int, end: int, name: str) -> tuple[int, str, str]:
    """The step (index, start and end text) of a row spanning [start, end); ValueError (a bug) if none."""
    slot = slots.get((start, end))
    if slot is None:
        raise ValueError(f"row {name!r} spans [{start}, {end}), which is not a step")
    return slot


def _workload_sets(rows: WorkloadRows, names: Sequence[str], slots: _Slots, data: list[dict[str, Any]]) -> None:
    """The workload rows' cost sets (`_cost_set`'s fields), written from the columns into `data`:
    one dict per row and no other object (issue 15: 80k rows at scale L)."""
    numbers = rows.numbers
    columns = [numbers[field] for field in NUMBER_FIELDS]
    customs = rows.custom_cost if rows.custom_cost is not None else [None] * len(rows)
    for field, values in [*zip(NUMBER_FIELDS, columns, strict=True), ("custom_cost", rows.custom_cost or [])]:
        if not all(map(math.isfinite, values)):  # never expected: name the row and field in the error
            index = next(i for i, value in enumerate(values) if not math.isfinite(value))
            _finite(values[index], f"row {names[index]!r} at {rows.step_start[index]}: {field}")
    for (start, end, name, found, labels, request, usage, ram_request, ram_usage, core_hours, gib_hours, cost,
         shared, ratio, custom) in zip(rows.step_start, rows.step_end, names, rows.properties, rows.labels,
                                       *columns, customs, strict=False):
        slot = _slot(slots, start, end, name)
        properties = {key: found[key] for key in PROPERTY_KEYS if found.get(key)}
        if labels is not None:
            properties["labels"] = {key: labels[key] for key in sorted(labels)}
        data[slot[0]][name] = {
            "name": name, "properties": properties, "start": slot[1], "end": slot[2],
            "cpuCoreRequestAverage": request, "cpuCoreUsageAverage": usage, "ramByteRequestAverage": ram_request,
            "ramByteUsageAverage": ram_usage, "cpuCoreHours": core_hours, "ramByteHours": gib_hours * GIB,
            "cost": cost, "costRatio": ratio, "customCost": custom, "sharedIdleCost": shared,
        }


def _cell(text: str) -> str:
    return "'" + text if text.startswith(_FORMULA_STARTS) else text


def cost_csv_lines(table: CostTable) -> Iterator[str]:
    """The /v2/cost CSV body, one string per record (each ending with `\\r\\n`): header, then rows."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")

    def line(cells: Sequence[object]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(CSV_COLUMNS)
    rows = [*(table.workload.row(index) for index in range(len(table.workload))), *table.others]
    named = sorted(zip(rows, _names(table), strict=True), key=lambda pair: (pair[0].step_start, pair[0].step_end))
    for row, name in named:
        start, end = format_rfc3339(row.step_start), format_rfc3339(row.step_end)
        rendered = _cost_set(row, name, start, end)
        text = [start, end, name]
        text += [row.properties.get(key, "") for key in CSV_COLUMNS[3:10]]
        numbers = [rendered[key] for key in CSV_COLUMNS[10:]]
        yield line([_cell(cell) for cell in text] + ["" if number is None else repr(number) for number in numbers])


def _usage_item(row: UsageRow) -> dict[str, Any]:
    where = f"usage row {row.project}/{row.cluster}/{row.namespace} {row.start}"
    return {
        "project": row.project,
        "cluster": row.cluster,
        "namespace": row.namespace,
        "item": str(row.item),
        "method": str(row.method),
        "usage": _finite(row.usage, f"{where}: usage"),
        "currency": row.currency,
        "start": row.start,
        "end": row.end,
        "cost": _finite(row.cost, f"{where}: cost"),
    }


def usage_json(rows: Sequence[UsageRow], total: int, current_page: int, page_size: int) -> dict[str, Any]:
    """Alauda's CostUsageResponse for one page: `rows` are that page's rows, `total` counts all pages."""
    return {
        "pageSize": page_size,
        "currentPage": current_page,
        "total": total,
        "items": [_usage_item(row) for row in rows],
    }
