"""The `aggregate` parameter: which keys cost rows are grouped by.

Both the HTTP API (`aggregate=namespace,label:app`, as in ACK's `GET /v2/cost` and OpenCost) and the
CostReport spec (`aggregate: [namespace, "label:app"]`) name the grouping keys; this module turns
either form into a tuple of `AggregateKey`s so that the engine never sees user text.

Grammar::

    aggregate := key ( "," key )*            the string form; a list holds one key per item
    key       := "pod" | "namespace" | "controller" | "controllerKind" | "node" | "cluster"
               | "project" | "label:" label_key
    label_key := one or more characters      (kept as written, e.g. `app.kubernetes.io/name`)

Keys are case-sensitive; whitespace around a key (and around a label key) is ignored. `None`, `""`,
whitespace only or an empty list mean the ACK default: one row per pod (`(AggregateKey(POD),)`).
Empty entries (`namespace,,pod`), unknown keys, `label` without a key and duplicates are rejected with
`SpecError`. Two label keys are duplicates when they sanitize to the same kube-state-metrics key
(`label:app.name` and `label:app_name`), because they would group by the same column.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from kubetally.domain.errors import SpecError
from kubetally.domain.labels import sanitize_label_key

__all__ = ["AggregateKey", "Dimension", "parse_aggregate"]

_LABEL_PREFIX = "label:"
_ACCEPTED = "pod, namespace, controller, controllerKind, node, cluster, project, label:<key>"
_EXAMPLE = "aggregate=namespace,label:app"


class Dimension(StrEnum):
    """A key cost rows can be grouped by."""

    POD = "pod"
    NAMESPACE = "namespace"
    CONTROLLER = "controller"
    CONTROLLER_KIND = "controllerKind"
    NODE = "node"
    CLUSTER = "cluster"
    PROJECT = "project"
    LABEL = "label"


@dataclass(frozen=True)
class AggregateKey:
    """One grouping key; `label_key` is the user's label key as written, only for `Dimension.LABEL`."""

    dimension: Dimension
    label_key: str | None = None

    def display(self) -> str:
        """The key as users write it: `namespace`, `label:app`."""
        if self.dimension is Dimension.LABEL:
            return f"{_LABEL_PREFIX}{self.label_key}"
        return self.dimension.value

    def _identity(self) -> tuple[Dimension, str | None]:
        """What makes two keys group by the same column."""
        if self.dimension is Dimension.LABEL and self.label_key is not None:
            return (self.dimension, sanitize_label_key(self.label_key))
        return (self.dimension, None)


_PLAIN: dict[str, Dimension] = {d.value: d for d in Dimension if d is not Dimension.LABEL}
_DEFAULT = (AggregateKey(Dimension.POD),)


def _fail(field: str, message: str) -> SpecError:
    return SpecError(field, f"{message}; accepted: {_ACCEPTED}; example: {_EXAMPLE}")


def _quote(text: str) -> str:
    if len(text) > 40:
        text = text[:40] + "…"
    return json.dumps(text, ensure_ascii=False)


def _parse_key(item: str, where: str, field: str) -> AggregateKey:
    """One key; `where` says where it stands (`entry 2`) for messages."""
    text = item.strip()
    if not text:
        raise _fail(field, f"{where} is empty")
    if text in _PLAIN:
        return AggregateKey(_PLAIN[text])
    if text.startswith(_LABEL_PREFIX):
        key = text[len(_LABEL_PREFIX) :].strip()
        if not key:
            raise _fail(field, f"{where} {_quote(text)} needs a label key, e.g. label:app")
        return AggregateKey(Dimension.LABEL, key)
    if text == "label":
        raise _fail(field, f'{where} "label" needs a label key, e.g. label:app')
    raise _fail(field, f"unknown aggregate {_quote(text)} at {where}")


def parse_aggregate(
    text: str | Sequence[str] | None, *, field: str = "aggregate"
) -> tuple[AggregateKey, ...]:
    """Parse the `aggregate` parameter (comma-separated string) or spec field (list of strings).

    Returns the keys in the order given; `None`, `""`, whitespace or `[]` give `(AggregateKey(POD),)`.
    Raises `SpecError` naming the bad entry (1-based) for anything else the grammar rejects.
    """
    if text is None:
        return _DEFAULT
    items: Sequence[object]
    if isinstance(text, str):
        if not text.strip():
            return _DEFAULT
        items = text.split(",")
    else:
        items = list(text)
        if not items:
            return _DEFAULT
    keys: list[AggregateKey] = []
    seen: dict[tuple[Dimension, str | None], AggregateKey] = {}
    for index, item in enumerate(items, start=1):
        where = f"entry {index}"
        if not isinstance(item, str):
            raise _fail(field, f"{where} is {type(item).__name__} {_quote(str(item))}, not a string")
        key = _parse_key(item, where, field)
        identity = key._identity()
        if identity in seen:
            first = seen[identity].display()
            same = "" if first == key.display() else f" (same label column as {_quote(first)})"
            raise _fail(field, f"duplicate aggregate {_quote(key.display())} at {where}{same}")
        seen[identity] = key
        keys.append(key)
    return tuple(keys)
