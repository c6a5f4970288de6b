"""Checks of one answer against the oracle, and the invariants between answers.

Each check raises `Mismatch` with a message that says what differed; the runner counts and reports them.
Numbers are equal when `math.isclose(rel_tol=1e-9)` holds, with an absolute slack of 1e-12 for money,
ratios and cores and 1e-3 for bytes (byte-hours are ~1e12).

/v2/cost JSON: the reported window must be one the text means at a minute the server clock can have read
(`windows.resolve` over `ServerClock.minutes`), the sets `reference.cut_sets` of that window must tile it
and be the answer's sets (one map per set, each row's start/end its set's), and every set must hold the
oracle's rows (names made unique with `/<podUID>` as the payload does) with the oracle's figures and
properties. A window reaching past the server's now has facts until the minute its clock read (one of
`ServerClock.minutes`). CSV: the same rows, for one of the windows the text may mean (CSV carries no
window). Alauda: the page and total for the dates, the end clipped to that minute.
"""

from __future__ import annotations

import csv
import io
import itertools
import math
from collections import Counter
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

from tests import reference
from tests.campaign.oracle import CostQuestion, Oracle
from tests.campaign.requests import V2, Usage
from tests.campaign.windows import (
    Period,
    ServerClock,
    alauda_periods,
    floor60,
    midnight,
    resolve,
    rfc3339,
    to_rfc3339,
    zone,
)

MONEY = ("cost", "costRatio", "sharedIdleCost", "customCost", "cpuCoreRequestAverage", "cpuCoreUsageAverage",
         "cpuCoreHours")
BYTES = ("ramByteRequestAverage", "ramByteUsageAverage", "ramByteHours")
PROPERTIES = ("cluster", "node", "namespace", "controllerKind", "controller", "pod", "podUID", "project")
CSV_TEXT = ("cluster", "namespace", "pod", "node", "controllerKind", "controller")
CSV_NUMBERS = ("cpuCoreRequestAverage", "cpuCoreUsageAverage", "ramByteRequestAverage", "ramByteUsageAverage", "cost",
               "costRatio", "customCost")
CAP_MESSAGES = {"sets": "the cap is 2000 sets", "window": "the cap is 400 days"}


class Mismatch(AssertionError):
    pass


def close(a: float | None, b: float | None, slack: float = 1e-12) -> bool:
    if a is None or b is None:
        return a is b
    return math.isclose(a, b, rel_tol=1e-9, abs_tol=slack)


def question(spec: V2, sets: Sequence[tuple[int, int]], known: int | None = None) -> CostQuestion:
    return CostQuestion(sets=tuple(sets), aggregate=spec.aggregate, filter=spec.filter, method=spec.method,
                        idle=spec.idle, share_idle=spec.share_idle, share_split=spec.share_split,
                        idle_by_node=spec.idle_by_node, custom=spec.custom,
                        known=sets[-1][1] if known is None else known)


def candidate_windows(spec: V2, clock: ServerClock, t_send: float, t_recv: float) -> set[tuple[int, int]]:
    tz = zone(spec.tz)
    return {w for minute in clock.minutes(t_send, t_recv) for w in resolve(spec.window, minute, tz)}


def expected_names(rows: Mapping[Any, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The payload's names: a name used twice in a set becomes `name/<podUID>`."""
    counts = Counter(row["name"] for row in rows.values())
    out: dict[str, dict[str, Any]] = {}
    for row in rows.values():
        name = row["name"]
        if counts[name] > 1:
            uid = row["properties"].get("podUID")
            if not uid:
                raise Mismatch(f"ambiguous rows named {name!r} without podUID: the campaign cannot pair them")
            name = f"{name}/{uid}"
        out[name] = row
    return out


def compare_row(where: str, got: Mapping[str, Any], want: Mapping[str, Any], fields: Sequence[str]) -> None:
    for name in fields:
        slack = 1e-3 if name in BYTES else 1e-12
        if not close(got.get(name), want.get(name), slack):
            raise Mismatch(f"{where} {name}: got {got.get(name)!r}, oracle {want.get(name)!r}")


def check_sets(window: tuple[int, int], sets: Sequence[tuple[int, int]]) -> None:
    """Sets tile the window: the first starts at its start, each ends where the next starts, the last
    ends at its end."""
    if not sets or sets[0][0] != window[0] or sets[-1][1] != window[1]:
        raise Mismatch(f"sets {sets[:2]}...{sets[-1:]} do not cover the window {window}")
    for (_, end), (start, _) in itertools.pairwise(sets):
        if end != start:
            raise Mismatch(f"sets do not tile: one ends at {end}, the next starts at {start}")


def known_ends(window: tuple[int, int], clock: ServerClock, t_send: float, t_recv: float) -> list[int]:
    """Where the server's facts of `window` may end: its end, or the minute its clock read if sooner
    (nothing is collected after now: a window reaching into the future counts only its past)."""
    return sorted({min(window[1], max(window[0], minute)) for minute in clock.minutes(t_send, t_recv)})


def check_v2_json(body: dict[str, Any], spec: V2, oracle: Oracle, clock: ServerClock, t_send: float,
                  t_recv: float) -> tuple[tuple[int, int], int]:
    """The JSON answer against the oracle; returns the window used and where its facts ended."""
    degraded = [text for text in body.get("warnings", ()) if "live part" in text]
    if degraded:
        raise Mismatch(f"degraded on a healthy store (coverage {body.get('coverage')}): {degraded[0][:300]}")
    window = (rfc3339(body["window"]["start"]), rfc3339(body["window"]["end"]))
    allowed = candidate_windows(spec, clock, t_send, t_recv)
    if window not in allowed:
        raise Mismatch(f"window {body['window']} is not what {spec.window!r} means at the server clock "
                       f"(allowed: {sorted(allowed)[:4]})")
    if spec.form in ("duration",) or spec.window.lower() in ("today", "week", "month"):
        clock.observe(window[1], t_send, t_recv)
    sets = reference.cut_sets(window[0], window[1], spec.step, zone(spec.tz))
    check_sets(window, sets)
    if len(body["data"]) != len(sets):
        raise Mismatch(f"{len(body['data'])} sets answered, {len(sets)} expected for step {spec.step}")
    problems = []
    for known in known_ends(window, clock, t_send, t_recv):
        try:
            _check_json_sets(body, spec, oracle, sets, known)
            return window, known
        except Mismatch as error:
            problems.append(f"facts until {known}: {error}" if known < window[1] else str(error))
    raise Mismatch(" | ".join(problems))


def _check_json_sets(body: dict[str, Any], spec: V2, oracle: Oracle, sets: list[tuple[int, int]], known: int) -> None:
    expected, totals = oracle.cost_sets(question(spec, sets, known))
    fields = MONEY + BYTES
    for index, (bounds, got, want) in enumerate(zip(sets, body["data"], expected, strict=True)):
        names = expected_names(want)
        if set(got) != set(names):
            missing, extra = sorted(set(names) - set(got))[:5], sorted(set(got) - set(names))[:5]
            raise Mismatch(f"set {index} {bounds}: rows differ: missing {missing}, unexpected {extra}")
        for name, row in names.items():
            item = got[name]
            where = f"set {index} row {name!r}"
            if (item["start"], item["end"]) != (to_rfc3339(bounds[0]), to_rfc3339(bounds[1])):
                raise Mismatch(f"{where}: spans {item['start']}..{item['end']}, its set is {bounds}")
            compare_row(where, item, row, fields)
            if row["kind"] == reference.WORKLOAD:
                shown = {key: item["properties"].get(key) for key in PROPERTIES if item["properties"].get(key)}
                if shown != row["properties"]:
                    raise Mismatch(f"{where}: properties {shown}, oracle {row['properties']}")
        conserving = spec.filter is None and (spec.share_idle or spec.idle)
        if conserving and got:  # rows + idle = the cluster cost of the set; cost ratios add up to 1
            total = sum(item["cost"] for item in got.values())
            if not close(total, totals[index]):
                raise Mismatch(f"set {index}: rows add up to {total}, the cluster cost is {totals[index]}")
            if totals[index] > 0 and not close(sum(item["costRatio"] for item in got.values()), 1.0, 1e-9):
                raise Mismatch(f"set {index}: cost ratios add up to {sum(i['costRatio'] for i in got.values())}")


def csv_rows(text: str) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(text)))


def check_v2_csv(text: str, spec: V2, oracle: Oracle, clock: ServerClock, t_send: float,
                 t_recv: float) -> tuple[tuple[int, int], int]:
    """The CSV answer against the oracle for one of the windows the text may mean at a minute the
    server clock may have read (facts until that minute); returns that window and where facts ended."""
    lines = csv_rows(text)
    problems = []
    tz = zone(spec.tz)
    candidates = sorted({(window, min(window[1], max(window[0], minute)))
                         for minute in clock.minutes(t_send, t_recv) for window in resolve(spec.window, minute, tz)})
    for window, known in candidates:
        try:
            _check_csv_window(lines, spec, oracle, window, known)
            return window, known
        except Mismatch as error:
            problems.append(f"window {window} until {known}: {error}")
    raise Mismatch("CSV matches no window the text may mean: " + " | ".join(problems))


def _check_csv_window(lines: list[dict[str, str]], spec: V2, oracle: Oracle, window: tuple[int, int],
                      known: int) -> None:
    sets = reference.cut_sets(window[0], window[1], spec.step, zone(spec.tz))
    expected, _ = oracle.cost_sets(question(spec, sets, known))
    by_set: dict[tuple[str, str], dict[str, dict[str, str]]] = {}
    for line in lines:
        by_set.setdefault((line["start"], line["end"]), {})[line["name"]] = line
    wanted = {(to_rfc3339(a), to_rfc3339(b)): expected_names(rows) for (a, b), rows in zip(sets, expected,
                                                                                            strict=True) if rows}
    if set(by_set) != set(wanted):
        raise Mismatch(f"CSV sets {sorted(by_set)[:3]} are not the oracle's {sorted(wanted)[:3]}")
    for bounds, rows in wanted.items():
        got = by_set[bounds]
        if set(got) != set(rows):
            raise Mismatch(f"CSV set {bounds}: rows {sorted(got)[:5]} are not the oracle's {sorted(rows)[:5]}")
        for name, row in rows.items():
            line = got[name]
            numbers = {key: (float(line[key]) if line[key] != "" else None) for key in CSV_NUMBERS}
            compare_row(f"CSV set {bounds} row {name!r}", numbers, row, CSV_NUMBERS)
            if row["kind"] == reference.WORKLOAD:
                for key in CSV_TEXT:
                    cell = line[key][1:] if line[key].startswith("'") else line[key]
                    if cell != (row["properties"].get(key) or ""):
                        raise Mismatch(f"CSV set {bounds} row {name!r} {key}: {line[key]!r}")


def check_csv_equals_json(text: str, body: dict[str, Any]) -> None:
    """Every CSV line is the JSON cost set of the same set and name, cell for cell (numbers exactly)."""
    lines = csv_rows(text)
    items = {(item["start"], item["end"], name): item for step in body["data"] for name, item in step.items()}
    if len(lines) != len(items):
        raise Mismatch(f"CSV has {len(lines)} rows, JSON {len(items)}")
    for line in lines:
        item = items.get((line["start"], line["end"], line["name"]))
        if item is None:
            raise Mismatch(f"CSV row {line['name']!r} {line['start']} is not in the JSON answer")
        for key in CSV_NUMBERS:  # two requests, two computations: the last bits of a sum may differ
            value = None if line[key] == "" else float(line[key])
            if not close(value, item[key]):
                raise Mismatch(f"CSV {line['name']!r} {key} = {line[key]!r}, JSON {item[key]!r}")
        for key in CSV_TEXT:
            cell = line[key][1:] if line[key].startswith("'") else line[key]
            if cell != str(item["properties"].get(key, "")):
                raise Mismatch(f"CSV {line['name']!r} {key} = {line[key]!r}, JSON {item['properties'].get(key)!r}")


def identity(name: str, item: Mapping[str, Any], by_pod: bool) -> tuple[str, str]:
    """A row across sets: its name without the `/<podUID>` a reused pod name gets, and (grouping by
    pod) its podUID: a pod row is the same pod in every set."""
    uid = str(item["properties"].get("podUID", ""))
    base = name[: -len(uid) - 1] if uid and name.endswith("/" + uid) else name
    return base, uid if by_pod else ""


#: Figures that add up over sets; only the quantities do when a set boundary cuts an hour (`check_sets_add_up`).
ADDITIVE = ("cost", "sharedIdleCost", "cpuCoreHours", "ramByteHours", "customCost")
QUANTITIES = ("cpuCoreHours", "ramByteHours")


def check_sets_add_up(stepped: dict[str, Any], unstepped: dict[str, Any], by_pod: bool,
                      fields: Sequence[str] = ADDITIVE) -> None:
    """Σ over sets of `fields` = the unstepped answer's (rel 1e-9).

    Money adds up only when every set boundary is a whole hour: a boundary inside an hour (a +05:30
    zone's midnight) makes the server price the two pieces of that hour apart, and conservation
    (costs above a node's pool scaled down to it) and idle shares are not additive over pieces, while
    the unstepped answer prices the whole hour. Core-hours and byte-hours add up whatever the cut."""
    sums: dict[tuple[str, str], dict[str, float]] = {}
    for step in stepped["data"]:
        for name, item in step.items():
            acc = sums.setdefault(identity(name, item, by_pod), dict.fromkeys(fields, 0.0))
            for figure in fields:
                acc[figure] += item[figure] or 0.0
    whole = {identity(name, item, by_pod): item for name, item in unstepped["data"][0].items()}
    if set(sums) != set(whole):
        raise Mismatch(f"Σ sets has rows {sorted(set(sums) - set(whole))[:4]} the unstepped answer lacks, "
                       f"and lacks {sorted(set(whole) - set(sums))[:4]}")
    for key, acc in sums.items():
        for name in fields:
            slack = 1e-3 if name in BYTES else 1e-12
            if not close(acc[name], whole[key][name] or 0.0, slack):
                raise Mismatch(f"Σ sets {key} {name} = {acc[name]!r}, unstepped {whole[key][name]!r}")


def usage_window(spec: Usage, minute: int) -> tuple[int, int]:
    """[midnight(first), midnight(last + 1)) with its end clipped to the server's minute."""
    tz = zone(spec.tz)
    start = midnight(spec.first, tz)
    end = midnight(spec.last + timedelta(days=1), tz)
    return start, min(end, max(start, floor60(minute)))


class UsageQuestion:
    """What `reference.reference_usage` reads of a query."""

    def __init__(self, spec: Usage, periods: list[Period]) -> None:
        self.periods, self.item, self.method, self.kind = periods, spec.item, spec.method, spec.kind
        self.name, self.project = spec.name, spec.project


def check_usage(body: dict[str, Any], spec: Usage, oracle: Oracle, clock: ServerClock, t_send: float,
                t_recv: float) -> list[dict[str, Any]]:
    """The Alauda page against the oracle for a clip minute the clock allows; returns all oracle rows."""
    periods = alauda_periods(spec.first, spec.last, spec.step, zone(spec.tz))
    problems = []
    bounds = [period.window.start for period in periods[1:]]
    for window in sorted({usage_window(spec, m) for m in clock.minutes(t_send, t_recv)}):
        rows = oracle.usage(window[0], window[1], bounds, UsageQuestion(spec, periods))
        page = rows[(spec.page - 1) * spec.size: spec.page * spec.size]
        try:
            if body["total"] != len(rows):
                raise Mismatch(f"total {body['total']}, oracle {len(rows)}")
            if len(body["items"]) != len(page):
                raise Mismatch(f"{len(body['items'])} items, oracle {len(page)}")
            for got, want in zip(body["items"], page, strict=True):
                for key in ("project", "cluster", "namespace", "start", "end", "currency"):
                    if got[key] != want[key]:
                        raise Mismatch(f"item {key} {got[key]!r}, oracle {want[key]!r} ({want})")
                if (got["item"], got["method"]) != (str(want["item"]), str(want["method"])):
                    raise Mismatch(f"item/method {got['item']}/{got['method']}, asked {want['item']}/{want['method']}")
                if not (close(got["usage"], want["usage"]) and close(got["cost"], want["cost"])):
                    raise Mismatch(f"{got['namespace'] or got['project']} {got['start']}: usage/cost "
                                   f"{got['usage']!r}/{got['cost']!r}, oracle {want['usage']!r}/{want['cost']!r}")
            return rows
        except Mismatch as error:
            problems.append(f"window {window}: {error}")
    raise Mismatch("usage matches no clip the clock allows: " + " | ".join(problems))

