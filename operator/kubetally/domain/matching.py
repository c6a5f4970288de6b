"""Plain-Python evaluation of a parsed filter on one row: the reference `engine.filtering` is tested
against, and a filter for code that holds rows in memory rather than in DuckDB.

Semantics (the same as the SQL; `kubetally.domain.filters` explains them): a missing or None
attribute counts as ""; positive operators hold when any listed value matches, negated ones when none
does; label keys are matched sanitized. With `:` / `!:` the value `__unallocated__` also matches ""
(a missing or empty field), which is what `aggregate=X` prints under that name.
"""

from __future__ import annotations

from collections.abc import Mapping

from kubetally.domain.filters import AllOf, AnyOf, Condition, Field, Filter, Op
from kubetally.domain.labels import sanitize_label_key
from kubetally.domain.vocabulary import UNALLOCATED_KEY

#: Row key of each non-label field: the same names as the engine's fact columns, which the SQL uses.
ROW_KEYS: dict[Field, str] = {
    Field.CLUSTER: "cluster",
    Field.NODE: "node",
    Field.NAMESPACE: "namespace",
    Field.CONTROLLER_NAME: "controller",
    Field.CONTROLLER_KIND: "controller_kind",
    Field.POD: "pod",
    Field.PROJECT: "project",
}


def _value_of(condition: Condition, row: Mapping[str, object]) -> str:
    if condition.field is Field.LABEL:
        labels = row.get("labels")
        if not isinstance(labels, Mapping) or condition.label_key is None:
            return ""
        value = labels.get(sanitize_label_key(condition.label_key))
    else:
        value = row.get(ROW_KEYS[condition.field])
    return value if isinstance(value, str) else ""


def _holds(op: Op, actual: str, wanted: str) -> bool:
    if op in (Op.EQ, Op.NE):
        return actual == wanted or (wanted == UNALLOCATED_KEY and actual == "")
    if op in (Op.CONTAINS, Op.NOT_CONTAINS):
        return wanted in actual
    if op in (Op.PREFIX, Op.NOT_PREFIX):
        return actual.startswith(wanted)
    return actual.endswith(wanted)


def matches(filter: Filter, row: Mapping[str, object]) -> bool:
    """Evaluate `filter` on one row in plain Python: the reference the SQL compiler is tested against.

    `row` has the keys `cluster`, `node`, `namespace`, `controller`, `controller_kind`, `pod`,
    `project` (`str` or `None`) and `labels` (a mapping keyed by SANITIZED label keys). Missing keys
    and `None` count as `""`.
    """
    if isinstance(filter, AllOf):
        return all(matches(child, row) for child in filter.children)
    if isinstance(filter, AnyOf):
        return any(matches(child, row) for child in filter.children)
    actual = _value_of(filter, row)
    hit = any(_holds(filter.op, actual, wanted) for wanted in filter.values)
    return not hit if filter.op.negated else hit
