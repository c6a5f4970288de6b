"""`to_sql` selects in DuckDB exactly the rows `domain.matching.matches` selects, and user text stays data."""

from __future__ import annotations

import math
import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import replace

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.filters import AllOf, AnyOf, Condition, Field, Filter, Op, parse_filter
from kubetally.domain.matching import matches
from kubetally.domain.vocabulary import UNALLOCATED_KEY
from kubetally.engine import pipeline
from kubetally.engine.facts import load_facts
from kubetally.engine.filtering import to_sql
from kubetally.engine.query import CostQuery
from tests import strategies as gen
from tests.reference import reference_costs
from tests.unit.engine.conftest import Run, by_step, costs
from tests.unit.engine.topology import H

COLUMNS = ("cluster", "node", "namespace", "project", "pod", "controller_kind", "controller")
DDL = (
    "CREATE OR REPLACE TABLE {name} (id INTEGER, cluster VARCHAR, node VARCHAR, namespace VARCHAR, "
    "project VARCHAR, pod VARCHAR, controller_kind VARCHAR, controller VARCHAR, labels MAP(VARCHAR, VARCHAR))"
)
DROP = "); DROP TABLE t; --"

Row = dict[str, object]


def row(
    id: int,
    cluster: str | None,
    node: str | None,
    namespace: str | None,
    project: str | None,
    pod: str | None,
    kind: str | None,
    controller: str | None,
    labels: dict[str, str] | None,
) -> Row:
    return {
        "id": id, "cluster": cluster, "node": node, "namespace": namespace, "project": project, "pod": pod,
        "controller_kind": kind, "controller": controller, "labels": labels,
    }  # fmt: skip


# Labels are keyed by SANITIZED keys, as facts hold them.
ROWS: list[Row] = [
    row(1, "c1", "n1", "default", "p1", "web-1", "Deployment", "web",
        {"app": "web", "app_kubernetes_io_name": "web", "team": "a"}),
    row(2, "c1", "n1", "default", "p1", "web-2", "Deployment", "web", {"app": "web", "team": ""}),
    row(3, "c1", "n2", "kube-system", None, "coredns-1", "Deployment", "coredns", {"k8s_app": "kube-dns"}),
    row(4, "c1", "n2", "kube-system", None, "kube-proxy-x", "DaemonSet", "kube-proxy", {}),
    row(5, "c2", "n3", "shop", "p2", "cart-0", "StatefulSet", "cart", {"app": "cart", "tier": "backend"}),
    row(6, "c2", "n3", "shop", "p2", "job-1", "Job", None, {"app": "cart"}),
    row(7, "c2", None, "shop", "p2", "orphan", None, None, None),
    row(8, "c2", "n3", "a'b", "p3", "q\"uote", "Deployment", "x", {"app": DROP}),
    row(9, "c2", "n3", "%", "p3", "100%", "Deployment", "x", {"app": "_"}),
    row(10, "c3", "n4", "_", "p3", "a_b", "Deployment", "x", {"app": "\\"}),
    row(11, "c3", "n4", "\\", "p3", "back\\slash", "Deployment", "x", {"app": "a'b"}),
    row(12, "c3", "n4", "命名空间", "p3", "pöd-ü", "ReplicaSet", "ß", {"app": "ß", "app_name": "x"}),
    row(13, "c3", "n4", "", "", "", "", "", {"app": ""}),
]  # fmt: skip


def load(connection: duckdb.DuckDBPyConnection, name: str, rows: Sequence[Row]) -> None:
    connection.execute(DDL.format(name=name))
    for r in rows:
        labels = r["labels"]
        values = [r["id"], *(r[c] for c in COLUMNS)]
        if labels is None:
            connection.execute(f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)", values)
        else:
            assert isinstance(labels, Mapping)
            connection.execute(
                f"INSERT INTO {name} VALUES (?, ?, ?, ?, ?, ?, ?, ?, map(?::VARCHAR[], ?::VARCHAR[]))",
                [*values, list(labels.keys()), list(labels.values())],
            )


@pytest.fixture(scope="module")
def db() -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    load(connection, "t", ROWS)
    yield connection
    connection.close()


def selected(connection: duckdb.DuckDBPyConnection, name: str, node: Filter | None) -> set[int]:
    sql, params = to_sql(node)
    return {r[0] for r in connection.execute(f"SELECT id FROM {name} WHERE {sql}", params).fetchall()}


def reference(rows: Sequence[Row], node: Filter | None) -> set[int]:
    return {int(str(r["id"])) for r in rows if node is None or matches(node, r)}


ALL = set(range(1, 14))
EXPECTED: list[tuple[str, set[int]]] = [
    ('namespace:"default"', {1, 2}),
    ('namespace:"default","kube-system"', {1, 2, 3, 4}),
    ('namespace!:"default","kube-system"', ALL - {1, 2, 3, 4}),
    ('cluster:"c1"+controllerKind:"Deployment"', {1, 2, 3}),
    ('cluster:"c1"|node:"n3"', {1, 2, 3, 4, 5, 6, 8, 9}),
    ('node:"n3"+pod<~:"cart"|namespace:"kube-system"', {3, 4, 5}),
    ('node:"n3"+(pod<~:"cart"|namespace:"kube-system")', {5}),
    ('pod~:"-"', {1, 2, 3, 4, 5, 6, 12}),
    ('pod!~:"-"', ALL - {1, 2, 3, 4, 5, 6, 12}),
    ('pod~>:"-1","-0"', {1, 3, 5, 6}),
    ('pod!~>:"-1","-0"', ALL - {1, 3, 5, 6}),
    ('pod!<~:"web","kube"', ALL - {1, 2, 4}),
    ('controller:""', {6, 7, 13}),
    ('controllerName!:""', ALL - {6, 7, 13}),
    ('node:""', {7}),
    ('project:""', {3, 4, 13}),
    ('label[app]:"web"', {1, 2}),
    ('label[app.kubernetes.io/name]:"web"', {1}),
    ('label[team]:""', ALL - {1}),
    ('label[team]!:""', {1}),
    ('label[app]:""', {3, 4, 7, 13}),
    ('label[app.name]:"x"', {12}),
    ('label[app/name]~:"x"', {12}),
    ('label[tier]<~:"back"', {5}),
    ('namespace:"命名空间"+pod:"pöd-ü"+label[app]:"ß"', {12}),
    ('controller:"ß"', {12}),
    # hostile values are data, matched literally
    ('''namespace:"a'b"''', {8}),
    ('''label[app]:"a'b"''', {11}),
    ('label[app]:"); DROP TABLE t; --"', {8}),
    ('label[app]~:"DROP TABLE"', {8}),
    ('pod:"q\\"uote"', {8}),
    ('namespace:"%"', {9}),
    ('namespace~:"%"', {9}),
    ('pod~>:"%"', {9}),
    ('namespace:"_"', {10}),
    ('namespace~:"_"', {10}),
    ('pod~:"_"', {10}),
    ('label[app]:"_"', {9}),
    ('namespace:"\\\\"', {11}),
    ('namespace~:"\\\\"', {11}),
    ('pod~:"\\\\"', {11}),
    ('label[app]:"\\\\"', {10}),
    ('namespace~:".*"', set()),
    ('namespace<~:"%"+pod<~:"1"', {9}),
    ('label[); DROP TABLE t; --]:""', ALL),
    ('label[\']:"x"', set()),
    # `__unallocated__` with `:` / `!:` means "missing or empty", as the aggregate row of that name
    ('label[team]:"__unallocated__"', ALL - {1}),
    ('label[team]!:"__unallocated__"', {1}),
    ('label[app]:"__unallocated__"', {3, 4, 7, 13}),
    ('label[app]:"web","__unallocated__"', {1, 2, 3, 4, 7, 13}),
    ('label[app]!:"web","__unallocated__"', ALL - {1, 2, 3, 4, 7, 13}),
    ('label[gone]:"__unallocated__"', ALL),
    ('label[gone]!:"__unallocated__"', set()),
    ('controller:"__unallocated__"', {6, 7, 13}),
    ('controllerName!:"__unallocated__"', ALL - {6, 7, 13}),
    ('controllerKind:"__unallocated__"', {7, 13}),
    ('node:"__unallocated__"', {7}),
    ('project:"__unallocated__"', {3, 4, 13}),
    ('namespace:"__unallocated__"', {13}),
    ('namespace!:"__unallocated__"', ALL - {13}),
    ('pod:"__unallocated__"', {13}),
    ('cluster:"__unallocated__"', set()),
    ('cluster!:"__unallocated__"', ALL),
    ('(label[app]:"__unallocated__"|namespace:"shop")+cluster:"c2"', {5, 6, 7}),
]


@pytest.mark.parametrize(("text", "expected"), EXPECTED, ids=[text for text, _ in EXPECTED])
def test_sql_selects_the_expected_rows(db: duckdb.DuckDBPyConnection, text: str, expected: set[int]) -> None:
    node = parse_filter(text)
    assert reference(ROWS, node) == expected
    assert selected(db, "t", node) == expected
    assert db.execute("SELECT count(*) FROM t").fetchone() == (len(ROWS),)


MORE = [
    'namespace~:"e"+label[app]!:"web"|pod<~:"k"',
    '(cluster:"c2"|cluster:"c3")+(label[app]~:"a"|label[app]:"")',
    'controllerKind!:"Deployment","Job"+node!:""',
    'pod~:""',
    'pod!~:""',
    'label[k8s-app]~>:"dns"',
    'label[missing]<~:""',
    'project<~:"p"+project~>:"3"|namespace:""',
]


@pytest.mark.parametrize("text", MORE)
def test_sql_agrees_with_matches(db: duckdb.DuckDBPyConnection, text: str) -> None:
    node = parse_filter(text)
    assert selected(db, "t", node) == reference(ROWS, node)


def test_no_filter_is_true(db: duckdb.DuckDBPyConnection) -> None:
    assert to_sql(None) == ("TRUE", [])
    assert selected(db, "t", None) == ALL


def test_exact_sql_and_parameters() -> None:
    node = parse_filter('namespace:"a","b"+label[app.kubernetes.io/name]!~:"x","y"|pod<~:"p"')
    assert to_sql(node) == (
        "(((coalesce(namespace, '') IN (?, ?)) AND "
        "(NOT (contains(coalesce(labels[?], ''), ?) OR contains(coalesce(labels[?], ''), ?)))) OR "
        "(starts_with(coalesce(pod, ''), ?)))",
        ["a", "b", "app_kubernetes_io_name", "x", "app_kubernetes_io_name", "y", "p"],
    )


def test_user_text_never_reaches_sql() -> None:
    node = parse_filter('namespace:"' + DROP + '"+label[' + DROP + ']~:"x\'"')
    sql, params = to_sql(node)
    assert "DROP" not in sql
    assert "'x" not in sql
    assert DROP in params


def test_unallocated_also_matches_its_own_literal_text() -> None:
    """Aggregation prints a value that is literally `__unallocated__` under the same row name as a
    missing one (Kubernetes forbids it in names and label values, but facts are data), so the filter
    selects both; `""` keeps meaning "missing or empty" only."""
    rows: list[Row] = [
        row(1, "c1", "n1", "a", "p", "x", "Deployment", "__unallocated__", {"app": "__unallocated__"}),
        row(2, "c1", "n1", "a", "p", "y", "Deployment", "web", {}),
        row(3, "c1", "n1", "a", "p", "z", None, None, {"app": "web"}),
    ]
    connection = duckdb.connect()
    load(connection, "u", rows)
    for text, expected in [
        ('label[app]:"__unallocated__"', {1, 2}),
        ('label[app]!:"__unallocated__"', {3}),
        ('label[app]:""', {2}),
        ('controller:"__unallocated__"', {1, 3}),
        ('controller:""', {3}),
        ('controller!:"__unallocated__","web"', set()),
    ]:
        node = parse_filter(text)
        assert reference(rows, node) == expected, text
        assert selected(connection, "u", node) == expected, text
    connection.close()


def test_unallocated_sql_and_parameters() -> None:
    """`__unallocated__` adds `''` to the IN list; the value itself stays a parameter."""
    assert to_sql(parse_filter('label[team]!:"a","__unallocated__"')) == (
        "(coalesce(labels[?], '') NOT IN (?, ?, ?))",
        ["team", "a", "__unallocated__", ""],
    )


def test_empty_nodes(db: duckdb.DuckDBPyConnection) -> None:
    assert selected(db, "t", AllOf(())) == ALL
    assert selected(db, "t", AnyOf(())) == set()
    assert selected(db, "t", Condition(Field.POD, Op.EQ, ())) == set()
    assert selected(db, "t", Condition(Field.POD, Op.NOT_SUFFIX, ())) == ALL


# -- random filters over random rows ------------------------------------------------------------

ALPHABET = st.sampled_from(["a", "b", "é", "%", "_", "'", "\\", '"', " "])
TEXT = st.one_of(st.text(alphabet=ALPHABET, max_size=3), st.just(UNALLOCATED_KEY))
CELL = st.one_of(st.none(), TEXT)
LABEL_KEYS = ["app", "team", "x.y", "x/y", "x_y", "gone"]
LABELS = st.one_of(st.none(), st.dictionaries(st.sampled_from(["app", "team", "x_y"]), TEXT, max_size=3))
ROW_STRATEGY = st.fixed_dictionaries(dict.fromkeys(COLUMNS, CELL) | {"labels": LABELS})
VALUES = st.lists(TEXT, min_size=0, max_size=3).map(tuple)
CONDITIONS = st.one_of(
    st.builds(
        Condition, st.sampled_from([f for f in Field if f is not Field.LABEL]), st.sampled_from(Op), VALUES
    ),
    st.builds(
        lambda op, values, key: Condition(Field.LABEL, op, values, key),
        st.sampled_from(Op),
        VALUES,
        st.sampled_from(LABEL_KEYS),
    ),
)
FILTERS = st.recursive(
    CONDITIONS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3).map(lambda c: AllOf(tuple(c))),
        st.lists(inner, max_size=3).map(lambda c: AnyOf(tuple(c))),
    ),
    max_leaves=10,
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(ROW_STRATEGY, min_size=1, max_size=8), FILTERS)
def test_random_filters_agree_with_matches(
    db: duckdb.DuckDBPyConnection, raw_rows: list[dict[str, object]], node: Filter
) -> None:
    rows = [{"id": i, **r} for i, r in enumerate(raw_rows)]
    load(db, "h", rows)
    assert selected(db, "h", node) == reference(rows, node)


# -- `__unallocated__` through the whole engine, on the documented topology ------------------------
#
# Hand-derived from tests/unit/engine/topology.py (Effective, window h0+h1, no idle): the pods cost
# web-1 0.30, burst-1 0.35, api-1 0.60, etl-1 0.15, agent-n3 0.07, job-1 0.0175; Σ 1.4875. etl-1 has
# no labels, no controller and no controller kind; no pod has a `team` label; every pod has a
# namespace, a node, a cluster and a project. So `X:"__unallocated__"` selects:
#     X                 pods          cost     negated (1.4875 − cost)
#     label[app]        etl-1         0.15     1.3375
#     label[team]       all six       1.4875   0 (no rows)
#     controller        etl-1         0.15     1.3375
#     controllerKind    etl-1         0.15     1.3375
#     namespace, pod, node, cluster, project: none, 0, 1.4875
UNALLOCATED_TABLE: list[tuple[str, str, float]] = [
    ("label:app", "label[app]", 0.15),
    ("label:team", "label[team]", 1.4875),
    ("label:app.kubernetes.io/name", "label[app.kubernetes.io/name]", 1.4875),
    ("controller", "controller", 0.15),
    ("controllerKind", "controllerKind", 0.15),
    ("namespace", "namespace", 0.0),
    ("pod", "pod", 0.0),
    ("node", "node", 0.0),
    ("cluster", "cluster", 0.0),
    ("project", "project", 0.0),
]
TOPOLOGY_TOTAL = 1.4875


def near(expected: object) -> object:
    """`expected` as an approximate value: sums of floats, 1e-12 relative or absolute."""
    return pytest.approx(expected, rel=1e-12, abs=1e-12)


@pytest.mark.parametrize(("aggregate", "field", "cost"), UNALLOCATED_TABLE, ids=[a for a, _, _ in UNALLOCATED_TABLE])
def test_unallocated_filter_selects_the_aggregate_row(run: Run, aggregate: str, field: str, cost: float) -> None:
    """The `__unallocated__` row of aggregate=X, the filter X:"__unallocated__" and its negation."""
    by_key = costs(run(aggregate=aggregate, idle=False))
    assert by_key.get(UNALLOCATED_KEY, 0.0) == near(cost)
    kept = run(aggregate=aggregate, filter=f'{field}:"__unallocated__"', idle=False)
    assert sum(row.cost for row in kept.rows) == near(cost)
    assert {row.name for row in kept.rows} <= {UNALLOCATED_KEY}
    rest = run(aggregate=aggregate, filter=f'{field}!:"__unallocated__"', idle=False)
    assert sum(row.cost for row in rest.rows) == near(TOPOLOGY_TOTAL - cost)
    assert UNALLOCATED_KEY not in {row.name for row in rest.rows}


def test_unallocated_by_pod_multi_value_and_steps(run: Run) -> None:
    assert costs(run(filter='label[app]:"__unallocated__"', idle=False)) == near({"etl-1": 0.15})
    assert costs(run(filter='label[app]:"web","__unallocated__"', idle=False)) == near(
        {"web-1": 0.30, "etl-1": 0.15}
    )
    assert costs(run(filter='label[app]!:"web","__unallocated__"', idle=False)) == near(
        {"burst-1": 0.35, "api-1": 0.60, "agent-n3": 0.07, "job-1": 0.0175}
    )  # Σ 1.0375 = 1.4875 − 0.45
    assert costs(run(filter='controller:"__unallocated__"|namespace:"batch"', idle=False)) == near(
        {"etl-1": 0.15, "job-1": 0.0175}
    )
    assert by_step(run(filter='label[app]:"__unallocated__"', step=H, idle=False)) == near(
        {(0, "etl-1"): 0.075, (H, "etl-1"): 0.075}
    )
    assert run(filter='namespace:"__unallocated__"', idle=False).rows == ()


# -- the same agreement on random fact sets, against the independent oracle (tests/reference.py) --


def _field_of(key: AggregateKey) -> str:
    """The filter field that reads what aggregate key `key` groups by."""
    return f"label[{key.label_key}]" if key.dimension is Dimension.LABEL else key.dimension.value


@settings(
    max_examples=int(os.environ.get("KUBETALLY_PROPERTY_EXAMPLES", "60")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_unallocated_filter_equals_the_oracle_row(data: st.DataObject) -> None:
    """Engine `X:"__unallocated__"` = the oracle's `__unallocated__` row of aggregate=X, and the
    negation = the oracle's other rows, for every aggregate key the strategies draw."""
    fs = data.draw(gen.fact_sets())
    book = data.draw(gen.price_books())
    key = data.draw(st.sampled_from(gen.AGGREGATE_CHOICES))
    method = data.draw(st.sampled_from(gen.COST_METHODS))
    base = CostQuery(window=data.draw(gen.windows(fs)), aggregate=(key,), method=method, idle=False)
    oracle = {row["key"]: row["cost"] for row in reference_costs(fs.containers, fs.nodes, book, base)}
    unallocated = oracle.get((UNALLOCATED_KEY,), 0.0)
    rest = sum(cost for name, cost in oracle.items() if name != (UNALLOCATED_KEY,))
    facts = load_facts(containers=fs.containers, nodes=fs.nodes, volumes=fs.volumes, quotas=fs.quotas)
    for op, expected in ((":", unallocated), ("!:", rest)):
        query = replace(base, filter=parse_filter(f'{_field_of(key)}{op}"{UNALLOCATED_KEY}"'))
        table = pipeline.compute(facts, book, query)
        got = sum(row.cost for row in table.rows)
        assert math.isclose(got, expected, rel_tol=1e-9, abs_tol=1e-12), (key.display(), op, got, expected)
