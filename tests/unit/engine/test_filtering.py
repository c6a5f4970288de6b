"""`to_sql` selects in DuckDB exactly the rows `domain.matching.matches` selects, and user text stays data."""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence

import duckdb
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kubetally.domain.filters import AllOf, AnyOf, Condition, Field, Filter, Op, parse_filter
from kubetally.domain.matching import matches
from kubetally.engine.filtering import to_sql

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


def test_empty_nodes(db: duckdb.DuckDBPyConnection) -> None:
    assert selected(db, "t", AllOf(())) == ALL
    assert selected(db, "t", AnyOf(())) == set()
    assert selected(db, "t", Condition(Field.POD, Op.EQ, ())) == set()
    assert selected(db, "t", Condition(Field.POD, Op.NOT_SUFFIX, ())) == ALL


# -- random filters over random rows ------------------------------------------------------------

ALPHABET = st.sampled_from(["a", "b", "é", "%", "_", "'", "\\", '"', " "])
TEXT = st.text(alphabet=ALPHABET, max_size=3)
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
