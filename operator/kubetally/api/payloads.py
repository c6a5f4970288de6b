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
  `coverage` (the share of the window with data; null when unknown) and `warnings`.
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

from kubetally.domain.timeparse import format_rfc3339
from kubetally.domain.vocabulary import GIB
from kubetally.domain.window import Window
from kubetally.engine.query import CostRow, CostTable, UsageRow

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


def _row_names(rows: Sequence[CostRow]) -> list[str]:
    """Each row's key in its step's map: its name, made unique within the step (module doc)."""
    counts = Counter((row.step_start, row.step_end, row.name) for row in rows)
    used: set[tuple[int, int, str]] = set()
    names: list[str] = []
    for row in rows:
        base = row.name
        uid = row.properties.get("podUID", "")
        if counts[(row.step_start, row.step_end, base)] > 1 and uid:
            base = f"{base}/{uid}"
        name, ordinal = base, 2
        while (row.step_start, row.step_end, name) in used:
            name, ordinal = f"{base}/{ordinal}", ordinal + 1
        used.add((row.step_start, row.step_end, name))
        names.append(name)
    return names


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
) -> dict[str, Any]:
    """The /v2/cost JSON body: one map of cost sets per step of `steps` (module doc).

    Every row must belong to one of `steps` (same start and end); otherwise ValueError, a bug.
    """
    bounds = [(step.start_epoch(), step.end_epoch()) for step in steps]
    slots = {(a, b): (index, format_rfc3339(a), format_rfc3339(b)) for index, (a, b) in enumerate(bounds)}
    data: list[dict[str, Any]] = [{} for _ in steps]
    for row, name in zip(table.rows, _row_names(table.rows), strict=True):
        slot = slots.get((row.step_start, row.step_end))
        if slot is None:
            raise ValueError(f"row {row.name!r} spans [{row.step_start}, {row.step_end}), which is not a step")
        data[slot[0]][name] = _cost_set(row, name, slot[1], slot[2])
    body: dict[str, Any] = {"code": 200, "status": "success", "data": data, "currency": table.currency}
    if table.custom_currency is not None:
        body["customCurrency"] = table.custom_currency
    body["priceSource"] = table.price_source
    body["window"] = {"start": format_rfc3339(window.start_epoch()), "end": format_rfc3339(window.end_epoch())}
    body["coverage"] = None if coverage is None else _finite(coverage, "coverage")
    body["warnings"] = list(warnings)
    return body


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
    named = sorted(zip(table.rows, _row_names(table.rows), strict=True),
                   key=lambda pair: (pair[0].step_start, pair[0].step_end))
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
