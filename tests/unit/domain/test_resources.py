"""CostWeights and CostReport specs: DESIGN.md examples, round-trips, clear rejections, schedules."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest
import yaml

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.errors import SpecError
from kubetally.domain.resources import CostReportSpec, CostWeightsSpec, parse_cost_report, parse_cost_weights
from kubetally.domain.schedule import parse_schedule
from kubetally.domain.vocabulary import Method, ShareSplit
from kubetally.domain.window import Window

# The spec parts of the DESIGN.md §5 and §7 examples, as YAML loads them.
WEIGHTS_YAML = """
currency: CNY                  # one of the 15 codes of the Alauda API
weights: {cpu: "0.7", memory: "0.3"}   # optional; decimal strings; must sum to 1
unitPrices:                    # per hour; decimal strings
  cpuCoreHour: "0.031611"
  memoryGiBHour: "0.004237"
  storageGiBHour: "0.0000548"
nodePrices:                    # optional: hourly price of whole nodes, first match wins
- selector: {matchLabels: {node.kubernetes.io/instance-type: ecs.g7.xlarge}}
  hourly: "0.82"
storageClassPrices:            # optional
- storageClassName: ssd
  gibHour: "0.0002"
effectiveFrom: "2025-06-01T00:00:00Z"   # optional; prices never rewrite hours before it
"""
REPORT_YAML = """
window: lastweek          # the /v2/cost grammar, or start/end (RFC3339 or YYYY-MM-DD)
step: 1d                  # optional
aggregate: [namespace, "label:app"]
filter: 'namespace:"shop"+label[app]:"web"'
method: Effective
idle: true
shareIdle: false
shareSplit: weighted
idleByNode: false
customWeights: ""         # optional CostWeights name
schedule: "@hourly"       # recompute cadence: @hourly, @daily, a duration, or a cron expression
topN: 20                  # rows kept in status
"""
WEIGHTS: dict[str, Any] = yaml.safe_load(WEIGHTS_YAML)
REPORT: dict[str, Any] = yaml.safe_load(REPORT_YAML)
INSTANCE_TYPE = {"node_kubernetes_io_instance_type": "ecs.g7.xlarge"}


def weights(**changes: Any) -> dict[str, Any]:
    return {**WEIGHTS, **changes}


def report(**changes: Any) -> dict[str, Any]:
    return {key: value for key, value in {**REPORT, **changes}.items() if value is not None}


def node_price(selector: Any, hourly: Any = "1") -> dict[str, Any]:
    return weights(nodePrices=[{"selector": selector, "hourly": hourly}])


# --- CostWeights -----------------------------------------------------------------------------------


def test_design_cost_weights_example_parses() -> None:
    spec = parse_cost_weights(WEIGHTS)
    assert spec.currency == "CNY"
    assert spec.weights is not None
    assert (spec.weights.cpu, spec.weights.memory) == (Decimal("0.7"), Decimal("0.3"))
    assert spec.unit_prices.memory_gib_hour == Decimal("0.004237")
    assert spec.node_prices[0].selector.match_labels == {"node.kubernetes.io/instance-type": "ecs.g7.xlarge"}
    assert spec.storage_class_prices[0].gib_hour == Decimal("0.0002")
    assert spec.effective_from == datetime(2025, 6, 1, tzinfo=UTC)


@pytest.mark.parametrize(("model", "data"), [(CostWeightsSpec, WEIGHTS), (CostReportSpec, REPORT)])
def test_camel_case_round_trip(model: type[CostWeightsSpec | CostReportSpec], data: dict[str, Any]) -> None:
    spec = model.model_validate(data)
    assert spec.model_dump(by_alias=True, mode="json", exclude_unset=True) == data
    assert model.model_validate(spec.model_dump(by_alias=True)) == spec
    assert model.model_validate(spec.model_dump()) == spec  # snake_case names are accepted too


def test_decimal_strings_keep_their_digits() -> None:
    spec = parse_cost_weights(weights(unitPrices={"cpuCoreHour": "0.00000001", "memoryGiBHour": "1.50",
                                                  "storageGiBHour": "0"}))
    assert spec.model_dump(by_alias=True)["unitPrices"] == {
        "cpuCoreHour": "0.00000001", "memoryGiBHour": "1.50", "storageGiBHour": "0"}


def test_unit_prices_default_to_opencost() -> None:
    spec = parse_cost_weights({"currency": "USD"})
    version = spec.to_price_version(name="default")
    assert (version.cpu_core_hour, version.memory_gib_hour, version.storage_gib_hour) == (
        Decimal("0.031611"), Decimal("0.004237"), Decimal("0.00005479"))
    assert version.weights is None
    assert version.effective_from == datetime(1970, 1, 1, tzinfo=UTC)
    assert version.node_rules == ()


@pytest.mark.parametrize(
    ("cpu", "memory"),
    [("1", "0"), ("0.5", "0.50"), ("0.3333333333333333333333333333333", "0.6666666666666666666666666666667")],
)
def test_weights_summing_to_one(cpu: str, memory: str) -> None:
    spec = parse_cost_weights(weights(weights={"cpu": cpu, "memory": memory}))
    assert spec.weights is not None
    assert spec.weights.cpu + spec.weights.memory == 1


def test_to_price_version() -> None:
    version = parse_cost_weights(WEIGHTS).to_price_version(name="default")
    assert version.source == "CostWeights/default"
    assert version.currency == "CNY"
    assert version.weights == (Decimal("0.7"), Decimal("0.3"))
    assert (version.cpu_core_hour, version.memory_gib_hour, version.storage_gib_hour) == (
        Decimal("0.031611"), Decimal("0.004237"), Decimal("0.0000548"))
    assert version.effective_from == datetime(2025, 6, 1, tzinfo=UTC)
    assert version.node_rule_price(INSTANCE_TYPE) == Decimal("0.82")
    assert version.node_rule_price({"node_kubernetes_io_instance_type": "ecs.g7.2xlarge"}) is None
    assert version.storage_price("ssd") == Decimal("0.0002")
    assert version.storage_price("hdd") == Decimal("0.0000548")
    assert version.storage_price(None) == Decimal("0.0000548")


def test_to_price_version_effective_from_overrides_spec() -> None:
    spec = parse_cost_weights(WEIGHTS)
    later = datetime(2025, 7, 1, 8, tzinfo=timezone(timedelta(hours=8)))
    assert spec.to_price_version(name="x", effective_from=later).effective_from == datetime(2025, 7, 1, tzinfo=UTC)
    with pytest.raises(ValueError, match="timezone-aware"):
        spec.to_price_version(name="x", effective_from=datetime(2025, 7, 1))


def test_match_expressions_become_requirements() -> None:
    selector = {"matchExpressions": [
        {"key": "node.kubernetes.io/instance-type", "operator": "In", "values": ["ecs.g7.xlarge", "ecs.g7.2xlarge"]},
        {"key": "spot", "operator": "DoesNotExist"},
    ]}
    version = parse_cost_weights(node_price(selector, "2.5")).to_price_version(name="expr")
    assert version.node_rule_price(INSTANCE_TYPE) == Decimal("2.5")
    assert version.node_rule_price({**INSTANCE_TYPE, "spot": "true"}) is None
    assert version.node_rule_price({}) is None


def test_effective_from_with_offset_and_fraction() -> None:
    spec = parse_cost_weights(weights(effectiveFrom="2025-06-01T08:00:00.5+08:00"))
    assert spec.effective_from == datetime(2025, 6, 1, tzinfo=UTC)
    assert spec.model_dump(by_alias=True)["effectiveFrom"] == "2025-06-01T00:00:00Z"


@pytest.mark.parametrize(
    ("data", "field", "fragments"),
    [
        (weights(extra="x"), "spec", ['unknown field "extra"', "accepted fields: currency, weights"]),
        (weights(unitPrices={**WEIGHTS["unitPrices"], "gpuHour": "1"}), "spec.unitPrices",
         ['unknown field "gpuHour"', "cpuCoreHour, memoryGiBHour, storageGiBHour"]),
        (weights(unitPrices={"cpuCoreHour": 0.031611, "memoryGiBHour": "1", "storageGiBHour": "1"}),
         "spec.unitPrices.cpuCoreHour", ["0.031611 is a number, not a string", 'write prices as quoted decimal strings, e.g. "0.031611"']),
        (node_price({"matchLabels": {"a": "b"}}, 0.7), "spec.nodePrices[0].hourly",
         ['write prices as quoted decimal strings, e.g. "0.031611"']),
        (weights(storageClassPrices=[{"storageClassName": "ssd", "gibHour": 1}]),
         "spec.storageClassPrices[0].gibHour", ["1 is a number", "quoted decimal strings"]),
        (node_price({"matchLabels": {"a": "b"}}, True), "spec.nodePrices[0].hourly", ["True is not text"]),
        (node_price({"matchLabels": {"a": "b"}}, "-1"), "spec.nodePrices[0].hourly", ['"-1" is not a decimal string']),
        (node_price({"matchLabels": {"a": "b"}}, "1e3"), "spec.nodePrices[0].hourly", ['"1e3"', "no sign or exponent"]),
        (weights(weights={"cpu": 0.7, "memory": "0.3"}), "spec.weights.cpu",
         ["0.7 is a number", 'write weights as quoted decimal strings, e.g. "0.7"']),
        (weights(weights={"cpu": "0.7", "memory": "0.2"}), "spec.weights",
         ['cpu "0.7" + memory "0.2" = 0.9', "sum to exactly 1"]),
        (weights(weights={"cpu": "0.7"}), "spec.weights.memory", ["is required", 'memory: "0.3"']),
        (weights(currency="XYZ"), "spec.currency", ['"XYZ" is not a supported currency', "CNY, USD"]),
        (weights(currency="cny"), "spec.currency", ['"cny"']),
        ({"weights": WEIGHTS["weights"]}, "spec.currency", ["is required", "currency: CNY"]),
        (weights(unitPrices={"cpuCoreHour": "1"}), "spec.unitPrices.memoryGiBHour",
         ["is required", "also spec.unitPrices.storageGiBHour: is required"]),
        (node_price({}), "spec.nodePrices[0].selector", ["would match every node", "matchLabels"]),
        (node_price({"matchLabels": {}}), "spec.nodePrices[0].selector", ["would match every node"]),
        (node_price({"matchLabels": {"bad key": "x"}}), "spec.nodePrices[0].selector.matchLabels.bad key",
         ['"bad key" is not a label key']),
        (node_price({"matchExpressions": [{"key": "zone", "operator": "In"}]}),
         "spec.nodePrices[0].selector.matchExpressions[0].values", ["operator In needs at least one value"]),
        (node_price({"matchExpressions": [{"key": "zone", "operator": "NotIn", "values": []}]}),
         "spec.nodePrices[0].selector.matchExpressions[0].values", ["operator NotIn needs at least one value"]),
        (node_price({"matchExpressions": [{"key": "zone", "operator": "Exists", "values": ["a"]}]}),
         "spec.nodePrices[0].selector.matchExpressions[0].values", ["operator Exists takes no values"]),
        (node_price({"matchExpressions": [{"key": "zone", "operator": "Gt", "values": ["1"]}]}),
         "spec.nodePrices[0].selector.matchExpressions[0].operator", ["'Gt'", "In (or NotIn, Exists, DoesNotExist)"]),
        (node_price({"matchExpressions": [{"key": "zone", "operator": "In", "values": ["a"], "value": "b"}]}),
         "spec.nodePrices[0].selector.matchExpressions[0]", ['unknown field "value"', "key, operator, values"]),
        (weights(storageClassPrices=[{"storageClassName": "ssd", "gibHour": "1"}] * 2),
         "spec.storageClassPrices[1].storageClassName", ['storage class "ssd" is priced twice']),
        (weights(effectiveFrom="2025-06-01T00:00:00"), "spec.effectiveFrom",
         ['"2025-06-01T00:00:00" is not an RFC3339 time with a time zone']),
        (weights(effectiveFrom=yaml.safe_load("t: 2025-06-01T08:00:00+08:00")["t"]), "spec.effectiveFrom",
         ["datetime.datetime(2025, 6, 1, 8, 0", "write a quoted string"]),
        (weights(effectiveFrom="June 1st"), "spec.effectiveFrom", ['"June 1st"', "2025-06-01T00:00:00Z"]),
    ],
)
def test_cost_weights_rejected(data: dict[str, Any], field: str, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        parse_cost_weights(data)
    assert caught.value.field == field
    for fragment in fragments:
        assert fragment in caught.value.message


# --- CostReport ------------------------------------------------------------------------------------


def test_design_cost_report_example_parses() -> None:
    spec = parse_cost_report(REPORT)
    assert spec.window == "lastweek"
    assert spec.aggregate_keys() == (AggregateKey(Dimension.NAMESPACE), AggregateKey(Dimension.LABEL, "app"))
    assert spec.parsed_filter() is not None
    assert (spec.method, spec.share_split, spec.top_n) == (Method.EFFECTIVE, ShareSplit.WEIGHTED, 20)
    assert (spec.idle, spec.share_idle, spec.idle_by_node) == (True, False, False)
    assert spec.custom_weights_name() is None
    now = datetime(2025, 6, 11, 9, 30, tzinfo=UTC)  # a Wednesday
    assert spec.resolve_span(now) == (Window(datetime(2025, 6, 2, tzinfo=UTC), datetime(2025, 6, 9, tzinfo=UTC)), 86400)
    assert spec.parsed_schedule().next_after(now) == datetime(2025, 6, 11, 10, tzinfo=UTC)


def test_cost_report_defaults() -> None:
    spec = parse_cost_report({"window": "7d"})
    assert spec.aggregate == ("namespace",)
    assert (spec.method, spec.idle, spec.share_idle, spec.share_split) == (Method.EFFECTIVE, True, False,
                                                                            ShareSplit.WEIGHTED)
    assert (spec.idle_by_node, spec.schedule, spec.top_n, spec.step) == (False, "@hourly", 20, None)


@pytest.mark.parametrize(
    ("data", "window"),
    [
        ({"start": "2025-06-01", "end": "2025-06-08", "timeZone": "Asia/Shanghai"},
         Window(datetime(2025, 5, 31, 16, tzinfo=UTC), datetime(2025, 6, 7, 16, tzinfo=UTC))),
        ({"start": "2025-06-01T00:00:00Z", "end": "2025-06-02T08:00:00+08:00"},
         Window(datetime(2025, 6, 1, tzinfo=UTC), datetime(2025, 6, 2, tzinfo=UTC))),
        ({"window": "today", "timeZone": "+12:00", "start": ""},
         Window(datetime(2025, 6, 10, 12, tzinfo=UTC), datetime(2025, 6, 11, 9, 30, tzinfo=UTC))),
    ],
)
def test_start_end_and_time_zone(data: dict[str, Any], window: Window) -> None:
    assert parse_cost_report(data).resolve_span(datetime(2025, 6, 11, 9, 30, tzinfo=UTC)) == (window, None)


@pytest.mark.parametrize(
    ("data", "field", "fragments"),
    [
        (report(topn=5), "spec", ['unknown field "topn"', "topN"]),
        (report(window="lastyear"), "spec.window", ['"lastyear" is not a window', "accepted: today"]),
        (report(window="1h30m"), "spec.window", ['"1h30m"']),
        (report(window=None), "spec.window", ["give window", "both start and end"]),
        (report(start="2025-06-01"), "spec.window", ["either window or start and end, not both"]),
        (report(window=None, start="2025-06-01"), "spec.end", ["both start and end"]),
        (report(window=None, start="2025-06-08", end="2025-06-01"), "spec.end",
         ['"2025-06-08,2025-06-01" ends before or when it starts', 'e.g. start: "2025-06-01"']),
        (report(window=None, start="2025-06-02T00:00:00Z", end="2025-06-02T08:00:00+08:00"), "spec.end",
         ["ends before or when it starts"]),
        (report(window=None, start="2025-06-01", end="2025-06-03T00:00:00Z"), "spec.end", ["mixes two forms"]),
        (report(window=None, start="2025-06-31", end="2025-07-01"), "spec.start", ['"2025-06-31" is not an RFC3339']),
        (report(window=None, start="1711382400", end="1711468800"), "spec.start", ['"1711382400"']),
        (report(window=None, **yaml.safe_load("start: 2025-06-01\nend: 2025-06-03")), "spec.start",
         ["valid string, got datetime.date(2025, 6, 1)", 'start: "2025-06-01" (quoted)']),
        (report(timeZone="Mars/Olympus"), "spec.timeZone", ['"Mars/Olympus" is not a time zone']),
        (report(step="1x"), "spec.step", ['"1x" is not a duration', "accepted: a whole number of hours, at least 1h"]),
        (report(step="0h"), "spec.step", ['"0h" is not a duration; accepted: a whole number of hours']),
        (report(step="45m"), "spec.step", ['"45m" is not a whole number of hours; accepted: a whole number of hours']),
        (report(window="90d", step="1h"), "spec.step", ["splits the window into 2161 sets; the cap is 2000"]),
        (report(aggregate=["namespace", "bogus"]), "spec.aggregate", ['unknown aggregate "bogus" at entry 2']),
        (report(aggregate=[]), "spec.aggregate", ["at least one key"]),
        (report(aggregate="namespace"), "spec.aggregate", ["Input should be a list", "'namespace'"]),
        (report(filter='namespace="shop"'), "spec.filter", ['"=\\"shop\\""', "missing operator"]),
        (report(filter='namespace:"shop'), "spec.filter", ['"\\"shop"', "unterminated quote"]),
        (report(method="ProjectQuota"), "spec.method", ["ProjectQuota", "accepted: Request, Usage, Effective"]),
        (report(method="effective"), "spec.method", ["'effective' is not a method"]),
        (report(shareSplit="odd"), "spec.shareSplit", ["'odd'", "weighted"]),
        (report(idle="yes"), "spec.idle", ["valid boolean", "'yes'"]),
        (report(customWeights="Prod_Prices"), "spec.customWeights", ['"Prod_Prices" is not a CostWeights name']),
        (report(schedule="@yearly"), "spec.schedule", ['"@yearly" is not a schedule macro', "accepted: @hourly"]),
        (report(schedule="1m"), "spec.schedule", ['"1m" is shorter than the minimum interval of 5m']),
        (report(schedule=""), "spec.schedule", ['"" is empty']),
        (report(schedule="61 * * * *"), "spec.schedule", ["minute field: 61 is outside 0-59"]),
        (report(topN=0), "spec.topN", ["greater than or equal to 1", "topN: 20"]),
        (report(topN=501), "spec.topN", ["less than or equal to 500"]),
        (report(topN="20"), "spec.topN", ["valid integer", "'20'"]),
    ],
)
def test_cost_report_rejected(data: dict[str, Any], field: str, fragments: list[str]) -> None:
    with pytest.raises(SpecError) as caught:
        parse_cost_report(data)
    assert caught.value.field == field
    for fragment in fragments:
        assert fragment in caught.value.message


def test_keyword_windows_validate_whatever_the_zone() -> None:
    for zone in ("UTC", "+12:00", "-12:00", "+14:00", "Asia/Kathmandu"):
        for keyword in ("today", "week", "month"):
            assert parse_cost_report({"window": keyword, "timeZone": zone}).window == keyword


# --- schedule --------------------------------------------------------------------------------------


def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "after", "expected"),
    [
        ("@hourly", at(2025, 6, 2, 10, 15, 30), at(2025, 6, 2, 11)),
        ("@hourly", at(2025, 6, 2, 10), at(2025, 6, 2, 11)),
        ("@hourly", at(2025, 12, 31, 23, 59), at(2026, 1, 1)),
        ("@daily", at(2025, 6, 2, 10, 15), at(2025, 6, 3)),
        ("@daily", at(2025, 6, 30, 23, 59, 59), at(2025, 7, 1)),
        ("@weekly", at(2025, 6, 2, 10), at(2025, 6, 8)),
        ("@monthly", at(2025, 6, 2, 10), at(2025, 7, 1)),
        ("30m", at(2025, 6, 2, 10, 15), at(2025, 6, 2, 10, 30)),
        ("30m", at(2025, 6, 2, 10, 30), at(2025, 6, 2, 11)),
        ("30m", at(2025, 6, 2, 23, 45, 1), at(2025, 6, 3)),
        ("6h", at(2025, 6, 2, 10, 15), at(2025, 6, 2, 12)),
        ("*/15 * * * *", at(2025, 6, 2, 10, 15), at(2025, 6, 2, 10, 30)),
        ("*/15 * * * *", at(2025, 6, 2, 10, 16), at(2025, 6, 2, 10, 30)),
        ("*/15 * * * *", at(2025, 6, 2, 23, 59, 59), at(2025, 6, 3)),
        ("0 3 * * 1", at(2025, 6, 2, 2), at(2025, 6, 2, 3)),  # 2025-06-02 is a Monday
        ("0 3 * * 1", at(2025, 6, 2, 3), at(2025, 6, 9, 3)),
        ("0 3 * * 1", at(2025, 6, 4, 12), at(2025, 6, 9, 3)),
        ("0 0 * * 7", at(2025, 6, 2), at(2025, 6, 8)),  # 7 is Sunday too
        ("30 9-17/4 * * 1-5", at(2025, 6, 6, 17, 31), at(2025, 6, 9, 9, 30)),
        ("0 0 13 * 5", at(2025, 6, 1), at(2025, 6, 6)),  # day-of-month OR day-of-week
        ("0 0 13 * 5", at(2025, 6, 12, 1), at(2025, 6, 13)),
        ("0 0 29 2 *", at(2025, 3, 1), at(2028, 2, 29)),
        ("5,35 0 1 1,7 *", at(2025, 1, 1, 0, 35), at(2025, 7, 1, 0, 5)),
    ],
)
def test_schedule_next_after(text: str, after: datetime, expected: datetime) -> None:
    assert parse_schedule(text).next_after(after) == expected


def test_schedule_next_after_converts_zones() -> None:
    shanghai = timezone(timedelta(hours=8))
    assert parse_schedule("@daily").next_after(datetime(2025, 6, 3, 7, tzinfo=shanghai)) == at(2025, 6, 3)
    with pytest.raises(ValueError, match="timezone-aware"):
        parse_schedule("@daily").next_after(datetime(2025, 6, 3))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("* * *", '"* * *" has 3 fields'),
        ("*/0 * * * *", '"*/0" needs a positive step'),
        ("5-1 * * * *", '"5-1" runs backwards'),
        ("x * * * *", 'minute field: "x" is not a number'),
        ("1/5 * * * *", '"1/5": a step needs "*" or a range'),
        ("0 24 * * *", "hour field: 24 is outside 0-23"),
        ("0 0 0 * *", "day-of-month field: 0 is outside 1-31"),
        ("0 0 * 13 *", "month field: 13 is outside 1-12"),
        ("0 0 * * 8", "day-of-week field: 8 is outside 0-7"),
        ("0 0 1,,2 * *", 'day-of-month field: "1,,2" has an empty entry'),
        ("0 0 31 2 *", '"0 0 31 2 *" never fires'),
        ("0 0 31 4,6 *", "never fires"),
        ("4m", '"4m" is shorter than the minimum interval of 5m'),
        ("0m", '"0m" must be a positive duration'),
        ("@every", '"@every" is not a schedule macro'),
    ],
)
def test_bad_schedules(text: str, fragment: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_schedule(text)
    assert fragment in caught.value.message
    assert "accepted: @hourly" in caught.value.message


def test_schedule_minimum_and_impossible_dates() -> None:
    assert parse_schedule("5m").interval_seconds == 300
    assert parse_schedule("300s").interval_seconds == 300
    assert parse_schedule("0 0 31 * *").next_after(at(2025, 6, 1)) == at(2025, 7, 31)
    assert parse_schedule("0 0 30 2 1").next_after(at(2025, 6, 1)) == at(2026, 2, 2)  # February Mondays fire
