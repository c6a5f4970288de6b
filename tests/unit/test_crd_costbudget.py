"""The CostBudget CRD (crds/costbudgets.kubetally.io.yaml) against its pydantic model and its status writer.

tests/unit/test_crds.py runs the checks every CRD gets (structural, described, names, printer columns,
properties = the models' camelCase aliases, nullable = the optional fields) over this CRD too; here are
what only a CostBudget has, with the same JSON-schema checker (Go regexp semantics, nulls pruned):

- its defaults are the model's (period monthly, method Effective, thresholds 80 and 100 on spent and 100
  on forecast, `basis` spent, notify `format` json), so a bare spec means what the defaulted one the
  apiserver stores means;
- a table of specs and whether (schema, model) accept them: the schema refuses shapes (decimal strings,
  enums, names, Secret keys), the model also what a schema cannot say (an amount of 0, a percent outside
  (0, 1000], a (percent, basis) given twice, "80" and "80.0" being the same percent, an unknown time zone,
  a filter the grammar refuses); the schema never refuses what the model accepts. A threshold's field is
  `basis`: the old `on` (a YAML 1.1 boolean when bare) is an unknown field to both;
- the statuses `budgets.compute_budget` and `reports.failed_status` write validate against `status`, and
  carry exactly its properties (the documented topology of tests/unit/test_budgets.py: shop spends 0.65
  by 02:10 on 2025-06-01; an admin budget on project alpha 1.25);
- the example manifests/examples/costbudget-monthly.yaml is valid for both, its commented `notify` too;
- the webhook Secret the CRD tells users to fill is `WEBHOOK_SECRET`, the one Secret the operator's Role
  (manifests/rbac/role.yaml) lets it read: `get`, by name.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from kubetally import budgets
from kubetally.domain.budgets import WEBHOOK_SECRET, CostBudgetSpec, Notify, Period, Threshold, parse_cost_budget
from kubetally.domain.errors import SpecError
from kubetally.domain.vocabulary import CURRENCIES
from kubetally.reports import failed_status
from kubetally.service import CostService
from tests.unit.test_crds import BUDGETS, _at, _model_accepts, _schema, _spec_violations, _violations, _with_defaults
from tests.unit.test_reports import service as service

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "manifests" / "examples" / "costbudget-monthly.yaml"
ROLE = ROOT / "manifests" / "rbac" / "role.yaml"
NOW = datetime(2025, 6, 1, 2, 10, 17, tzinfo=UTC)  # unaligned, as in tests/unit/test_budgets.py
BASE = {"amount": "2000", "currency": "CNY"}


def test_defaults_are_the_model_defaults() -> None:
    spec = _at(_schema(BUDGETS), "spec")
    defaults = {name: child["default"] for name, child in spec["properties"].items() if "default" in child}
    assert defaults == {
        "period": "monthly", "method": "Effective",
        "thresholds": [{"percent": "80", "basis": "spent"}, {"percent": "100", "basis": "spent"},
                       {"percent": "100", "basis": "forecast"}],
    }
    for name, field in CostBudgetSpec.model_fields.items():
        assert field.alias is not None
        if field.alias in defaults:
            model_default: Any = field.default
            if isinstance(model_default, tuple):
                model_default = [item.model_dump(by_alias=True, mode="json") for item in model_default]
            assert defaults[field.alias] == model_default, field.alias
        elif not field.is_required() and name != "scope":  # scope: absent and {} mean the same
            assert field.default is None, f"{field.alias} has a model default the CRD lacks"
    assert _at(spec, "thresholds", "[]", "basis")["default"] == Threshold.model_fields["basis"].default == "spent"
    assert _at(spec, "notify", "format")["default"] == Notify.model_fields["format"].default == "json"
    assert "default" not in _at(spec, "notify", "secretKey")
    assert spec["properties"]["period"]["enum"] == [period.value for period in Period]
    assert spec["properties"]["method"]["enum"] == ["Request", "Usage", "Effective"]


@pytest.mark.parametrize("bare", [BASE, BASE | {"thresholds": [{"percent": "50"}, {"percent": "90", "basis": "forecast"}]},
                                  BASE | {"thresholds": []}, BASE | {"notify": {"secretKey": "finops-slack"}}])
def test_defaulted_spec_means_what_the_bare_spec_means(bare: dict[str, Any]) -> None:
    defaulted = _with_defaults(bare, _at(_schema(BUDGETS), "spec"))
    assert isinstance(defaulted, dict)
    assert set(defaulted) == {*bare, "period", "method", "thresholds"}
    assert all(threshold["basis"] in ("spent", "forecast") for threshold in defaulted["thresholds"])
    if "notify" in bare:
        assert defaulted["notify"] == {"secretKey": "finops-slack", "format": "json"}
    assert parse_cost_budget(defaulted) == parse_cost_budget(bare)


def _with(**fields: Any) -> dict[str, Any]:
    return BASE | fields


def _thresholds(*items: dict[str, Any]) -> dict[str, Any]:
    return _with(thresholds=list(items))


# Specs and whether (schema, model) accept them. Where the schema accepts what the model refuses, only the
# operator can say why; (True, False) for a null in a field that is not nullable: the apiserver prunes it
# (and defaults what has a default) before the model sees it, so the model never sees that null.
_BUDGET_CASES: list[tuple[dict[str, Any], bool, bool]] = [
    (BASE, True, True),
    *[(_with(amount=text), True, True) for text in ("1999.50", "0.01", "007", "1" * 64)],
    *[(_with(amount=text), True, False) for text in ("0", "0.000")],  # must be more than 0
    *[(_with(amount=text), False, False) for text in ("-5", "2e3", "2,000", " 2000", "2000\n", "", "1.", "1" * 65)],
    *[(_with(amount=value), False, False) for value in (2000, 19.5, True)],
    ({"currency": "CNY"}, False, False),
    ({"amount": "2000"}, False, False),
    *[(_with(currency=code), True, True) for code in CURRENCIES],
    *[(_with(currency=code), False, False) for code in ("cny", "XXX", "")],
    *[(_with(period=period.value), True, True) for period in Period],
    *[(_with(period=text), False, False) for text in ("yearly", "Monthly", "")],
    (_with(period=None), True, False),
    *[(_with(timeZone=zone), True, True) for zone in ("Asia/Shanghai", "+08:00", "UTC", "", None)],
    *[(_with(timeZone=zone), True, False) for zone in ("Mars/Olympus", "+15:00", "localtime")],
    (_with(timeZone="x" * 65), False, False),
    *[(_with(method=method), True, True) for method in ("Request", "Usage", "Effective")],
    *[(_with(method=method), False, False) for method in ("ProjectQuota", "effective", "")],
    *[(_with(customWeights=name), True, True) for name in ("spot", "spot.prices-2", "", None)],
    *[(_with(customWeights=name), False, False) for name in ("Spot", " ", "-x", "a_b", "a" * 254)],
    *[(_with(scope=scope), True, True) for scope in (
        {}, {"project": "retail"}, {"namespaces": ["shop", "payments"]}, {"namespaces": ["shop", "shop"]},
        {"filter": 'label[team]:"web"'}, {"filter": ""}, {"project": None, "filter": None},
        {"project": "retail", "namespaces": ["shop"], "filter": 'controllerKind:"Deployment"'},
    )],
    *[(_with(scope=scope), False, False) for scope in (
        {"namespaces": ["Shop"]}, {"namespaces": ["shop.eu"]}, {"namespaces": ["x" * 64]}, {"namespaces": "shop"},
        {"namespace": "shop"}, {"project": 7},
    )],
    (_with(scope={"filter": 'namespace:"shop'}), True, False),  # the filter grammar
    (_with(scope=None), True, False),
    (_with(thresholds=None), True, False),
    *[(_thresholds(*items), True, True) for items in (
        (), ({"percent": "80"},), ({"percent": "80", "basis": "forecast"},), ({"percent": "1000"},),
        ({"percent": "0.5"},), ({"percent": "80"}, {"percent": "80", "basis": "forecast"}),
        ({"percent": "80"}, {"percent": "80.0", "basis": "forecast"}), ({"percent": "80"}, {"percent": "80.5"}),
    )],
    *[(_thresholds(*items), True, False) for items in (
        ({"percent": "0"},), ({"percent": "0.0"},), ({"percent": "1000.01"},), ({"percent": "5000"},),  # outside (0, 1000]
        ({"percent": "80"}, {"percent": "80", "basis": "spent"}),  # (percent, basis) given twice
        ({"percent": "80"}, {"percent": "80.0"}), ({"percent": "80.00"}, {"percent": "080"}),  # one percent, twice
        ({"percent": "100", "basis": "forecast"}, {"percent": "100.000", "basis": "forecast"}),
    )],
    *[(_thresholds(*items), False, False) for items in (
        ({"percent": 80},), ({"percent": "-1"},), ({"percent": "80%"},), ({"basis": "spent"},),
        ({"percent": "80", "basis": "later"},), ({"percent": "80", "basis": "Forecast"},),
        ({"percent": "80", "basis": ""},), ({"percent": "80", "of": "spent"},),
        ({"percent": "80", "on": "spent"},), ({"percent": "80", "on": "forecast"},),  # the old name: unknown
    )],
    *[(_with(notify=notify), True, True) for notify in (
        None, {"secretKey": "finops-slack"}, {"secretKey": "eu.hooks_1", "format": "slack"},
        {"secretKey": "Finops-Slack", "format": "json"}, {"secretKey": "a" * 253}, {"secretKey": "x"},
    )],
    *[(_with(notify=notify), False, False) for notify in (
        {}, {"format": "slack"}, {"secretKey": ""}, {"secretKey": None}, {"secretKey": 7}, {"secretKey": "a" * 254},
        {"secretKey": "finops slack"}, {"secretKey": "finops/slack"}, {"secretKey": "finops-slack\n"},
        {"secretKey": "finops:slack"}, {"secretKey": "finops-slack", "format": "teams"},
        {"secretKey": "finops-slack", "format": "Slack"}, {"url": "https://hooks.example.com/x"},
        {"secretRef": {"name": "hook"}}, {"secretKey": "finops-slack", "secretName": "other"},  # the one Secret
    )],
]


@pytest.mark.parametrize(("spec", "schema_ok", "model_ok"), _BUDGET_CASES)
def test_budget_schema_and_model_agree(spec: dict[str, Any], schema_ok: bool, model_ok: bool) -> None:
    assert (_spec_violations(BUDGETS, spec) == []) is schema_ok, _spec_violations(BUDGETS, spec)
    assert _model_accepts(parse_cost_budget, spec) is model_ok


def test_schema_refuses_nothing_the_model_accepts() -> None:
    assert [spec for spec, schema_ok, model_ok in _BUDGET_CASES if model_ok and not schema_ok] == []


def test_the_example_is_valid() -> None:
    obj = yaml.safe_load(EXAMPLE.read_text(encoding="utf-8"))
    assert (obj["apiVersion"], obj["kind"], obj["metadata"]) == (
        "kubetally.io/v1alpha1", "CostBudget", {"name": "monthly", "namespace": "kubetally-system"})
    assert _violations(obj, _schema(BUDGETS)) == []
    spec = parse_cost_budget(obj["spec"])
    assert [threshold.key for threshold in spec.thresholds] == ["spent-50", "spent-80", "spent-100", "forecast-100"]
    assert _with_defaults(obj, _schema(BUDGETS)) == obj  # every default spelled out


def test_the_examples_commented_notify_is_valid() -> None:
    """Uncommented as its comment says, the example's `notify` block is valid, for the key its
    `kubectl create secret` line puts in Secret `WEBHOOK_SECRET`."""
    text = EXAMPLE.read_text(encoding="utf-8")
    lines = text.splitlines()
    start = lines.index("  # notify:")
    block = [lines[start], *(line for line in lines[start + 1:] if line.startswith("  #   "))]
    assert len(block) == 3
    notify = yaml.safe_load("\n".join(line.replace("# ", "", 1) for line in block))
    assert notify == {"notify": {"secretKey": "finops-slack", "format": "slack"}}
    obj = yaml.safe_load(text)
    obj["spec"] |= notify
    assert _violations(obj, _schema(BUDGETS)) == []
    assert parse_cost_budget(obj["spec"]).notify == Notify(secret_key="finops-slack", format="slack")
    assert f"create secret generic {WEBHOOK_SECRET} \\\n" in text
    assert "--from-literal=finops-slack=https://" in text


def test_the_webhook_secret_is_the_one_the_operator_may_read() -> None:
    notify = _at(_schema(BUDGETS), "spec", "notify")
    for description in (notify["description"], notify["properties"]["secretKey"]["description"]):
        assert f"Secret {WEBHOOK_SECRET} " in " ".join(description.split())
    role = yaml.safe_load(ROLE.read_text(encoding="utf-8"))
    assert (role["kind"], role["metadata"]) == ("Role", {"name": "kubetally", "namespace": "kubetally-system"})
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [WEBHOOK_SECRET],
                              "verbs": ["get"]}]


# --- the statuses the operator writes ----------------------------------------------------------


def _status_ok(status: dict[str, Any]) -> None:
    assert _violations(status, _at(_schema(BUDGETS), "status"), ".status") == []


async def test_computed_statuses_validate_and_fill_the_schema(service: CostService) -> None:
    """A daily tenant budget of 0.8 at 02:10:17 (crosses spent-80 and forecast-100), the same budget the
    next day (a new period: last period in history), and an admin budget over project alpha (Exceeded)."""
    daily = {"amount": "0.8", "currency": "CNY", "period": "daily"}
    first = await budgets.compute_budget(service, daily, namespace="shop", generation=2, now=NOW, isolated=True)
    assert [record["key"] for record in first.status["thresholds"]] == ["spent-80", "forecast-100"]
    _status_ok(first.status)
    assert set(first.status) == set(_at(_schema(BUDGETS), "status")["properties"])
    next_day = datetime(2025, 6, 2, 0, 30, 0, tzinfo=UTC)
    fresh = await budgets.compute_budget(service, daily, namespace="shop", generation=2, now=next_day, isolated=True,
                                         previous=first.status)
    assert len(fresh.status["history"]) == 1
    _status_ok(fresh.status)
    admin = await budgets.compute_budget(service, {"amount": "1", "currency": "CNY", "period": "daily",
                                                   "scope": {"project": "alpha"}},
                                         namespace="finops", generation=1, now=NOW, isolated=False)
    assert {c["type"]: c["reason"] for c in admin.status["conditions"]}["Exceeded"] == "SpentOverAmount"
    _status_ok(admin.status)


async def test_a_full_history_validates(service: CostService) -> None:
    """Twelve past periods kept, the thirteenth dropped: at most 12, as the schema says."""
    daily = {"amount": "0.8", "currency": "CNY", "period": "daily"}
    first = await budgets.compute_budget(service, daily, namespace="shop", generation=1, now=NOW, isolated=True)
    past = {"start": "2025-05-31T00:00:00Z", "end": "2025-06-01T00:00:00Z", "amount": "0.800000",
            "spent": "0.100000", "percent": "12.50", "currency": "CNY"}
    previous = first.status | {"history": [past] * 12}
    later = await budgets.compute_budget(service, daily, namespace="shop", generation=1,
                                         now=datetime(2025, 6, 2, 0, 30, 0, tzinfo=UTC), isolated=True,
                                         previous=previous)
    assert len(later.status["history"]) == 12
    _status_ok(later.status)
    assert _violations({"history": later.status["history"] * 2}, _at(_schema(BUDGETS), "status"))


def test_the_status_of_an_invalid_spec_validates() -> None:
    error = SpecError("spec.thresholds[0].percent", "5000 is outside (0, 1000]; e.g. 80")
    status = failed_status(error, generation=4, now=NOW)
    assert {c["type"]: (c["status"], c["reason"]) for c in status["conditions"]} == {
        "Ready": ("False", "InvalidSpec"), "Degraded": ("True", "InvalidSpec")}
    _status_ok(status)


def test_status_checker_catches_mistakes() -> None:
    status = _at(_schema(BUDGETS), "status")
    assert _violations({"spent": 12.5}, status)  # money is a string
    assert _violations({"period": {"start": "2025-06-01"}}, status)  # an RFC3339 instant
    assert _violations({"thresholds": [{"key": "spent-80", "crossedAt": "02:10"}]}, status)
    assert _violations({"budget": "2000"}, status)  # would be pruned by the apiserver
