"""kubetally.api.params: every parameter, value, default, error and cap; by hand (NOW: Wed 10:30:15 UTC)."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from multidict import MultiDict

from kubetally.api.params import COST_PARAMETERS, USAGE_PARAMETERS, parse_cost_params, parse_usage_params
from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.errors import SpecError
from kubetally.domain.filters import AllOf, Condition, Field, Op
from kubetally.domain.vocabulary import Item, Method, ShareSplit, UsageKind
from kubetally.domain.window import Window
from kubetally.engine.query import CostQuery

NOW = datetime(2024, 3, 27, 10, 30, 15, tzinfo=UTC)


def w(start: str, end: str) -> Window:
    return Window(*(datetime.fromisoformat(text).replace(tzinfo=UTC) for text in (start, end)))


def cost_error(params: dict[str, str], keys: list[str] | None = None, resolution: int = 60) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_cost_params(params, keys, now=NOW, resolution_seconds=resolution)
    return caught.value


def usage_error(params: dict[str, str], project: str | None = None) -> SpecError:
    with pytest.raises(SpecError) as caught:
        parse_usage_params(params, project=project)
    return caught.value


# --- /v2/cost: the three ACK reference examples ------------------------------------------------


def test_ack_example_1_yesterday_daemonset_filter() -> None:
    text = 'namespace:"kube-system"+controllerKind:"DaemonSet"+label[app]:"terway-eniip"'
    request = parse_cost_params({"window": "yesterday", "filter": text}, now=NOW)
    assert request.query == CostQuery(
        window=w("2024-03-26T00:00", "2024-03-27T00:00"),
        filter=AllOf((Condition(Field.NAMESPACE, Op.EQ, ("kube-system",)),
                      Condition(Field.CONTROLLER_KIND, Op.EQ, ("DaemonSet",)),
                      Condition(Field.LABEL, Op.EQ, ("terway-eniip",), "app"))),
    )
    assert (request.format, request.custom_weights, request.time_zone) == ("json", None, UTC)
    assert request.steps == (w("2024-03-26T00:00", "2024-03-27T00:00"),)


def test_ack_example_2_three_hourly_steps() -> None:
    request = parse_cost_params({"window": "2024-03-24T00:00:00Z,2024-03-24T03:00:00Z", "step": "1h",
                                 "filter": 'namespace:"kube-system"+pod:"terway-eniip-kz68n"'}, now=NOW)
    assert request.query.step_seconds == 3600
    assert request.query.filter == AllOf((Condition(Field.NAMESPACE, Op.EQ, ("kube-system",)),
                                          Condition(Field.POD, Op.EQ, ("terway-eniip-kz68n",))))
    assert request.steps == (w("2024-03-24T00:00", "2024-03-24T01:00"), w("2024-03-24T01:00", "2024-03-24T02:00"),
                             w("2024-03-24T02:00", "2024-03-24T03:00"))


def test_ack_example_3_aggregate_by_label() -> None:  # every other field at its default
    request = parse_cost_params({"window": "2h", "aggregate": "label:app"}, now=NOW)
    assert request.query == CostQuery(window=w("2024-03-27T08:30", "2024-03-27T10:30"),
                                      aggregate=(AggregateKey(Dimension.LABEL, "app"),))


# --- window, timeZone and flooring -------------------------------------------------------------


@pytest.mark.parametrize(
    ("window", "zone", "start", "end"),
    [
        ("today", "", "2024-03-27T00:00", "2024-03-27T10:30"), ("yesterday", "UTC", "2024-03-26T00:00", "2024-03-27T00:00"),
        ("week", "", "2024-03-25T00:00", "2024-03-27T10:30"), ("lastweek", "", "2024-03-18T00:00", "2024-03-25T00:00"),
        ("month", "", "2024-03-01T00:00", "2024-03-27T10:30"), ("lastmonth", "", "2024-02-01T00:00", "2024-03-01T00:00"),
        ("30m", "", "2024-03-27T10:00", "2024-03-27T10:30"), ("12h", "", "2024-03-26T22:30", "2024-03-27T10:30"),
        ("7d", "", "2024-03-20T10:30", "2024-03-27T10:30"), ("2024-03-26T00:00:00Z,2024-03-27T00:00:00Z", "", "2024-03-26T00:00", "2024-03-27T00:00"),
        ("1711382400,1711468800", "Asia/Shanghai", "2024-03-25T16:00", "2024-03-26T16:00"), ("2024-03-24T00:00:30Z,2024-03-24T01:00:45Z", "", "2024-03-24T00:00", "2024-03-24T01:00"),
        ("yesterday", "Asia/Shanghai", "2024-03-25T16:00", "2024-03-26T16:00"), ("yesterday", "+05:30", "2024-03-25T18:30", "2024-03-26T18:30"),
        ("today", "-05:00", "2024-03-27T05:00", "2024-03-27T10:30"), ("  Yesterday ", " ", "2024-03-26T00:00", "2024-03-27T00:00"),
    ],
)
def test_window_forms_zones_and_flooring(window: str, zone: str, start: str, end: str) -> None:
    request = parse_cost_params({"window": window, "timeZone": zone}, now=NOW)
    assert request.query.window == w(start, end)


def test_time_zone_is_kept() -> None:
    assert parse_cost_params({"window": "1h", "timeZone": "Asia/Shanghai"}, now=NOW).time_zone == ZoneInfo("Asia/Shanghai")
    assert parse_cost_params({"window": "1h", "timeZone": "+08:00"}, now=NOW).time_zone == timezone(timedelta(hours=8))


@pytest.mark.parametrize(("resolution", "start", "end"),
                         [(300, "2024-03-27T09:30", "2024-03-27T10:30"), (3600, "2024-03-27T09:00", "2024-03-27T10:00")])
def test_window_is_floored_to_the_resolution(resolution: int, start: str, end: str) -> None:
    assert parse_cost_params({"window": "1h"}, now=NOW, resolution_seconds=resolution).query.window == w(start, end)


# --- step ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(("step", "seconds"), [("60m", 3600), ("1h", 3600), ("2h", 7200), ("5h", 18000), ("25h", 90000),
                                               ("1d", 86400), ("1w", 604800), ("3600s", 3600), ("", None)])
def test_valid_steps(step: str, seconds: int | None) -> None:
    assert parse_cost_params({"window": "1h", "step": step}, now=NOW).query.step_seconds == seconds


def test_step_longer_than_the_window_gives_one_set() -> None:
    request = parse_cost_params({"window": "2h", "step": "1d"}, now=NOW)
    assert request.steps == (w("2024-03-27T08:30", "2024-03-27T10:30"),)


@pytest.mark.parametrize(
    ("params", "resolution", "fragment"),
    [
        ({"step": "90s"}, 60, "not a whole number of hours; accepted: a whole number of hours, at least 1h"),
        ({"step": "1m"}, 60, "sub-hour steps such as 30m are not served"),
        ({"step": "30m"}, 60, "not a whole number of hours"),
        ({"step": "45m"}, 60, "not a whole number of hours"),
        ({"step": "90m"}, 60, "the ledger is hourly"),
        ({"step": "0h"}, 60, "is not a duration; accepted: a whole number of hours"),
        ({"step": "-1h"}, 60, "is not a duration; accepted: a whole number of hours"),
        ({"step": "1.5h"}, 60, "not a duration"),
        ({"step": "1h30m"}, 60, "not a duration"),
        ({"window": "84d", "step": "1h"}, 60, "into 2017 sets; the cap is 2000 sets"),
        ({"window": "400d", "step": "4h"}, 60, "into 2401 sets; the cap is 2000 sets"),
    ],
)
def test_step_errors(params: dict[str, str], resolution: int, fragment: str) -> None:
    error = cost_error({"window": "1h", **params}, resolution=resolution)
    assert error.field == "step"
    assert fragment in error.message
    assert "e.g." in error.message or "accepted" in error.message


def test_step_and_window_caps_at_their_limits() -> None:
    # 83 days to 10:30 by hour: 83·24 whole hours between two :30 edges, + 1 = 1993 sets. 400 days by 5h:
    # both ends lie 5400 s past a multiple of 18000 s, so 400·24/5 = 1920 boundaries inside, 1921 sets.
    assert len(parse_cost_params({"window": "83d", "step": "1h"}, now=NOW).steps) == 1993
    assert len(parse_cost_params({"window": "400d", "step": "5h"}, now=NOW).steps) == 1921
    assert parse_cost_params({"window": "400d"}, now=NOW).query.window.seconds == 400 * 86400


# --- the other /v2/cost parameters ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("aggregate", "keys"),
    [("", (AggregateKey(Dimension.POD),)), ("namespace", (AggregateKey(Dimension.NAMESPACE),)),
     ("controller", (AggregateKey(Dimension.CONTROLLER),)), ("controllerKind", (AggregateKey(Dimension.CONTROLLER_KIND),)),
     ("node", (AggregateKey(Dimension.NODE),)), ("pod", (AggregateKey(Dimension.POD),)),
     ("namespace,label:app", (AggregateKey(Dimension.NAMESPACE), AggregateKey(Dimension.LABEL, "app")))],
)
def test_aggregate(aggregate: str, keys: tuple[AggregateKey, ...]) -> None:
    assert parse_cost_params({"window": "1h", "aggregate": aggregate}, now=NOW).query.aggregate == keys


@pytest.mark.parametrize("name", ["idle", "shareIdle", "idleByNode"])
@pytest.mark.parametrize(("text", "value"), [("true", True), ("TRUE", True), ("1", True), ("false", False),
                                             ("False", False), ("0", False), (" true ", True)])
def test_booleans(name: str, text: str, value: bool) -> None:
    query = parse_cost_params({"window": "1h", name: text}, now=NOW).query
    fields = {"idle": query.idle, "shareIdle": query.share_idle, "idleByNode": query.idle_by_node}
    assert fields[name] is value


@pytest.mark.parametrize(
    ("params", "field", "fragment"),
    [
        ({"idle": "yes"}, "idle", '"yes" is not a boolean; accepted: true, false, 1, 0; e.g. idle=false'),
        ({"shareIdle": "2"}, "shareIdle", "accepted: true, false, 1, 0; e.g. shareIdle=true"),
        ({"idleByNode": "tru"}, "idleByNode", "not a boolean"), ({"idle": "on"}, "idle", "not a boolean"),
        ({"shareSplit": "proportional"}, "shareSplit", "accepted: weighted|even; e.g. shareSplit=weighted"),
        ({"format": "xml"}, "format", "accepted: json|csv; e.g. format=json"),
        ({"method": "ProjectQuota"}, "method", "ProjectQuota is Alauda-only"),
        ({"method": "projectquota"}, "method", "accepted on /v2/cost: Request|Usage|Effective"),
        ({"method": "Max"}, "method", "accepted: Request|Usage|Effective; e.g. method=Request"),
        ({"customWeights": "Mixed"}, "customWeights", "DNS-1123 subdomain"),
        ({"customWeights": "-a"}, "customWeights", "e.g. customWeights=mixed-policy"),
        *[({"customWeights": bad}, "customWeights", "not a CostWeights name") for bad in ("a_b", "a..b", "a.", "ä")],
        ({"customWeights": "a" * 254}, "customWeights", "at most 253 characters"),
        ({"timeZone": "Mars/Base"}, "timeZone", "not a time zone; accepted: UTC, Asia/Shanghai"),
        ({"timeZone": "+15:00"}, "timeZone", "outside -12:00..+14:00"),
        ({"aggregate": "team"}, "aggregate", 'unknown aggregate "team"'),
        ({"aggregate": "label:"}, "aggregate", "needs a label key"),
        ({"filter": 'namespace="x"'}, "filter", "example: namespace"),
        ({"window": ""}, "window", "window is required; accepted: today"),
        ({"window": "  "}, "window", "window is required"),
        ({"window": "fortnight"}, "window", '"fortnight" is not a window'),
        ({"window": "2024-03-24T00:00:10Z,2024-03-24T00:00:50Z"}, "window", "empty once its bounds are floored"),
        ({"window": "401d"}, "window", "spans 401 days; the cap is 400 days"),
        ({"window": "253402300800"}, "window", "out of range"), ({"window": "0,253402300800"}, "window", "out of range"),
        ({"window": "lastmonth", "timeZone": "x"}, "timeZone", "not a time zone"),
        ({"Window": "1h"}, "Window", 'unknown parameter "Window"; accepted (case-sensitive): window, filter'),
        ({"includeIdle": "true"}, "includeIdle", "customWeights, timeZone; e.g. window=7d"),
        ({"filter": "x" * 16385}, "filter", "the value is 16385 bytes; the cap is 16384 bytes (16 KiB)"),
        ({"window": "é" * 8193}, "window", "16386 bytes; the cap is 16384 bytes"),
    ],
)
def test_cost_errors(params: dict[str, str], field: str, fragment: str) -> None:
    error = cost_error({"window": "1h", **params})
    assert (error.field, fragment in error.message) == (field, True), error.message


@pytest.mark.parametrize(
    ("params", "method", "split", "fmt", "weights"),
    [({"method": "usage", "shareSplit": "EVEN", "format": "CSV", "customWeights": "mixed-policy"},
      Method.USAGE, ShareSplit.EVEN, "csv", "mixed-policy"),
     ({"method": "Effective", "shareSplit": "weighted", "format": "json", "customWeights": "a.b-c"},
      Method.EFFECTIVE, ShareSplit.WEIGHTED, "json", "a.b-c"),
     ({"method": "REQUEST", "shareSplit": "", "format": "", "customWeights": "a" * 253},
      Method.REQUEST, ShareSplit.WEIGHTED, "json", "a" * 253)],
)
def test_enumerations_and_custom_weights(params: dict[str, str], method: Method, split: ShareSplit, fmt: str,
                                         weights: str) -> None:
    request = parse_cost_params({"window": "1h", **params}, now=NOW)
    assert (request.query.method, request.query.share_split, request.format, request.custom_weights) == (
        method, split, fmt, weights)


def test_repeated_and_listed_keys() -> None:
    assert cost_error({}).message.startswith("window is required")
    error = cost_error({"window": "1h"}, ["window", "window"])
    assert (error.field, error.message) == ("window", "window is given 2 times; give it once, e.g. window=7d&aggregate=namespace&step=1d")
    query = MultiDict([("window", "1h"), ("step", "1h"), ("step", "2h")])
    with pytest.raises(SpecError, match="step is given 2 times"):
        parse_cost_params(query, now=NOW)
    assert cost_error({"window": "1h"}, ["window", "bogus"]).field == "bogus"
    with pytest.raises(SpecError, match="kind is given 2 times"):
        parse_usage_params(MultiDict([("start", "20250601"), ("end", "20250601"), ("kind", "x"), ("kind", "y")]),
                           project=None)
    assert parse_cost_params({"window": "1h", "filter": 'pod:"' + "a" * 16377 + '"'}, now=NOW).query.filter is not None


def test_programming_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="resolution_seconds"):
        parse_cost_params({"window": "1h"}, now=NOW, resolution_seconds=0)
    with pytest.raises(ValueError, match="aware"):
        parse_cost_params({"window": "1h"}, now=datetime(2024, 3, 27))


# --- Alauda usage ----------------------------------------------------------------------------------

JUNE = {"start": "2025-06-01", "end": "2025-06-30"}


def test_usage_defaults() -> None:
    request = parse_usage_params({"start": "20250601", "end": "20250630"}, project=None)
    query = request.query
    assert (query.kind, query.item, query.method, query.name, query.project) == (
        UsageKind.PROJECT_ALL, Item.CPU, Method.EFFECTIVE, None, None)
    assert (request.current_page, request.page_size, request.time_zone) == (1, 20, UTC)
    assert [(p.label_start(), p.label_end(), p.window) for p in query.periods] == [
        ("20250601", "20250630", w("2025-06-01T00:00", "2025-07-01T00:00"))]


@pytest.mark.parametrize(("step", "labels"), [
    ("day", [(f"202506{d:02d}", f"202506{d:02d}") for d in range(1, 31)]),
    ("WEEK", [("20250601", "20250601"), ("20250602", "20250608"), ("20250609", "20250615"), ("20250616", "20250622"),
              ("20250623", "20250629"), ("20250630", "20250630")]),
    ("month", [("20250601", "20250630")]), ("", [("20250601", "20250630")]),
])
def test_usage_steps(step: str, labels: list[tuple[str, str]]) -> None:
    periods = parse_usage_params({**JUNE, "step": step}, project=None).query.periods
    assert [(p.label_start(), p.label_end()) for p in periods] == labels


def test_usage_time_zone_sets_local_midnights() -> None:
    request = parse_usage_params({**JUNE, "timeZone": "Asia/Shanghai"}, project=None)
    assert request.query.periods[0].window == w("2025-05-31T16:00", "2025-06-30T16:00")
    assert request.time_zone == ZoneInfo("Asia/Shanghai")


@pytest.mark.parametrize(("params", "project", "kind", "name"), [
    ({"kind": "project", "name": "alpha"}, None, UsageKind.PROJECT, "alpha"),
    ({"kind": "namespace", "name": "shop"}, None, UsageKind.NAMESPACE, "shop"),
    ({"kind": "cluster", "name": " global "}, None, UsageKind.CLUSTER, "global"),
    ({"kind": "project_all"}, None, UsageKind.PROJECT_ALL, None),
    ({"kind": "Namespace_All", "name": ""}, None, UsageKind.NAMESPACE_ALL, None),
    ({"kind": "cluster_all"}, "alpha", UsageKind.CLUSTER_ALL, None),
    ({"kind": "project"}, "alpha", UsageKind.PROJECT, "alpha"),
    ({"kind": "project", "name": "alpha"}, "alpha", UsageKind.PROJECT, "alpha"),
    ({"kind": "namespace", "name": "shop"}, "alpha", UsageKind.NAMESPACE, "shop"),
])
def test_usage_kind_and_name(params: dict[str, str], project: str | None, kind: UsageKind, name: str | None) -> None:
    query = parse_usage_params({**JUNE, **params}, project=project).query
    assert (query.kind, query.name, query.project) == (kind, name, project)


@pytest.mark.parametrize(("text", "item"), [("Cpu", Item.CPU), ("memory", Item.MEMORY), ("STORAGE", Item.STORAGE)])
def test_usage_items(text: str, item: Item) -> None:
    assert parse_usage_params({**JUNE, "item": text}, project=None).query.item is item


@pytest.mark.parametrize(("text", "method"), [("Effective", Method.EFFECTIVE), ("request", Method.REQUEST),
                                              ("USAGE", Method.USAGE), ("projectQuota", Method.PROJECT_QUOTA)])
def test_usage_methods(text: str, method: Method) -> None:
    assert parse_usage_params({**JUNE, "method": text}, project=None).query.method is method


@pytest.mark.parametrize(("params", "page", "size"), [
    ({"currentPage": "7", "pageSize": "1"}, 7, 1), ({"currentPage": "007", "pageSize": "1000"}, 7, 1000),
    ({"currentPage": "999999999", "pageSize": " 50 "}, 999999999, 50), ({"currentPage": "", "pageSize": ""}, 1, 20),
])
def test_usage_paging(params: dict[str, str], page: int, size: int) -> None:
    request = parse_usage_params({**JUNE, **params}, project=None)
    assert (request.current_page, request.page_size) == (page, size)


@pytest.mark.parametrize(
    ("params", "project", "field", "fragment"),
    [
        ({"start": ""}, None, "start", "start is required; accepted: 2025-06-01 or 20250601"),
        ({"end": " "}, None, "end", "end is required"),
        ({"start": "2025-13-01"}, None, "start", "not a date; accepted: 2025-06-01 or 20250601"),
        ({"end": "2025-05-31"}, None, "end", "is before start"),
        ({"start": "2020-01-01", "end": "2025-06-30"}, None, "end", "over 1830"),
        ({"start": "9999-12-01", "end": "9999-12-30"}, None, "end", "out of range"),
        ({"step": "year"}, None, "step", "accepted: day, week, month"),
        ({"kind": "pod"}, None, "kind", "accepted: project|namespace|cluster|project_all|namespace_all|cluster_all"),
        ({"kind": "project"}, None, "name", "name is required with kind=project; e.g. kind=project&name=my-project"),
        ({"kind": "namespace"}, "alpha", "name", "name is required with kind=namespace"),
        ({"kind": "cluster", "name": "  "}, None, "name", "name is required with kind=cluster"),
        ({"name": "alpha"}, None, "name", "not allowed with kind=project_all, which reports every project"),
        ({"kind": "cluster_all", "name": "c1"}, None, "name", "ask for one: kind=cluster&name=c1"),
        ({"kind": "project", "name": "beta"}, "alpha", "name", '"beta" is not the project "alpha" of the path'),
        ({"kind": "namespace", "name": "n" * 254}, None, "name", "longer than 253 characters"),
        ({"item": "Gpu"}, None, "item", "accepted: Cpu|Memory|Storage; e.g. item=Cpu"),
        ({"method": "Max"}, None, "method", "accepted: Effective|Request|Usage|ProjectQuota; e.g. method=Effective"),
        ({"currentPage": "0"}, None, "currentPage", '"0" is outside 1..999999999; e.g. currentPage=1'),
        *[({"currentPage": bad}, None, "currentPage", "not a whole number in 1..999999999") for bad in ("-1", "1.5", "1e3", "١")],
        *[({"currentPage": bad}, None, "currentPage", "outside 1..999999999") for bad in ("1000000000", "9" * 5000)],
        *[({"pageSize": bad}, None, "pageSize", "outside 1..1000; e.g. pageSize=20") for bad in ("0", "1001")],
        ({"timeZone": "Moon/Base"}, None, "timeZone", "not a time zone"),
        ({"window": "1h"}, None, "window", "accepted (case-sensitive): start, end, step, kind, name, item"),
        ({"name": "x" * 16385}, None, "name", "the cap is 16384 bytes"),
        ({}, "Bad_Project", "project", "not a project name (a DNS-1123 label"),
        ({}, "", "project", "e.g. /projects/my-project/costs/usage"), ({}, "p" * 64, "project", "at most 63"),
    ],
)
def test_usage_errors(params: dict[str, str], project: str | None, field: str, fragment: str) -> None:
    error = usage_error({**JUNE, **params}, project)
    assert (error.field, fragment in error.message) == (field, True), error.message


# --- fuzz: any input gives a request or a SpecError ------------------------------------------------

NASTY = ['"', "\\", "{", "}", "|", ".*", "$", "\n", "\x00", "\u202e", "é", "' OR 1=1 --", "%00", "+", ",", "-1",
         "0", "1e309", "NaN", "inf", "today", "1h", "7d", "0001-01-01", "9999-12-31", "99999999", "Asia/Shanghai",
         "+14:00", "-12:00", "../../etc/passwd", "label[app]:", 'namespace:"', "label:", "9" * 40, "x" * 20000]
NUMBERS = st.integers(min_value=-(10**30), max_value=10**30)
VALUES = st.one_of(
    st.text(max_size=60), st.sampled_from(NASTY), NUMBERS.map(str),
    st.tuples(NUMBERS, st.sampled_from("smhdwy")).map(lambda pair: f"{pair[0]}{pair[1]}"),
    st.tuples(NUMBERS, NUMBERS).map(lambda pair: f"{pair[0]},{pair[1]}"),
    st.tuples(st.integers(0, 99999), st.integers(0, 99), st.integers(0, 99)).map(lambda t: f"{t[0]:04d}-{t[1]:02d}-{t[2]:02d}"),
    st.datetimes(timezones=st.just(UTC)).map(lambda d: d.isoformat().replace("+00:00", "Z")),
    st.sampled_from(["true", "FALSE", "csv", "even", "Usage", "ProjectQuota", "week", "namespace_all", "project", "Storage"]),
)
SETTINGS = settings(max_examples=1500, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@SETTINGS
@given(st.dictionaries(st.text(), st.text()))
def test_fuzz_arbitrary_dicts(params: dict[str, str]) -> None:
    for parse in (lambda: parse_cost_params(params, now=NOW), lambda: parse_usage_params(params, project=None)):
        with contextlib.suppress(SpecError):
            parse()


@SETTINGS
@given(st.dictionaries(st.sampled_from(COST_PARAMETERS), VALUES),
       st.datetimes(min_value=datetime(1, 1, 2), timezones=st.just(UTC)), st.sampled_from([1, 15, 60, 300, 3600]))
def test_fuzz_cost_parameters(params: dict[str, str], now: datetime, resolution: int) -> None:
    try:
        request = parse_cost_params(params, now=now, resolution_seconds=resolution)
    except SpecError:
        return
    assert 0 < request.query.window.seconds <= 400 * 86400
    assert len(request.steps) <= 2000


@SETTINGS
@given(st.dictionaries(st.sampled_from(USAGE_PARAMETERS), VALUES), st.one_of(st.none(), st.text(), st.sampled_from(NASTY)))
def test_fuzz_usage_parameters(params: dict[str, str], project: str | None) -> None:
    try:
        request = parse_usage_params(params, project=project)
    except SpecError:
        return
    assert request.query.periods
    assert (request.current_page >= 1, 1 <= request.page_size <= 1000) == (True, True)
