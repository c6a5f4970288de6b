"""The `filter` grammar: exact ASTs, exact errors, and no exception but SpecError on any text."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kubetally.domain.errors import SpecError
from kubetally.domain.filters import (
    MAX_DEPTH,
    MAX_FILTER_BYTES,
    AllOf,
    AnyOf,
    Condition,
    Field,
    Filter,
    Op,
    parse_filter,
)
from kubetally.domain.matching import matches

EXAMPLE = 'example: namespace:"default"+label[app]:"nginx"'
FIELDS = (
    "accepted fields: cluster, node, namespace, controllerName, controllerKind, pod, project, label[<key>]"
)
OPS = "accepted operators: : !: ~: !~: <~: !<~: ~>: !~>:"


def ns(*values: str, op: Op = Op.EQ) -> Condition:
    return Condition(Field.NAMESPACE, op, values)


def label(key: str, *values: str, op: Op = Op.EQ) -> Condition:
    return Condition(Field.LABEL, op, values, key)


def pod(*values: str, op: Op = Op.EQ) -> Condition:
    return Condition(Field.POD, op, values)


GOOD: list[tuple[str, Filter]] = [
    # every field
    ('cluster:"c1"', Condition(Field.CLUSTER, Op.EQ, ("c1",))),
    ('node:"n1"', Condition(Field.NODE, Op.EQ, ("n1",))),
    ('namespace:"default"', ns("default")),
    ('controllerName:"web"', Condition(Field.CONTROLLER_NAME, Op.EQ, ("web",))),
    ('controller:"web"', Condition(Field.CONTROLLER_NAME, Op.EQ, ("web",))),
    ('controllerKind:"Deployment"', Condition(Field.CONTROLLER_KIND, Op.EQ, ("Deployment",))),
    ('pod:"web-1"', pod("web-1")),
    ('project:"p1"', Condition(Field.PROJECT, Op.EQ, ("p1",))),
    ('label[app]:"nginx"', label("app", "nginx")),
    # every operator
    ('namespace!:"a"', ns("a", op=Op.NE)),
    ('namespace~:"a"', ns("a", op=Op.CONTAINS)),
    ('namespace!~:"a"', ns("a", op=Op.NOT_CONTAINS)),
    ('namespace<~:"a"', ns("a", op=Op.PREFIX)),
    ('namespace!<~:"a"', ns("a", op=Op.NOT_PREFIX)),
    ('namespace~>:"a"', ns("a", op=Op.SUFFIX)),
    ('namespace!~>:"a"', ns("a", op=Op.NOT_SUFFIX)),
    # value lists
    ('namespace:"default","kube-system"', ns("default", "kube-system")),
    ('namespace!:"a" , "b",  "c"', ns("a", "b", "c", op=Op.NE)),
    ('namespace:"a","a"', ns("a", "a")),
    ('namespace:""', ns("")),
    ('label[team]:""', label("team", "")),
    # combination and precedence
    ('namespace:"a"+pod:"b"', AllOf((ns("a"), pod("b")))),
    ('namespace:"a"+pod:"b"+label[x]:"c"', AllOf((ns("a"), pod("b"), label("x", "c")))),
    ('namespace:"a"|pod:"b"', AnyOf((ns("a"), pod("b")))),
    ('namespace:"a"|pod:"b"+pod:"c"', AnyOf((ns("a"), AllOf((pod("b"), pod("c")))))),
    ('namespace:"a"+pod:"b"|pod:"c"', AnyOf((AllOf((ns("a"), pod("b"))), pod("c")))),
    ('(namespace:"a"|pod:"b")+pod:"c"', AllOf((AnyOf((ns("a"), pod("b"))), pod("c")))),
    ('(namespace:"a"+pod:"b")+pod:"c"', AllOf((AllOf((ns("a"), pod("b"))), pod("c")))),
    ('((namespace:"a"))', ns("a")),
    (
        'pod:"a"|(pod:"b"|(pod:"c"+pod:"d"))',
        AnyOf((pod("a"), AnyOf((pod("b"), AllOf((pod("c"), pod("d"))))))),
    ),
    # whitespace
    (
        '  namespace : "a"  +  ( pod !~: "b" | pod:"c" ) ',
        AllOf((ns("a"), AnyOf((pod("b", op=Op.NOT_CONTAINS), pod("c"))))),
    ),
    ('\tnamespace:"a"\n|\npod:"b"', AnyOf((ns("a"), pod("b")))),
    # escapes and literal characters
    (r'namespace:"a\"b"', ns('a"b')),
    (r'namespace:"a\\b"', ns("a\\b")),
    (r'namespace:"a\\"', ns("a\\")),
    (r'namespace:"a\nb"', ns("a\\nb")),
    (r'namespace:"\"\\\""', ns('"\\"')),
    ('''namespace:"{ } | ' $ .* + ( ) , : ! ~"''', ns("{ } | ' $ .* + ( ) , : ! ~")),
    ('namespace:"命名空间","пространство","🚀"', ns("命名空间", "пространство", "🚀")),
    ('namespace:"  spaced  "', ns("  spaced  ")),
    # label keys
    ('label[app.kubernetes.io/name]:"web"', label("app.kubernetes.io/name", "web")),
    ('label[example.com/some-key_1]~>:"x"', label("example.com/some-key_1", "x", op=Op.SUFFIX)),
    ('label[a b"c+|(]:"x"', label('a b"c+|(', "x")),
    ('label[ ]:"x"', label(" ", "x")),
]


@pytest.mark.parametrize(("text", "expected"), GOOD, ids=[text for text, _ in GOOD])
def test_parses_to_exact_ast(text: str, expected: Filter) -> None:
    assert parse_filter(text) == expected


@pytest.mark.parametrize("text", [None, "", " ", "\t\n "])
def test_empty_means_no_filter(text: str | None) -> None:
    assert parse_filter(text) is None


def e(message: str) -> str:
    return f"filter: {message}; {EXAMPLE}"


BAD: list[tuple[str, str]] = [
    ('nmespace:"x"', e(f'unknown field "nmespace" at position 0; {FIELDS}')),
    ('Namespace:"x"', e(f'unknown field "Namespace" at position 0; {FIELDS}')),
    ('pod:"a"+labels[x]:"y"', e(f'unknown field "labels" at position 8; {FIELDS}')),
    ('"default"', e(f'expected a field at position 0, found "\\"default\\""; {FIELDS}')),
    (
        "namespace",
        e(f'missing operator after field "namespace" at position 9, found the end of the filter; {OPS}'),
    ),
    ('namespace="a"', e(f'missing operator after field "namespace" at position 9, found "=\\"a\\""; {OPS}')),
    ('label[app]"a"', e(f'missing operator after field "label[app]" at position 10, found "\\"a\\""; {OPS}')),
    ('namespace:"abc', e('unterminated quote at position 10: "\\"abc" has no closing \'"\'')),
    ('namespace:"abc\\"', e('unterminated quote at position 10: "\\"abc\\\\\\"" has no closing \'"\'')),
    (
        "namespace:default",
        e('value not quoted at position 10: "default"; values are double-quoted strings such as "default"'),
    ),
    (
        "namespace:'a'",
        e('value not quoted at position 10: "\'a\'"; values are double-quoted strings such as "default"'),
    ),
    ("namespace:", e("empty value list at position 10: give at least one double-quoted value")),
    ('namespace: +pod:"a"', e("empty value list at position 11: give at least one double-quoted value")),
    ('namespace:"a",', e("trailing ',' at position 13: a double-quoted value must follow it")),
    ('namespace:"a" "b"', e("missing ',' between values at position 14")),
    ('namespace:"a"+', e("trailing '+' at position 13: a condition must follow it")),
    ('namespace:"a" | ', e("trailing '|' at position 14: a condition must follow it")),
    ('namespace:"a"+|pod:"b"', e("'+' at position 13 is followed by '|' at position 14, not by a condition")),
    ('+namespace:"a"', e("'+' at position 0 has no condition before it")),
    ('|namespace:"a"', e("'|' at position 0 has no condition before it")),
    ('(namespace:"a"', e("unbalanced parentheses: '(' at position 0 is never closed")),
    ('(namespace:"a"+(pod:"b")', e("unbalanced parentheses: '(' at position 0 is never closed")),
    ('namespace:"a")', e("unbalanced parentheses: ')' at position 13 has no matching '('")),
    (')namespace:"a"', e("unbalanced parentheses: ')' at position 0 has no matching '('")),
    ("(", e("unbalanced parentheses: '(' at position 0 is never closed")),
    ("()", e("empty parentheses at position 0: put a condition inside")),
    ('(pod:"a" "b")', e("missing ',' between values at position 9")),
    ('pod:"a" "b"', e("missing ',' between values at position 8")),
    ('label[]:"x"', e("empty label key at position 0: 'label[]' needs a key, e.g. label[app]")),
    ('label:"x"', e("field 'label' at position 0 needs a key in brackets, e.g. label[app]")),
    ('label[app:"x"', e("unterminated label key at position 0: 'label[' has no closing ']'")),
    ("(" * 33 + 'pod:"a"' + ")" * 33, e("parentheses nested deeper than 32 levels at position 32")),
    (
        'label[team]~:"__unallocated__"',
        e(
            "\"__unallocated__\" at position 13 stands for a missing or empty value and is accepted only "
            "with ':' or '!:', not with '~:' (write label[team]:\"__unallocated__\")"
        ),
    ),
    (
        'pod:"a"+controller!<~:"b", "__unallocated__"',
        e(
            "\"__unallocated__\" at position 27 stands for a missing or empty value and is accepted only "
            "with ':' or '!:', not with '!<~:' (write controller!:\"__unallocated__\")"
        ),
    ),
]


@pytest.mark.parametrize(("text", "message"), BAD, ids=[text[:40] for text, _ in BAD])
def test_rejects_with_exact_message(text: str, message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_filter(text)
    assert str(caught.value) == message
    assert caught.value.field == "filter"


def test_brief_example_message() -> None:
    with pytest.raises(SpecError) as caught:
        parse_filter('nmespace:"default"')
    assert str(caught.value) == (
        'filter: unknown field "nmespace" at position 0; accepted fields: cluster, node, namespace, '
        "controllerName, controllerKind, pod, project, label[<key>]; "
        'example: namespace:"default"+label[app]:"nginx"'
    )


def test_field_name_is_used_in_errors() -> None:
    with pytest.raises(SpecError) as caught:
        parse_filter("nope", field="spec.filter")
    assert caught.value.field == "spec.filter"
    assert str(caught.value).startswith("spec.filter: ")


def test_long_snippets_are_cut() -> None:
    with pytest.raises(SpecError) as caught:
        parse_filter('namespace:"' + "x" * 100)
    assert '"\\"xxxxxxxxxxxxxxxxxxxxxxx…"' in str(caught.value)


def test_size_limit_is_16_kib_of_utf8() -> None:
    frame = len('pod:""')
    assert parse_filter('pod:"' + "a" * (MAX_FILTER_BYTES - frame) + '"') == pod(
        "a" * (MAX_FILTER_BYTES - frame)
    )
    with pytest.raises(SpecError, match="is 16385 bytes long; the limit is 16384 bytes"):
        parse_filter('pod:"' + "a" * (MAX_FILTER_BYTES - frame + 1) + '"')
    # "é" is two bytes: 8192 of them are 16 KiB of text but only 8192 characters
    with pytest.raises(SpecError, match="bytes long"):
        parse_filter('pod:"' + "é" * (MAX_FILTER_BYTES // 2) + '"')


def test_nesting_limit() -> None:
    deepest = "(" * MAX_DEPTH + 'pod:"a"' + ")" * MAX_DEPTH
    assert parse_filter(deepest) == pod("a")
    with pytest.raises(SpecError, match="nested deeper than 32"):
        parse_filter("(" + deepest + ")")
    with pytest.raises(SpecError, match="nested deeper than 32"):
        parse_filter("(" * 5000)


def test_long_flat_chains_are_fine() -> None:
    text = "+".join(['pod:"a"'] * 1500)
    parsed = parse_filter(text)
    assert isinstance(parsed, AllOf)
    assert len(parsed.children) == 1500


# -- matches ------------------------------------------------------------------------------------

ROW: dict[str, object] = {
    "cluster": "c1",
    "node": None,
    "namespace": "kube-system",
    "controller": "coredns",
    "controller_kind": "Deployment",
    "pod": "coredns-7d8",
    "labels": {"app_kubernetes_io_name": "dns", "team": ""},
}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('namespace:"kube-system"', True),
        ('namespace:"default","kube-system"', True),
        ('namespace!:"default","kube-system"', False),
        ('namespace~:"system"', True),
        ('namespace!~:"system"', False),
        ('pod<~:"coredns-"', True),
        ('pod!<~:"coredns-"', False),
        ('pod~>:"7d8"', True),
        ('pod!~>:"7d8","x"', False),
        ('node:""', True),
        ('project:""', True),
        ('project!:""', False),
        ('label[app.kubernetes.io/name]:"dns"', True),
        ('label[app_kubernetes_io_name]:"dns"', True),
        ('label[team]:""', True),
        ('label[missing]:""', True),
        ('label[missing]!:""', False),
        ('namespace:"KUBE-SYSTEM"', False),
        ('namespace~:".*"', False),
        ('namespace~:""', True),
        ('cluster:"c2"+namespace:"kube-system"', False),
        ('cluster:"c2"|namespace:"kube-system"', True),
        ('controller:"coredns"+controllerKind:"Deployment"', True),
        # `__unallocated__` (with `:` / `!:`) is a missing or empty value, like the aggregate row
        ('node:"__unallocated__"', True),
        ('node!:"__unallocated__"', False),
        ('project:"__unallocated__"', True),
        ('namespace:"__unallocated__"', False),
        ('namespace!:"__unallocated__"', True),
        ('label[team]:"__unallocated__"', True),
        ('label[missing]:"__unallocated__"', True),
        ('label[missing]!:"__unallocated__"', False),
        ('label[app.kubernetes.io/name]:"__unallocated__"', False),
        ('label[app.kubernetes.io/name]:"x","__unallocated__"', False),
        ('label[app.kubernetes.io/name]:"dns","__unallocated__"', True),
        ('label[app.kubernetes.io/name]!:"x","__unallocated__"', True),
        ('controller:"x","__unallocated__"', False),
        ('controllerKind!:"__unallocated__"+node:"__unallocated__"', True),
        ('pod~:"unallocated"', False),
    ],
)
def test_matches(text: str, expected: bool) -> None:
    parsed = parse_filter(text)
    assert parsed is not None
    assert matches(parsed, ROW) is expected


def test_matches_empty_nodes_and_missing_keys() -> None:
    assert matches(AllOf(()), {}) is True
    assert matches(AnyOf(()), {}) is False
    assert matches(ns(""), {}) is True
    assert matches(label("app", ""), {"labels": None}) is True
    assert matches(Condition(Field.POD, Op.EQ, ()), ROW) is False
    assert matches(Condition(Field.POD, Op.NE, ()), ROW) is True
    # `__unallocated__` also matches its literal text (aggregation shows both under that name);
    # in a substring operator (built in code: the grammar refuses it) it is literal text only.
    literal = {"labels": {"app": "__unallocated__"}}
    assert matches(label("app", "__unallocated__"), literal) is True
    assert matches(label("app", "__unallocated__"), {}) is True
    assert matches(label("app", ""), literal) is False
    assert matches(label("app", "__unallocated__", op=Op.CONTAINS), {}) is False
    assert matches(label("app", "__unallocated__", op=Op.CONTAINS), literal) is True


# -- properties ---------------------------------------------------------------------------------


@settings(max_examples=500)
@given(st.text())
def test_any_text_parses_or_raises_spec_error(text: str) -> None:
    with contextlib.suppress(SpecError):
        parse_filter(text)


TOKENS = st.sampled_from(
    ["namespace", "pod", "label[", "label[a.b/c]", "]", ":", "!:", "~:", "!~:", "<~:", "!<~:", "~>:",
     "!~>:", '"', '"x"', "\\", "\\\"", ",", "+", "|", "(", ")", " ", "é", "controller", "x"]
)  # fmt: skip


@settings(max_examples=1000, deadline=None)  # a stall of the shared CI machine is not a failure
@given(st.lists(TOKENS, max_size=30).map("".join))
def test_token_soup_parses_or_raises_spec_error(text: str) -> None:
    with contextlib.suppress(SpecError):
        parse_filter(text)


VALUES = st.text(alphabet=st.sampled_from('ab"\\ |+(),:é'), max_size=5)
CONDITIONS = st.one_of(
    st.builds(
        Condition,
        st.sampled_from([f for f in Field if f is not Field.LABEL]),
        st.sampled_from(Op),
        st.lists(VALUES, min_size=1, max_size=3).map(tuple),
    ),
    st.builds(
        lambda op, values, key: Condition(Field.LABEL, op, values, key),
        st.sampled_from(Op),
        st.lists(VALUES, min_size=1, max_size=3).map(tuple),
        st.text(alphabet=st.characters(blacklist_characters="]"), min_size=1, max_size=8),
    ),
)
FILTERS = st.recursive(
    CONDITIONS,
    lambda inner: st.one_of(
        st.lists(inner, min_size=2, max_size=3).map(lambda c: AllOf(tuple(c))),
        st.lists(inner, min_size=2, max_size=3).map(lambda c: AnyOf(tuple(c))),
    ),
    max_leaves=12,
)


def render(node: Filter) -> str:
    """Text that parses back to `node`: every compound child in parentheses."""
    if isinstance(node, Condition):
        name = f"label[{node.label_key}]" if node.field is Field.LABEL else node.field.value
        quoted = ['"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"' for v in node.values]
        return f"{name}{node.op.value}{','.join(quoted)}"
    symbol = "+" if isinstance(node, AllOf) else "|"
    return symbol.join(render(c) if isinstance(c, Condition) else f"({render(c)})" for c in node.children)


@settings(max_examples=500)
@given(FILTERS)
def test_rendered_filters_round_trip(node: Filter) -> None:
    assert parse_filter(render(node)) == node


def test_a_space_between_conditions_is_and() -> None:
    """ACK's curl examples send `+` raw; form decoding turns it into a space."""
    plus = parse_filter('namespace:"kube-system"+controllerKind:"DaemonSet"+label[app]:"terway-eniip"')
    space = parse_filter('namespace:"kube-system" controllerKind:"DaemonSet" label[app]:"terway-eniip"')
    assert space == plus
    assert parse_filter('namespace:"a b" pod:"c"') == parse_filter('namespace:"a b"+pod:"c"')
