"""Compile a parsed `filter` (`kubetally.domain.filters`) to a DuckDB boolean expression.

The engine selects workload facts with `WHERE <expression>`; users write the filter, so no user text
(values or label keys) ever becomes SQL text: every one of them is a `?` positional parameter, and the
SQL text is built only from the constants below. Output::

    to_sql(None)                                  -> ("TRUE", [])
    namespace:"a","b"                             -> ("(coalesce(namespace, '') IN (?, ?))", ["a", "b"])
    label[app.kubernetes.io/name]!~:"x"           -> ("(NOT (contains(coalesce(labels[?], ''), ?)))",
                                                      ["app_kubernetes_io_name", "x"])
    a+b / a|b                                     -> "(<a> AND <b>)" / "(<a> OR <b>)"

The expression runs over a relation with the VARCHAR columns `cluster`, `node`, `namespace`,
`project`, `pod`, `controller_kind`, `controller` (NULL allowed) and `labels MAP(VARCHAR, VARCHAR)`
keyed by sanitized label keys (`kubetally.domain.labels`). NULL and a missing label count as `''`.
In `IN` / `NOT IN` lists a value `__unallocated__` brings `''` with it (a parameter too), so that
`X:"__unallocated__"` selects what `aggregate=X` prints as `__unallocated__` (missing or empty X):
`label[team]!:"a","__unallocated__"` -> `coalesce(labels[?], '') NOT IN (?, ?, ?)` with
`["team", "a", "__unallocated__", ""]`.
Contains / starts with / ends with use DuckDB's `contains`, `starts_with` and `ends_with`, which take
their argument literally (`%`, `_` and `\\` are not patterns). The result has the same meaning as
`kubetally.domain.matching.matches`, which the tests hold it to.
"""

from __future__ import annotations

from kubetally.domain.filters import AllOf, AnyOf, Condition, Field, Filter, Op
from kubetally.domain.labels import sanitize_label_key
from kubetally.domain.matching import ROW_KEYS  # column names: constants, never user text
from kubetally.domain.vocabulary import UNALLOCATED_KEY

__all__ = ["columns_read", "to_sql"]

#: DuckDB function of each substring-like operator (positive and negated).
_FUNCTIONS: dict[Op, str] = {
    Op.CONTAINS: "contains",
    Op.NOT_CONTAINS: "contains",
    Op.PREFIX: "starts_with",
    Op.NOT_PREFIX: "starts_with",
    Op.SUFFIX: "ends_with",
    Op.NOT_SUFFIX: "ends_with",
}


def _column(condition: Condition) -> tuple[str, list[object]]:
    """The field as a never-NULL VARCHAR expression, with its parameters."""
    if condition.field is Field.LABEL:
        return "coalesce(labels[?], '')", [sanitize_label_key(condition.label_key or "")]
    return f"coalesce({ROW_KEYS[condition.field]}, '')", []


def _condition(condition: Condition) -> tuple[str, list[object]]:
    negated = condition.op.negated
    if not condition.values:
        # Built in code only (the grammar needs a value): no value matches, so only "none of" holds.
        return ("TRUE" if negated else "FALSE"), []
    column, column_params = _column(condition)
    params: list[object] = []
    if condition.op in (Op.EQ, Op.NE):
        values = list(condition.values)
        if UNALLOCATED_KEY in values:
            values.append("")  # missing or empty: what aggregation names `__unallocated__`
        placeholders = ", ".join("?" for _ in values)
        keyword = "NOT IN" if negated else "IN"
        params.extend(column_params)
        params.extend(values)
        return f"({column} {keyword} ({placeholders}))", params
    function = _FUNCTIONS[condition.op]
    tests: list[str] = []
    for value in condition.values:
        tests.append(f"{function}({column}, ?)")
        params.extend(column_params)
        params.append(value)
    joined = " OR ".join(tests)
    return (f"(NOT ({joined}))" if negated else f"({joined})"), params


def _compile(node: Filter) -> tuple[str, list[object]]:
    if isinstance(node, Condition):
        return _condition(node)
    if isinstance(node, AllOf):
        keyword, empty = " AND ", "TRUE"
    else:
        assert isinstance(node, AnyOf)
        keyword, empty = " OR ", "FALSE"
    if not node.children:
        return empty, []
    parts: list[str] = []
    params: list[object] = []
    for child in node.children:
        sql, child_params = _compile(child)
        parts.append(sql)
        params.extend(child_params)
    return f"({keyword.join(parts)})", params


def to_sql(filter: Filter | None) -> tuple[str, list[object]]:
    """`filter` as a DuckDB boolean expression and its `?` parameters, in order; `None` → `TRUE`."""
    if filter is None:
        return "TRUE", []
    return _compile(filter)


def columns_read(filter: Filter | None) -> frozenset[str]:
    """The columns `to_sql(filter)` tests (`labels` for a label condition): a stored rollup level
    may answer the filter only if it keeps all of them (`engine.rollup.level_for`)."""
    if filter is None:
        return frozenset()
    if isinstance(filter, Condition):
        return frozenset({"labels" if filter.field is Field.LABEL else ROW_KEYS[filter.field]})
    return frozenset(column for child in filter.children for column in columns_read(child))
