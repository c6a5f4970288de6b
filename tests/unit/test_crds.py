"""The CRDs in crds/: structural, documented, and in step with the pydantic spec models.

The CRD schema is the first gate on a CostWeights, CostReport or CostBudget (admission), the pydantic
models of `kubetally.domain.resources` and `kubetally.domain.budgets` the second (a `Ready=False,
reason=InvalidSpec` condition). These tests keep the two in step without an apiserver:

- every level of both schemas has a `type`, a `description`, no `x-kubernetes-preserve-unknown-fields`, and
  defaults only in `spec`, as a v1 structural schema needs;
- the spec properties are exactly the models' camelCase aliases, required where the models require, with the
  models' defaults;
- a small JSON-schema checker (below) validates objects as the apiserver would, with Go's regexp semantics
  for `pattern` (unanchored search, `$` only at the very end), and a table of specs shows where schema and
  models agree, and what only the operator can reject (semantic checks a schema cannot say).

The checker prunes a null from a field that is not `nullable`, as the apiserver does, but is stricter about
unknown fields: it reports them, where the apiserver silently prunes them, so that a typo in an example fails
here. Every case of the tables below was also sent (dry run) to the v1.20.2 apiserver that
scripts/build-kube-apiserver.sh builds, which admitted exactly the specs marked schema-valid.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml
from pydantic import BaseModel

from kubetally.domain.budgets import BudgetScope, CostBudgetSpec, Notify, Threshold
from kubetally.domain.errors import SpecError
from kubetally.domain.resources import (
    CostReportSpec,
    CostWeightsSpec,
    LabelExpression,
    NodePrice,
    NodeSelector,
    StorageClassPrice,
    UnitPrices,
    Weights,
    parse_cost_report,
    parse_cost_weights,
)
from kubetally.domain.vocabulary import CURRENCIES

CRDS = Path(__file__).resolve().parents[2] / "crds"
REPORTS = "costreports.kubetally.io"
WEIGHTS = "costweights.kubetally.io"
BUDGETS = "costbudgets.kubetally.io"  # its own agreement table: tests/unit/test_crd_costbudget.py

Schema = dict[str, Any]


@cache
def _crd(name: str) -> dict[str, Any]:
    with (CRDS / f"{name}.yaml").open(encoding="utf-8") as stream:
        crd = yaml.safe_load(stream)
    assert isinstance(crd, dict)
    return crd


def _schema(name: str) -> Schema:
    schema = _crd(name)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert isinstance(schema, dict)
    return schema


def _at(schema: Schema, *path: str) -> Schema:
    """The schema node at a path of property names; "[]" steps into array items."""
    node = schema
    for step in path:
        node = node["items"] if step == "[]" else node["properties"][step]
    return node


def _walk(node: Schema, path: str = "") -> Iterator[tuple[str, Schema]]:
    """Every schema node with its path (`.spec.aggregate[]`, `.spec.nodePrices[].selector...`)."""
    yield path, node
    for name, child in node.get("properties", {}).items():
        yield from _walk(child, f"{path}.{name}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


# --- a small JSON-schema checker, with the apiserver's semantics ---------------------------------

#: go-openapi strfmt's date-time: a T between date and time, and a Z or ±hh:mm offset.
_DATE_TIME = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}[Tt][0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?([Zz]|[+-][0-9]{2}:[0-9]{2})")


@cache
def _go_pattern(pattern: str) -> re.Pattern[str]:
    """`pattern` as Go's regexp reads it: Python's `$` also matches before a final newline, Go's does not.

    The patterns here use no lookarounds or backreferences (RE2 has none), and `(?i:...)` means the same
    in both engines, so apart from `$` Python's `re` agrees with RE2 on them.
    """
    return re.compile(pattern.replace("$", r"\Z"))


def _type_ok(value: object, kind: str) -> bool:
    if kind == "integer":
        return isinstance(value, int) and not isinstance(value, bool)
    if kind == "number":
        return isinstance(value, int | float) and not isinstance(value, bool)
    expected = {"string": str, "boolean": bool, "object": dict, "array": list}[kind]
    return isinstance(value, expected)


def _violations(value: object, schema: Schema, path: str = "") -> list[str]:
    """Why `value` does not validate against `schema` (empty when it does)."""
    if value is None and schema.get("nullable") is True:
        return []
    kind = schema["type"]
    if not _type_ok(value, kind):
        return [f"{path}: {value!r} is not of type {kind}"]
    errors: list[str] = []
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{path}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, str):
        if "pattern" in schema and _go_pattern(schema["pattern"]).search(value) is None:
            errors.append(f"{path}: {value!r} does not match {schema['pattern']}")
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            errors.append(f"{path}: {value!r} has a length outside the bounds")
        if schema.get("format") == "date-time":
            try:
                _ = datetime.fromisoformat(value.replace("z", "Z"))
            except ValueError:
                errors.append(f"{path}: {value!r} is not a date-time")
            else:
                if _DATE_TIME.fullmatch(value) is None:
                    errors.append(f"{path}: {value!r} is not an RFC3339 date-time")
    if _type_ok(value, "number") and not schema.get("minimum", value) <= value <= schema.get("maximum", value):
        errors.append(f"{path}: {value!r} is outside the bounds")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{path}: {len(value)} items are outside the bounds")
        for index, item in enumerate(value):
            errors += _violations(item, schema["items"], f"{path}[{index}]")
        errors += _list_type_violations(value, schema, path)
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        value = {  # the apiserver prunes a null that its field does not allow, before defaulting and validation
            name: item for name, item in value.items()
            if item is not None or name not in properties or properties[name].get("nullable") is True
        }
        errors += [f"{path}: {name} is required" for name in schema.get("required", []) if name not in value]
        extra = schema.get("additionalProperties")
        for name, item in value.items():
            if name in properties:
                errors += _violations(item, properties[name], f"{path}.{name}")
            elif isinstance(extra, dict):
                errors += _violations(item, extra, f"{path}.{name}")
            elif properties:  # the apiserver prunes it; here it is a mistake
                errors.append(f"{path}: unknown field {name!r}")
    return errors


def _list_type_violations(value: list[Any], schema: Schema, path: str) -> list[str]:
    list_type = schema.get("x-kubernetes-list-type", "atomic")
    if list_type == "set":
        keys = [repr(item) for item in value]
    elif list_type == "map":
        keys = [repr([item.get(key) for key in schema["x-kubernetes-list-map-keys"]]) for item in value]
    else:
        return []
    return [f"{path}[{index}]: duplicate entry {key}" for index, key in enumerate(keys) if key in keys[:index]]


def _with_defaults(value: object, schema: Schema) -> object:
    """`value` with the schema's defaults filled in, as the apiserver does on admission and read."""
    if isinstance(value, dict):
        out = dict(value)
        for name, child in schema.get("properties", {}).items():
            if name not in out and "default" in child:
                out[name] = child["default"]
            if name in out:
                out[name] = _with_defaults(out[name], child)
        return out
    if isinstance(value, list) and isinstance(schema.get("items"), dict):
        return [_with_defaults(item, schema["items"]) for item in value]
    return value


def _spec_violations(crd: str, spec: Mapping[str, Any]) -> list[str]:
    return _violations(dict(spec), _at(_schema(crd), "spec"), ".spec")


# --- the CRDs themselves -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("crd", "kind", "singular", "short_names", "scope"),
    [(REPORTS, "CostReport", "costreport", ["crep"], "Namespaced"), (WEIGHTS, "CostWeights", "costweight", ["cw"], "Cluster"),
     (BUDGETS, "CostBudget", "costbudget", ["cbudget"], "Namespaced")],
)
def test_crd_names_scope_and_version(crd: str, kind: str, singular: str, short_names: list[str], scope: str) -> None:
    obj = _crd(crd)
    assert obj["apiVersion"] == "apiextensions.k8s.io/v1"
    assert obj["kind"] == "CustomResourceDefinition"
    spec = obj["spec"]
    assert obj["metadata"]["name"] == f"{spec['names']['plural']}.{spec['group']}" == crd
    assert spec["group"] == "kubetally.io"
    assert spec["names"] | {} == {
        "kind": kind, "listKind": f"{kind}List", "plural": crd.split(".")[0], "singular": singular,
        "shortNames": short_names, "categories": ["kubetally"],
    }
    assert spec["scope"] == scope
    [version] = spec["versions"]
    assert (version["name"], version["served"], version["storage"]) == ("v1alpha1", True, True)
    assert version["subresources"] == {"status": {}}
    assert _schema(crd)["required"] == ["spec"]


def test_kustomization_lists_both_crds() -> None:
    """`crds/Kustomization`: kustomize (and `kubectl apply -k`) also accepts that file name, and
    `kubectl apply -f crds/` skips it, as it reads only .json, .yaml and .yml files."""
    with (CRDS / "Kustomization").open(encoding="utf-8") as stream:
        kustomization = yaml.safe_load(stream)
    assert kustomization["apiVersion"] == "kustomize.config.k8s.io/v1beta1"
    assert kustomization["kind"] == "Kustomization"
    assert sorted(kustomization["resources"]) == sorted(path.name for path in CRDS.glob("*.kubetally.io.yaml"))
    assert sorted(kustomization["resources"]) == [f"{BUDGETS}.yaml", f"{REPORTS}.yaml", f"{WEIGHTS}.yaml"]


@pytest.mark.parametrize("folder", [CRDS, CRDS.parent / "manifests" / "samples"], ids=["crds", "samples"])
def test_kubectl_apply_f_reads_only_kubernetes_objects(folder: Path) -> None:
    """`kubectl apply -f <folder>/` sends every .json/.yaml/.yml file to the apiserver, which has no
    kind `Kustomization` ("no matches for kind", issue 12 bug 7): the folders users apply hold none."""
    read = sorted(path for path in folder.iterdir() if path.suffix in {".json", ".yaml", ".yml"})
    assert read
    for path in read:
        with path.open(encoding="utf-8") as stream:
            kinds = {doc["kind"] for doc in yaml.safe_load_all(stream) if doc}
        assert kinds <= {"CustomResourceDefinition", "CostWeights", "CostReport", "CostBudget"}, f"{path.name}: {kinds}"


@pytest.mark.parametrize("crd", [REPORTS, WEIGHTS, BUDGETS])
def test_schema_is_structural(crd: str) -> None:
    for path, node in _walk(_schema(crd)):
        assert "type" in node or node.get("x-kubernetes-int-or-string") is True, f"{path} has no type"
        assert "x-kubernetes-preserve-unknown-fields" not in node, f"{path} preserves unknown fields"
        for junctor in ("allOf", "anyOf", "oneOf", "not"):
            assert junctor not in node, f"{path} uses {junctor}, which the checker here does not read"
        if node.get("type") == "array":
            assert isinstance(node.get("items"), dict), f"{path} is an array without one items schema"
        if "properties" in node:
            assert node["type"] == "object", f"{path} has properties but is not an object"
            assert set(node.get("required", [])) <= set(node["properties"]), f"{path} requires an unknown field"
        if node.get("x-kubernetes-list-type") == "map":
            keys = node["x-kubernetes-list-map-keys"]
            assert set(keys) <= set(node["items"]["required"]), f"{path}: map keys must be required"
        if "default" in node:
            assert path.startswith(".spec."), f"{path} has a default outside spec"
            assert _violations(node["default"], node, path) == [], f"{path}: the default does not validate"
        if "pattern" in node:
            _go_pattern(node["pattern"])  # compiles
            assert node["pattern"].startswith("^"), f"{path}: unanchored pattern"
            assert node["pattern"].endswith("$"), f"{path}: unanchored pattern"
            for construct in ("(?=", "(?!", "(?<", "\\1"):
                assert construct not in node["pattern"], f"{path}: RE2 has no {construct}"


@pytest.mark.parametrize("crd", [REPORTS, WEIGHTS, BUDGETS])
def test_every_property_has_a_description(crd: str) -> None:
    schema = _schema(crd)
    assert schema["description"]
    assert schema["properties"]["metadata"] == {"type": "object"}  # the apiserver forbids anything more
    for path, node in _walk(schema):
        for name, child in node.get("properties", {}).items():
            if (path, name) == ("", "metadata"):
                continue
            description = child.get("description", "")
            assert isinstance(description, str), f"{path}.{name} has no description"
            assert len(description) > 10, f"{path}.{name} has no description"


def test_window_description_says_what_is_accepted() -> None:
    description = _at(_schema(REPORTS), "spec", "window")["description"]
    for word in ("today", "lastweek", "lastmonth", "7d", "2024-03-26T00:00:00Z,2024-03-27T00:00:00Z",
                 "1711382400,1711468800", "2024-03-26,2024-03-27", "start and end", "Example: lastweek"):
        assert word in description


@pytest.mark.parametrize(("crd", "part"), [(REPORTS, "status"), (WEIGHTS, "status"), (WEIGHTS, "spec"), (BUDGETS, "status"),
                                           (BUDGETS, "spec")])
def test_conditions_have_the_metav1_shape(crd: str, part: str) -> None:
    if part == "spec":
        assert "conditions" not in _at(_schema(crd), "spec")["properties"]
        return
    conditions = _at(_schema(crd), part, "conditions")
    assert conditions["x-kubernetes-list-type"] == "map"
    assert conditions["x-kubernetes-list-map-keys"] == ["type"]
    item = conditions["items"]
    assert set(item["properties"]) == {"type", "status", "reason", "message", "lastTransitionTime", "observedGeneration"}
    assert sorted(item["required"]) == ["lastTransitionTime", "message", "reason", "status", "type"]
    assert item["properties"]["status"]["enum"] == ["True", "False", "Unknown"]
    assert item["properties"]["lastTransitionTime"]["format"] == "date-time"
    assert _at(_schema(crd), part, "observedGeneration")["format"] == "int64"


def test_currency_enum_is_the_vocabulary() -> None:
    assert _at(_schema(WEIGHTS), "spec", "currency")["enum"] == list(CURRENCIES)
    assert _at(_schema(BUDGETS), "spec", "currency")["enum"] == list(CURRENCIES)
    assert len(CURRENCIES) == 15


# --- printer columns ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("crd", "columns"),
    [
        (REPORTS, {"Window": ".spec.window", "Total": ".status.totals.cost", "Currency": ".status.currency",
                   "Ready": '.status.conditions[?(@.type=="Ready")].status', "Last": ".status.lastComputedTime",
                   "Age": ".metadata.creationTimestamp"}),
        (WEIGHTS, {"Currency": ".spec.currency", "Ready": '.status.conditions[?(@.type=="Ready")].status',
                   "Age": ".metadata.creationTimestamp"}),
        (BUDGETS, {"Amount": ".status.amount", "Currency": ".spec.currency", "Period": ".spec.period",
                   "Spent": ".status.spent", "Forecast": ".status.forecast", "Percent": ".status.percent",
                   "State": '.status.conditions[?(@.type=="Exceeded")].reason', "Age": ".metadata.creationTimestamp"}),
    ],
)
def test_printer_columns_point_at_fields_of_the_schema(crd: str, columns: dict[str, str]) -> None:
    printed = _crd(crd)["spec"]["versions"][0]["additionalPrinterColumns"]
    assert {column["name"]: column["jsonPath"] for column in printed} == columns
    for column in printed:
        path = column["jsonPath"]
        if path == ".metadata.creationTimestamp":
            assert column["type"] == "date"
            continue
        field, _, rest = path.partition("[")
        node = _at(_schema(crd), *field.lstrip(".").split("."))
        if rest:  # a filter on a list: `[?(@.type=="Ready")].status` picks a field of an item
            condition = re.fullmatch(r'\?\(@\.type=="(Ready|Exceeded)"\)\]\.(status|reason)', rest)
            assert condition, rest
            node = _at(node, "[]", condition[2])
        expected = "date" if node.get("format") == "date-time" else node["type"]
        assert column["type"] == expected, f"{crd} column {column['name']}"


# --- in step with the pydantic models ----------------------------------------------------------

_MODELS: list[tuple[str, tuple[str, ...], type[BaseModel]]] = [
    (REPORTS, ("spec",), CostReportSpec),
    (WEIGHTS, ("spec",), CostWeightsSpec),
    (WEIGHTS, ("spec", "weights"), Weights),
    (WEIGHTS, ("spec", "unitPrices"), UnitPrices),
    (WEIGHTS, ("spec", "nodePrices", "[]"), NodePrice),
    (WEIGHTS, ("spec", "nodePrices", "[]", "selector"), NodeSelector),
    (WEIGHTS, ("spec", "nodePrices", "[]", "selector", "matchExpressions", "[]"), LabelExpression),
    (WEIGHTS, ("spec", "storageClassPrices", "[]"), StorageClassPrice),
    (BUDGETS, ("spec",), CostBudgetSpec),
    (BUDGETS, ("spec", "scope"), BudgetScope),
    (BUDGETS, ("spec", "thresholds", "[]"), Threshold),
    (BUDGETS, ("spec", "notify"), Notify),
]


@pytest.mark.parametrize(("crd", "path", "model"), _MODELS, ids=[model.__name__ for _, _, model in _MODELS])
def test_properties_are_the_model_aliases(crd: str, path: tuple[str, ...], model: type[BaseModel]) -> None:
    node = _at(_schema(crd), *path)
    assert set(node["properties"]) == {field.alias for field in model.model_fields.values()}
    required = {field.alias for field in model.model_fields.values() if field.is_required()}
    assert set(node.get("required", [])) == required


@pytest.mark.parametrize(("crd", "path", "model"), _MODELS, ids=[model.__name__ for _, _, model in _MODELS])
def test_nullable_properties_are_the_optional_fields(crd: str, path: tuple[str, ...], model: type[BaseModel]) -> None:
    node = _at(_schema(crd), *path)
    nullable = {name for name, child in node["properties"].items() if child.get("nullable") is True}
    assert nullable == {field.alias for field in model.model_fields.values() if field.default is None}


def test_report_defaults_are_the_model_defaults() -> None:
    spec = _at(_schema(REPORTS), "spec")
    defaults = {name: child["default"] for name, child in spec["properties"].items() if "default" in child}
    assert defaults == {
        "method": "Effective", "idle": True, "shareIdle": False, "shareSplit": "weighted", "idleByNode": False,
        "schedule": "@hourly", "topN": 20, "aggregate": ["namespace"],
    }
    for field in CostReportSpec.model_fields.values():
        assert field.alias is not None
        if field.alias in defaults:
            model_default = list(field.default) if isinstance(field.default, tuple) else field.default
            assert defaults[field.alias] == model_default, field.alias
        else:
            assert field.default is None, f"{field.alias} has a model default the CRD lacks"
    assert spec["properties"]["method"]["enum"] == ["Request", "Usage", "Effective"]
    assert spec["properties"]["shareSplit"]["enum"] == ["weighted", "even"]


def test_defaulted_spec_means_what_the_bare_spec_means() -> None:
    bare = {"window": "7d"}
    defaulted = _with_defaults(bare, _at(_schema(REPORTS), "spec"))
    assert isinstance(defaulted, dict)
    assert set(defaulted) == {"window", "method", "idle", "shareIdle", "shareSplit", "idleByNode", "schedule",
                              "topN", "aggregate"}
    assert parse_cost_report(defaulted) == parse_cost_report(bare)


def test_weights_spec_has_no_defaults() -> None:
    assert [path for path, node in _walk(_schema(WEIGHTS)) if "default" in node] == []


# --- the window, aggregate and schedule patterns ------------------------------------------------


@pytest.mark.parametrize(
    "window",
    ["today", "LastWeek", "7d", "30m", "2024-03-26T00:00:00Z,2024-03-27T00:00:00Z",
     "2024-03-26T00:00:00+08:00,2024-03-27T00:00:00+08:00", "1711382400,1711468800", "2024-03-26,2024-03-27"],
)
def test_window_pattern_accepts(window: str) -> None:
    assert _go_pattern(_at(_schema(REPORTS), "spec", "window")["pattern"]).search(window)


@pytest.mark.parametrize("window", ["7 days", "yesterday-ish", "", "1h30m", "7 d", "today,", "2024-03-26T00:00:00Z"])
def test_window_pattern_rejects(window: str) -> None:
    assert _go_pattern(_at(_schema(REPORTS), "spec", "window")["pattern"]).search(window) is None


def test_aggregate_pattern() -> None:
    pattern = _go_pattern(_at(_schema(REPORTS), "spec", "aggregate", "[]")["pattern"])
    assert pattern.search("label:app.kubernetes.io/name")
    assert pattern.search("controllerKind")
    assert pattern.search("colour") is None
    assert pattern.search("label:") is None


# Specs and whether (schema, model) accept them. The schema never refuses what the model accepts, except
# where noted; where the schema accepts what the model refuses, only the operator can say why (semantics).
_REPORT_CASES: list[tuple[dict[str, Any], bool, bool]] = [
    *[({"window": text}, True, True) for text in (
        "today", "YESTERDAY", "week", "LastWeek", "month", "lastMonth", "7d", "30m", "12H", "2w", "45s", "07d", " 7d ",
        "2024-03-26T00:00:00Z,2024-03-27T00:00:00Z", "2024-03-26T00:00:00+08:00,2024-03-27T00:00:00+08:00",
        "2024-03-26t00:00:00.250z,2024-03-27 00:00:00-03:30", "1711382400,1711468800", "0,1",
        "20240326,20240327",  # unix seconds, not dates
        "2024-03-26,2024-03-27", "2024-03-26 , 2024-03-27",
    )],
    *[({"window": text}, False, False) for text in (
        "7 days", "yesterday-ish", "1h30m", "-7d", "0d", "7", "7x", "1711382400", "2024-03-26T00:00:00Z",
        "2024-03-26T00:00:00,2024-03-27T00:00:00", "2024-03-26,1711468800", "2024-13-01,2024-13-02",
        "2024-03-26T25:00:00Z,2024-03-27T00:00:00Z", "today,yesterday", "a,b,c", "1711382400,1711468800,1",
        "", "   ",
    )],
    # Semantics: no 30 February, end before start, over 10 years.
    *[({"window": text}, True, False) for text in (
        "2024-02-30,2024-03-01", "2024-03-27,2024-03-26", "1711468800,1711382400", "99999d",
    )],
    ({"start": "2025-06-01", "end": "2025-06-08"}, True, True),
    ({"start": "2025-06-01T00:00:00Z", "end": "2025-06-08T00:00:00+08:00", "timeZone": "Asia/Shanghai"}, True, True),
    ({"window": "7d", "start": "", "end": " "}, True, True),
    ({"start": " 2025-06-01", "end": "2025-06-08"}, False, False),
    ({"start": "2025-06-01T00:00:00", "end": "2025-06-08T00:00:00"}, False, False),
    ({"start": "20250601", "end": "20250608"}, False, False),
    ({"start": "2025-06-08", "end": "2025-06-01"}, True, False),
    ({"start": "2025-06-01", "end": "2025-06-08T00:00:00Z"}, True, False),
    ({"window": "7d", "start": "2025-06-01"}, True, False),  # both: only documented (no CEL in v1.20)
    ({}, True, False),  # neither
    ({"window": None, "start": "2025-06-01", "end": "2025-06-08", "timeZone": None, "step": None}, True, True),
    ({"window": "7d", "start": None, "end": None, "filter": None, "customWeights": None}, True, True),
    ({"window": "7d", "schedule": None}, True, False),  # the apiserver prunes the null, then defaults @hourly
    ({"window": "7d", "timeZone": "Mars/Olympus"}, True, False),
    ({"window": "7d", "timeZone": "x" * 65}, False, False),
    *[({"window": "7d", "step": text}, True, True) for text in ("1d", " 6h ", "", "2W")],
    *[({"window": "7d", "step": text}, False, False) for text in ("1h30m", "0h", "day", "-1d", "1.5h")],
    *[({"window": "7d", "aggregate": keys}, True, True) for keys in (
        ["namespace"], ["label:app.kubernetes.io/name"], [" pod "], ["label: app"], ["namespace", "label:app"],
        ["pod", "namespace", "controller", "controllerKind", "node", "cluster", "project", "label:app"],
    )],
    *[({"window": "7d", "aggregate": keys}, False, False) for keys in (
        ["colour"], ["label:"], ["label:  "], ["Namespace"], ["label"], [], ["pod", "pod"], ["namespace", 3],
    )],
    ({"window": "7d", "aggregate": ["label:app.name", "label:app_name"]}, True, False),  # one label column
    *[({"window": "7d", "filter": text}, True, True) for text in ('namespace:"shop"+label[app]:"web"', "", " ")],
    ({"window": "7d", "filter": 'namespace:"shop'}, True, False),
    *[({"window": "7d", "method": method}, True, True) for method in ("Request", "Usage", "Effective")],
    *[({"window": "7d", "method": method}, False, False) for method in ("ProjectQuota", "effective", "")],
    ({"window": "7d", "idle": False, "shareIdle": True, "shareSplit": "even", "idleByNode": True}, True, True),
    ({"window": "7d", "idle": "true"}, False, False),
    ({"window": "7d", "shareSplit": "Even"}, False, False),
    *[({"window": "7d", "customWeights": name}, True, True) for name in ("", " ", "default", "spot.prices-2")],
    *[({"window": "7d", "customWeights": name}, False, False) for name in ("Default", "-x", "a_b", "a" * 254)],
    *[({"window": "7d", "schedule": text}, True, True) for text in (
        "@hourly", "@DAILY", " @weekly ", "@monthly", "30m", "1w", "300s", "*/15 * * * *", "0 3 * * 1",
        "0  3\t* * 1-5", "0,30 9-17/2 1 1-12 0-7",
    )],
    *[({"window": "7d", "schedule": text}, False, False) for text in (
        "", " ", "@yearly", "every hour", "* * * *", "* * * * * *", "0 3 * * MON", "1h30m", "0m",
    )],
    *[({"window": "7d", "schedule": text}, True, False) for text in ("1m", "61 * * * *", "0 0 31 2 *", "1-/ * * * *")],
    *[({"window": "7d", "topN": n}, True, True) for n in (1, 20, 500)],
    *[({"window": "7d", "topN": n}, False, False) for n in (0, 501, "20", True, 2.5)],
]

_WEIGHTS_CASES: list[tuple[dict[str, Any], bool, bool]] = [
    *[({"currency": code}, True, True) for code in CURRENCIES],
    *[({"currency": code}, False, False) for code in ("cny", "XXX", "")],
    ({}, False, False),
    ({"currency": "CNY", "weights": {"cpu": "0.7", "memory": "0.3"}}, True, True),
    ({"currency": "CNY", "weights": {"cpu": "1", "memory": "0"}}, True, True),
    ({"currency": "CNY", "weights": None, "effectiveFrom": None}, True, True),
    ({"currency": "CNY", "unitPrices": None}, True, False),  # the apiserver prunes the null
    ({"unitPrices": None, "currency": None}, False, False),
    ({"currency": "CNY", "weights": {"cpu": "1"}}, False, False),
    ({"currency": "CNY", "weights": {"cpu": 0.7, "memory": 0.3}}, False, False),
    ({"currency": "CNY", "weights": {"cpu": "-0.5", "memory": "1.5"}}, False, False),
    ({"currency": "CNY", "weights": {"cpu": "1e0", "memory": "0"}}, False, False),
    ({"currency": "CNY", "weights": {"cpu": "0.5", "memory": "0.6"}}, True, False),  # sum is not 1
    ({"currency": "CNY", "unitPrices": {"cpuCoreHour": "1", "memoryGiBHour": "0.5", "storageGiBHour": "0"}}, True, True),
    ({"currency": "CNY", "unitPrices": {"cpuCoreHour": "1", "memoryGiBHour": "0.5"}}, False, False),
    ({"currency": "CNY", "unitPrices": {"cpuCoreHour": "1.", "memoryGiBHour": "0.5", "storageGiBHour": "0"}},
     False, False),
    ({"currency": "CNY", "unitPrices": {"cpuCoreHour": "1\n", "memoryGiBHour": "0.5", "storageGiBHour": "0"}},
     False, False),  # Go's $ is the end of the text, Python's also before a final newline
    ({"currency": "CNY", "unitPrices": {"cpuCoreHour": "1" * 65, "memoryGiBHour": "0", "storageGiBHour": "0"}},
     False, False),
    *[({"currency": "CNY", "nodePrices": [{"selector": {"matchExpressions": [{"key": key, "operator": "Exists"}]},
                                           "hourly": "0.82"}]}, True, True)
      for key in ("node.kubernetes.io/instance-type", "app", "A_b.c", "x" * 63, "example.com/" + "x" * 63)],
    *[({"currency": "CNY", "nodePrices": [{"selector": {"matchExpressions": [{"key": key, "operator": "Exists"}]},
                                           "hourly": "0.82"}]}, False, False)
      for key in ("a/b/c", "-app", "app-", "x" * 64, "Example.com/app", "", "/app", "example.com/")],
    ({"currency": "CNY", "nodePrices": [{"selector": {"matchLabels": {"kubernetes.io/os": "linux"}},
                                         "hourly": "0.82"}]}, True, True),
    ({"currency": "CNY", "nodePrices": [{"selector": {"matchExpressions": [
        {"key": "zone", "operator": "In", "values": ["a", "b"]}]}, "hourly": "1"}]}, True, True),
    ({"currency": "CNY", "nodePrices": [{"selector": {"matchExpressions": [
        {"key": "zone", "operator": "in", "values": ["a"]}]}, "hourly": "1"}]}, False, False),
    ({"currency": "CNY", "nodePrices": [{"selector": {"matchLabels": {"zone": 1}}, "hourly": "1"}]}, False, False),
    ({"currency": "CNY", "nodePrices": [{"hourly": "1"}]}, False, False),
    ({"currency": "CNY", "nodePrices": [{"selector": {"matchLabels": {"zone": "a"}}}]}, False, False),
    ({"currency": "CNY", "nodePrices": [{"selector": {}, "hourly": "1"}]}, True, False),  # would match every node
    ({"currency": "CNY", "nodePrices": [{"selector": {"matchLabels": {"bad key!": "a"}}, "hourly": "1"}]}, True, False),
    ({"currency": "CNY", "nodePrices": [{"selector": {"matchExpressions": [
        {"key": "zone", "operator": "In"}]}, "hourly": "1"}]}, True, False),  # In needs values
    ({"currency": "CNY", "storageClassPrices": [{"storageClassName": "ssd", "gibHour": "0.0002"},
                                                {"storageClassName": "hdd", "gibHour": "0.0001"}]}, True, True),
    ({"currency": "CNY", "storageClassPrices": [{"storageClassName": "ssd", "gibHour": "0.0002"},
                                                {"storageClassName": "ssd", "gibHour": "0.0001"}]}, False, False),
    ({"currency": "CNY", "storageClassPrices": [{"storageClassName": "", "gibHour": "0.0002"}]}, False, False),
    ({"currency": "CNY", "storageClassPrices": [{"storageClassName": "ssd"}]}, False, False),
    *[({"currency": "CNY", "effectiveFrom": text}, True, True)
      for text in ("2025-06-01T00:00:00Z", "2025-06-01T08:00:00+08:00", "2025-06-01T00:00:00.5Z")],
    *[({"currency": "CNY", "effectiveFrom": text}, False, False)
      for text in ("2025-06-01", "2025-06-01T00:00:00", "2025-06-31T00:00:00Z", "next monday", "")],
]

#: The one place the schema refuses what the model accepts: the window pattern refuses "" on purpose (a blank
#: window is a mistake), which the model reads as "not given" next to start and end.
_SCHEMA_STRICTER = [({"window": "", "start": "2025-06-01", "end": "2025-06-08"}, False, True)]


def _model_accepts(parse: Callable[[Mapping[str, Any]], object], spec: Mapping[str, Any]) -> bool:
    try:
        parse(spec)
    except SpecError:
        return False
    return True


@pytest.mark.parametrize(("spec", "schema_ok", "model_ok"), _REPORT_CASES + _SCHEMA_STRICTER)
def test_report_schema_and_model_agree(spec: dict[str, Any], schema_ok: bool, model_ok: bool) -> None:
    assert (_spec_violations(REPORTS, spec) == []) is schema_ok, _spec_violations(REPORTS, spec)
    assert _model_accepts(parse_cost_report, spec) is model_ok


@pytest.mark.parametrize(("spec", "schema_ok", "model_ok"), _WEIGHTS_CASES)
def test_weights_schema_and_model_agree(spec: dict[str, Any], schema_ok: bool, model_ok: bool) -> None:
    assert (_spec_violations(WEIGHTS, spec) == []) is schema_ok, _spec_violations(WEIGHTS, spec)
    assert _model_accepts(parse_cost_weights, spec) is model_ok


def test_schema_refuses_nothing_the_model_accepts_but_the_blank_window() -> None:
    stricter = [spec for spec, schema_ok, model_ok in _REPORT_CASES + _WEIGHTS_CASES if model_ok and not schema_ok]
    assert stricter == []
    assert [spec for spec, _, _ in _SCHEMA_STRICTER] == [{"window": "", "start": "2025-06-01", "end": "2025-06-08"}]


# --- the DESIGN.md examples --------------------------------------------------------------------

#: DESIGN.md §5, as YAML loads it.
DESIGN_WEIGHTS = {
    "apiVersion": "kubetally.io/v1alpha1",
    "kind": "CostWeights",
    "metadata": {"name": "default"},
    "spec": {
        "currency": "CNY",
        "weights": {"cpu": "0.7", "memory": "0.3"},
        "unitPrices": {"cpuCoreHour": "0.031611", "memoryGiBHour": "0.004237", "storageGiBHour": "0.0000548"},
        "nodePrices": [{"selector": {"matchLabels": {"node.kubernetes.io/instance-type": "ecs.g7.xlarge"}},
                        "hourly": "0.82"}],
        "storageClassPrices": [{"storageClassName": "ssd", "gibHour": "0.0002"}],
        "effectiveFrom": "2025-06-01T00:00:00Z",
    },
}

#: DESIGN.md §7 without its status, whose values are elided there ("...").
DESIGN_REPORT = {
    "apiVersion": "kubetally.io/v1alpha1",
    "kind": "CostReport",
    "metadata": {"name": "web-last-week", "namespace": "shop"},
    "spec": {
        "window": "lastweek",
        "step": "1d",
        "aggregate": ["namespace", "label:app"],
        "filter": 'namespace:"shop"+label[app]:"web"',
        "method": "Effective",
        "idle": True,
        "shareIdle": False,
        "shareSplit": "weighted",
        "idleByNode": False,
        "customWeights": "",
        "schedule": "@hourly",
        "topN": 20,
    },
}

@pytest.mark.parametrize(
    ("crd", "obj", "parse"),
    [(WEIGHTS, DESIGN_WEIGHTS, parse_cost_weights), (REPORTS, DESIGN_REPORT, parse_cost_report)],
    ids=["CostWeights", "CostReport"],
)
def test_design_examples_validate(crd: str, obj: dict[str, Any], parse: Callable[[Mapping[str, Any]], object]) -> None:
    assert _violations(obj, _schema(crd)) == []
    assert _model_accepts(parse, obj["spec"])
    defaulted = _with_defaults(obj, _schema(crd))
    assert defaulted == obj  # §7 spells every default out; CostWeights has none


# The statuses the operator writes are validated against these schemas in tests/unit/test_crd_status.py.
