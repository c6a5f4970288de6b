"""The `aggregate` parameter: strings and spec lists, defaults, duplicates and clear errors."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetally.domain.aggregation import AggregateKey, Dimension, parse_aggregate
from kubetally.domain.errors import SpecError

POD = AggregateKey(Dimension.POD)
ACCEPTED = "accepted: pod, namespace, controller, controllerKind, node, cluster, project, label:<key>"
EXAMPLE = "example: aggregate=namespace,label:app"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (None, (POD,)),
        ("", (POD,)),
        ("  ", (POD,)),
        ([], (POD,)),
        ((), (POD,)),
        ("pod", (POD,)),
        ("namespace", (AggregateKey(Dimension.NAMESPACE),)),
        ("controller", (AggregateKey(Dimension.CONTROLLER),)),
        ("controllerKind", (AggregateKey(Dimension.CONTROLLER_KIND),)),
        ("node", (AggregateKey(Dimension.NODE),)),
        ("cluster", (AggregateKey(Dimension.CLUSTER),)),
        ("project", (AggregateKey(Dimension.PROJECT),)),
        ("label:app", (AggregateKey(Dimension.LABEL, "app"),)),
        ("label:app.kubernetes.io/name", (AggregateKey(Dimension.LABEL, "app.kubernetes.io/name"),)),
        (
            "namespace,label:app",
            (AggregateKey(Dimension.NAMESPACE), AggregateKey(Dimension.LABEL, "app")),
        ),
        (
            " cluster , namespace ,label: team ",
            (
                AggregateKey(Dimension.CLUSTER),
                AggregateKey(Dimension.NAMESPACE),
                AggregateKey(Dimension.LABEL, "team"),
            ),
        ),
        (
            ["namespace", "label:app"],
            (AggregateKey(Dimension.NAMESPACE), AggregateKey(Dimension.LABEL, "app")),
        ),
        (("node", "pod"), (AggregateKey(Dimension.NODE), POD)),
        (
            ["label:app", "label:team"],
            (AggregateKey(Dimension.LABEL, "app"), AggregateKey(Dimension.LABEL, "team")),
        ),
    ],
)
def test_parses(text: str | Sequence[str] | None, expected: tuple[AggregateKey, ...]) -> None:
    assert parse_aggregate(text) == expected


def e(message: str) -> str:
    return f"aggregate: {message}; {ACCEPTED}; {EXAMPLE}"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("nmespace", e('unknown aggregate "nmespace" at entry 1')),
        ("namespace,Pod", e('unknown aggregate "Pod" at entry 2')),
        ("controllerName", e('unknown aggregate "controllerName" at entry 1')),
        ("namespace,,pod", e("entry 2 is empty")),
        ("namespace,", e("entry 2 is empty")),
        (["namespace", " "], e("entry 2 is empty")),
        (["namespace,pod"], e('unknown aggregate "namespace,pod" at entry 1')),
        ("label:", e('entry 1 "label:" needs a label key, e.g. label:app')),
        ("pod,label:  ", e('entry 2 "label:" needs a label key, e.g. label:app')),
        ("label", e('entry 1 "label" needs a label key, e.g. label:app')),
        ("namespace,namespace", e('duplicate aggregate "namespace" at entry 2')),
        ("label:app,pod,label:app", e('duplicate aggregate "label:app" at entry 3')),
        (
            "label:app.name,label:app_name",
            e('duplicate aggregate "label:app_name" at entry 2 (same label column as "label:app.name")'),
        ),
        ([3], e('entry 1 is int "3", not a string')),
    ],
)
def test_rejects(text: str | Sequence[str], message: str) -> None:
    with pytest.raises(SpecError) as caught:
        parse_aggregate(text)
    assert str(caught.value) == message
    assert caught.value.field == "aggregate"


def test_field_name_is_used_in_errors() -> None:
    with pytest.raises(SpecError) as caught:
        parse_aggregate(["bogus"], field="spec.aggregate")
    assert str(caught.value).startswith('spec.aggregate: unknown aggregate "bogus"')


def test_display() -> None:
    assert AggregateKey(Dimension.NAMESPACE).display() == "namespace"
    assert AggregateKey(Dimension.CONTROLLER_KIND).display() == "controllerKind"
    assert AggregateKey(Dimension.LABEL, "app").display() == "label:app"
    assert AggregateKey(Dimension.LABEL, "app.kubernetes.io/name").display() == "label:app.kubernetes.io/name"


def test_display_round_trips() -> None:
    keys = parse_aggregate("pod,namespace,controller,controllerKind,node,cluster,project,label:a.b/c")
    assert parse_aggregate(",".join(k.display() for k in keys)) == keys
    assert parse_aggregate([k.display() for k in keys]) == keys


@given(st.text())
def test_any_text_parses_or_raises_spec_error(text: str) -> None:
    try:
        keys = parse_aggregate(text)
    except SpecError:
        return
    assert keys
    assert len(set(keys)) == len(keys)
