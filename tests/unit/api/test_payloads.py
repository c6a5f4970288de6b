"""kubetally.api.payloads: bodies of a small hand-built CostTable and usage page, checked field by field."""

from __future__ import annotations

import csv
import io
import json
import math
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from kubetally.api.payloads import CSV_COLUMNS, REASONS, cost_csv_lines, cost_json, status, usage_json
from kubetally.domain.vocabulary import Item, Method
from kubetally.domain.window import Window
from kubetally.engine.query import IDLE, WORKLOAD, CostRow, CostTable, UsageRow, WorkloadRows

T0 = 1711238400  # 2024-03-24T00:00:00Z
T1, T2, T3 = T0 + 3600, T0 + 7200, T0 + 10800


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


STEPS = (Window(at("2024-03-24T00:00"), at("2024-03-24T01:00")), Window(at("2024-03-24T01:00"), at("2024-03-24T02:00")),
         Window(at("2024-03-24T02:00"), at("2024-03-24T03:00")))
WINDOW = Window(at("2024-03-24T00:00"), at("2024-03-24T03:00"))

POD = CostRow(
    step_start=T0, step_end=T1, kind=WORKLOAD, key=("terway-eniip-kz68n",),
    properties={"cluster": "c1", "node": "n1", "namespace": "kube-system", "controllerKind": "DaemonSet",
                "controller": "terway-eniip", "pod": "terway-eniip-kz68n", "podUID": "uid-1",
                "providerID": "cn-hangzhou.i-abc", "project": ""},
    labels={"app": "terway-eniip", "a": "x"},
    cpu_core_request_average=0.5, cpu_core_usage_average=0.25, ram_byte_request_average=1073741824.0,
    ram_byte_usage_average=536870912.0, cpu_core_hours=0.5, memory_gib_hours=1.0, cost=0.1 + 0.2,
    shared_idle_cost=0.0, cost_ratio=0.25, custom_cost=0.125,
)
IDLE_ROW = CostRow(
    step_start=T0, step_end=T1, kind=IDLE, key=("__idle__",), properties={"cluster": "c1"}, labels=None,
    cpu_core_request_average=0.0, cpu_core_usage_average=0.0, ram_byte_request_average=0.0,
    ram_byte_usage_average=0.0, cpu_core_hours=0.0, memory_gib_hours=0.0, cost=0.9, shared_idle_cost=0.0,
    cost_ratio=0.75, custom_cost=None,
)
WEB_A = replace(POD, step_start=T1, step_end=T2, key=("web-0",), labels={},
                properties={"namespace": "shop", "pod": "web-0", "podUID": "uid-a"})
WEB_B = replace(WEB_A, properties={"namespace": "shop", "pod": "web-0", "podUID": "uid-b"}, cost=2.5)
NODE_IDLE = replace(IDLE_ROW, step_start=T1, step_end=T2, key=("idle:n1",),
                    properties={"node": "n1", "cluster": "c1", "providerID": "cn-hangzhou.i-abc"})


def table_of(rows: tuple[CostRow, ...], **changes: object) -> CostTable:
    """A table of `rows` (answer order): the workload ones as the engine's columns, the rest as rows."""
    settings: dict[str, Any] = {"steps": (), "currency": "CNY", "custom_currency": "USD",
                                "price_source": "costweights/default", **changes}
    return CostTable(workload=WorkloadRows.of(row for row in rows if row.kind == WORKLOAD),
                     others=tuple(row for row in rows if row.kind != WORKLOAD), **settings)


TABLE = table_of((POD, IDLE_ROW, WEB_A, WEB_B, NODE_IDLE))


def render(table: CostTable = TABLE, coverage: float | None = 0.875) -> dict[str, object]:
    return cost_json(table, window=WINDOW, steps=STEPS, coverage=coverage, warnings=["a warning"])


def test_status_shape_and_reasons() -> None:
    assert status(400, "BadRequest", 'window: "x" is not a window') == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'window: "x" is not a window', "reason": "BadRequest", "code": 400,
    }
    assert dict(REASONS) == {400: "BadRequest", 401: "Unauthorized", 403: "Forbidden", 404: "NotFound",
                             500: "InternalError", 503: "ServiceUnavailable"}
    assert status(503, REASONS[503], "down")["reason"] == "ServiceUnavailable"


def test_cost_json_envelope() -> None:
    body = render()
    assert [key for key in body if key != "data"] == [
        "code", "status", "currency", "customCurrency", "priceSource", "window", "coverage", "warnings"]
    assert (body["code"], body["status"], body["currency"], body["customCurrency"], body["priceSource"]) == (
        200, "success", "CNY", "USD", "costweights/default")
    assert body["window"] == {"start": "2024-03-24T00:00:00Z", "end": "2024-03-24T03:00:00Z"}
    assert (body["coverage"], body["warnings"]) == (0.875, ["a warning"])
    data = body["data"]
    assert isinstance(data, list)
    assert [list(step) for step in data] == [
        ["terway-eniip-kz68n", "__idle__"], ["web-0/uid-a", "web-0/uid-b", "idle:n1"], []]


def test_cost_json_without_custom_currency_or_coverage() -> None:
    body = render(replace(TABLE, custom_currency=None), coverage=None)
    assert "customCurrency" not in body
    assert body["coverage"] is None


def test_cost_set_field_by_field() -> None:
    data = render()["data"]
    assert isinstance(data, list)
    assert data[0]["terway-eniip-kz68n"] == {
        "name": "terway-eniip-kz68n",
        "properties": {"cluster": "c1", "node": "n1", "namespace": "kube-system", "controllerKind": "DaemonSet",
                       "controller": "terway-eniip", "pod": "terway-eniip-kz68n", "podUID": "uid-1",
                       "providerID": "cn-hangzhou.i-abc", "labels": {"a": "x", "app": "terway-eniip"}},
        "start": "2024-03-24T00:00:00Z", "end": "2024-03-24T01:00:00Z",
        "cpuCoreRequestAverage": 0.5, "cpuCoreUsageAverage": 0.25,
        "ramByteRequestAverage": 1073741824.0, "ramByteUsageAverage": 536870912.0,
        "cpuCoreHours": 0.5, "ramByteHours": 1073741824.0,
        "cost": 0.30000000000000004, "costRatio": 0.25, "customCost": 0.125, "sharedIdleCost": 0.0,
    }
    assert list(data[0]["terway-eniip-kz68n"]["properties"]["labels"]) == ["a", "app"]


def test_idle_rows() -> None:
    data = render()["data"]
    assert isinstance(data, list)
    idle = data[0]["__idle__"]
    assert (idle["name"], idle["properties"], idle["cost"], idle["costRatio"], idle["customCost"]) == (
        "__idle__", {"cluster": "c1"}, 0.9, 0.75, None)
    assert "labels" not in idle["properties"]
    node_idle = data[1]["idle:n1"]
    assert node_idle["properties"] == {"cluster": "c1", "node": "n1", "providerID": "cn-hangzhou.i-abc"}
    assert (node_idle["start"], node_idle["end"]) == ("2024-03-24T01:00:00Z", "2024-03-24T02:00:00Z")


def test_reused_pod_names_get_their_uid() -> None:
    data = render()["data"]
    assert isinstance(data, list)
    assert (data[1]["web-0/uid-a"]["name"], data[1]["web-0/uid-a"]["cost"]) == ("web-0/uid-a", 0.30000000000000004)
    assert (data[1]["web-0/uid-b"]["name"], data[1]["web-0/uid-b"]["cost"]) == ("web-0/uid-b", 2.5)
    assert data[1]["web-0/uid-a"]["properties"] == {"namespace": "shop", "pod": "web-0", "podUID": "uid-a",
                                                    "labels": {}}


@pytest.mark.parametrize(
    ("rows", "names"),
    [
        ((replace(WEB_A, properties={}), replace(WEB_A, properties={}), replace(WEB_A, properties={})),
         ["web-0", "web-0/2", "web-0/3"]),
        ((WEB_A, replace(WEB_A, step_start=T2, step_end=T3)), ["web-0"]),  # one per step: no suffix
        ((WEB_A, WEB_A), ["web-0/uid-a", "web-0/uid-a/2"]),
        ((replace(WEB_A, key=("web-0/uid-a",), properties={}), WEB_A, WEB_B), ["web-0/uid-a", "web-0/uid-a/2", "web-0/uid-b"]),
    ],
)
def test_name_collisions_in_one_step(rows: tuple[CostRow, ...], names: list[str]) -> None:
    data = render(table_of(rows))["data"]
    assert isinstance(data, list)
    assert list(data[1]) == names


def test_json_round_trips_at_full_precision() -> None:
    text = json.dumps(render(), allow_nan=False)
    assert json.loads(text)["data"][0]["terway-eniip-kz68n"]["cost"] == 0.30000000000000004


@pytest.mark.parametrize("field", ["cost", "cost_ratio", "custom_cost", "cpu_core_hours", "memory_gib_hours",
                                   "ram_byte_usage_average", "shared_idle_cost"])
@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_numbers_are_refused(field: str, bad: float) -> None:
    changes: dict[str, Any] = {field: bad}
    table = table_of((replace(POD, **changes),))
    with pytest.raises(ValueError, match="non-finite"):
        render(table)
    with pytest.raises(ValueError, match="non-finite"):
        list(cost_csv_lines(table))
    with pytest.raises(ValueError, match="non-finite"):
        render(coverage=bad)


def test_row_outside_the_steps_is_a_bug() -> None:
    with pytest.raises(ValueError, match="not a step"):
        render(table_of((replace(POD, step_end=T0 + 60),)))


# --- CSV ---------------------------------------------------------------------------------------------

HEADER = ("start,end,name,cluster,namespace,pod,node,controllerKind,controller,providerID,cpuCoreRequestAverage,"
          "cpuCoreUsageAverage,ramByteRequestAverage,ramByteUsageAverage,cost,costRatio,customCost\r\n")


def test_csv_header_and_rows_in_step_order() -> None:
    lines = list(cost_csv_lines(table_of((WEB_A, POD, IDLE_ROW))))
    assert lines[0] == HEADER
    assert tuple(HEADER.strip().split(",")) == CSV_COLUMNS
    assert lines[1:] == [
        "2024-03-24T00:00:00Z,2024-03-24T01:00:00Z,terway-eniip-kz68n,c1,kube-system,terway-eniip-kz68n,n1,DaemonSet,"
        "terway-eniip,cn-hangzhou.i-abc,0.5,0.25,1073741824.0,536870912.0,0.30000000000000004,0.25,0.125\r\n",
        "2024-03-24T00:00:00Z,2024-03-24T01:00:00Z,__idle__,c1,,,,,,,0.0,0.0,0.0,0.0,0.9,0.75,\r\n",
        "2024-03-24T01:00:00Z,2024-03-24T02:00:00Z,web-0,,shop,web-0,,,,,0.5,0.25,1073741824.0,536870912.0,"
        "0.30000000000000004,0.25,0.125\r\n",
    ]


def test_csv_quoting_and_injection_defence() -> None:
    row = replace(POD, key=("=SUM(A1)",), custom_cost=None,
                  properties={"namespace": 'a,"b"', "pod": "-x", "node": "@n", "controller": "+c",
                              "cluster": "\tc", "providerID": "line\nbreak", "controllerKind": "Deploy=ment"})
    lines = list(cost_csv_lines(table_of((row,))))
    assert lines[1] == ("2024-03-24T00:00:00Z,2024-03-24T01:00:00Z,'=SUM(A1),'\tc,\"a,\"\"b\"\"\",'-x,'@n,"
                        "Deploy=ment,'+c,\"line\nbreak\",0.5,0.25,1073741824.0,536870912.0,0.30000000000000004,0.25,\r\n")
    parsed = next(csv.reader(io.StringIO(lines[1])))
    assert parsed[2:10] == ["'=SUM(A1)", "'\tc", 'a,"b"', "'-x", "'@n", "Deploy=ment", "'+c", "line\nbreak"]
    assert parsed[-1] == ""


def test_csv_reused_names_and_empty_table() -> None:
    lines = list(cost_csv_lines(table_of((WEB_A, WEB_B))))
    assert [line.split(",")[2] for line in lines[1:]] == ["web-0/uid-a", "web-0/uid-b"]
    assert list(cost_csv_lines(table_of(()))) == [HEADER]


# --- Alauda usage ------------------------------------------------------------------------------------


def test_usage_page() -> None:
    rows = (
        UsageRow(project="alpha", cluster="c1", namespace="shop", item=Item.CPU, method=Method.EFFECTIVE, usage=8.5,
                 cost=0.85, currency="CNY", start="20250601", end="20250630"),
        UsageRow(project="", cluster="c1", namespace="", item=Item.STORAGE, method=Method.PROJECT_QUOTA, usage=1e-17,
                 cost=0.1 + 0.2, currency="USD", start="20250701", end="20250701"),
    )
    body = usage_json(rows, 45, 3, 20)
    assert body == {
        "pageSize": 20, "currentPage": 3, "total": 45,
        "items": [
            {"project": "alpha", "cluster": "c1", "namespace": "shop", "item": "Cpu", "method": "Effective",
             "usage": 8.5, "currency": "CNY", "start": "20250601", "end": "20250630", "cost": 0.85},
            {"project": "", "cluster": "c1", "namespace": "", "item": "Storage", "method": "ProjectQuota",
             "usage": 1e-17, "currency": "USD", "start": "20250701", "end": "20250701", "cost": 0.30000000000000004},
        ],
    }
    assert list(body) == ["pageSize", "currentPage", "total", "items"]
    assert json.loads(json.dumps(body, allow_nan=False)) == body
    assert usage_json((), 45, 4, 20) == {"pageSize": 20, "currentPage": 4, "total": 45, "items": []}
    with pytest.raises(ValueError, match="non-finite"):
        usage_json((replace(rows[0], usage=math.nan),), 1, 1, 20)
