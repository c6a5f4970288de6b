"""Random `filter` expressions: built as a small tree, written as ACK/OpenCost text, evaluated here.

Why: the oracle must not lean on the parser or matcher under test, so the campaign builds each filter
as a tree, renders it (`render`) and evaluates the tree itself (`holds`) on a pod's attributes.

Semantics (README "Query grammar", issue 12 bug 3): a missing or None attribute counts as "";
`:`/`!:` compare exactly, `~:` contains, `<~:` starts with, `~>:` ends with, a `!` negates (holds when
no value matches); the value `__unallocated__` with `:`/`!:` means "missing or empty" (and also the
literal text). `+` is AND, `|` is OR (AND binds tighter), parentheses group. Inside quotes only `\\"`
and `\\\\` are escapes.
"""

from __future__ import annotations

import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

UNALLOCATED = "__unallocated__"
#: Filter field → the pod attribute it reads.
FIELDS = {"cluster": "cluster", "node": "node", "namespace": "namespace", "controllerName": "controller",
          "controller": "controller", "controllerKind": "controller_kind", "pod": "pod", "project": "project"}
OPERATORS = (":", "!:", "~:", "!~:", "<~:", "!<~:", "~>:", "!~>:")


@dataclass(frozen=True)
class Cond:
    field: str  # a key of FIELDS, or "label[<key>]"
    op: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class Combo:
    kind: str  # "+" or "|"
    children: tuple[Node, ...]


Node = Cond | Combo


def _quote(value: str) -> str:
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def render(node: Node, rng: random.Random) -> str:
    """The text of `node`; an OR inside an AND gets parentheses; joins vary in spacing."""
    if isinstance(node, Cond):
        return node.field + node.op + ",".join(_quote(value) for value in node.values)
    parts = []
    for child in node.children:
        text = render(child, rng)
        if isinstance(child, Combo) and (node.kind == "+" or rng.random() < 0.3):
            text = f"({text})"
        parts.append(text)
    joiner = node.kind if node.kind == "|" else rng.choice(["+", "+", " + ", " "])
    if node.kind == "|" and rng.random() < 0.3:
        joiner = " | "
    return joiner.join(parts)


def _attribute(cond: Cond, pod: Mapping[str, object]) -> str:
    if cond.field.startswith("label["):
        labels = pod.get("labels")
        key = re.sub(r"[^a-zA-Z0-9_]", "_", cond.field[len("label["):-1])  # kube-state-metrics' spelling
        value = labels.get(key) if isinstance(labels, Mapping) else None
    else:
        value = pod.get(FIELDS[cond.field])
    return value if isinstance(value, str) else ""


def _one(op: str, actual: str, wanted: str) -> bool:
    bare = op.lstrip("!")
    if bare == ":":
        if wanted == UNALLOCATED:
            return actual in ("", UNALLOCATED)
        return actual == wanted
    if bare == "~:":
        return wanted in actual
    if bare == "<~:":
        return actual.startswith(wanted)
    return actual.endswith(wanted)


def holds(node: Node, pod: Mapping[str, object]) -> bool:
    """Whether a pod with these attributes (the reference's filter row) is kept."""
    if isinstance(node, Combo):
        results = (holds(child, pod) for child in node.children)
        return all(results) if node.kind == "+" else any(results)
    actual = _attribute(node, pod)
    hit = any(_one(node.op, actual, wanted) for wanted in node.values)
    return not hit if node.op.startswith("!") else hit


@dataclass(frozen=True)
class Vocabulary:
    """Values seen in the generated cluster, so that filters select something (or, sometimes, nothing)."""

    values: Mapping[str, Sequence[str]]  # field → values
    labels: Mapping[str, Sequence[str]]  # label key as written → values


def random_condition(rng: random.Random, vocabulary: Vocabulary) -> Cond:
    if rng.random() < 0.4:
        key = rng.choice(sorted(vocabulary.labels))
        field, pool = f"label[{key}]", list(vocabulary.labels[key])
    else:
        field = rng.choice(sorted(FIELDS))
        pool = list(vocabulary.values[FIELDS[field]])
    roll = rng.random()
    if roll < 0.2:  # the __unallocated__ row a user filters on, or its complement
        return Cond(field, rng.choice([":", "!:"]), (UNALLOCATED, *rng.sample(pool, min(len(pool), rng.randint(0, 1)))))
    if roll < 0.65 or not pool:
        values = tuple(rng.sample(pool, min(len(pool), rng.randint(1, 3)))) or ("nothing-here",)
        return Cond(field, rng.choice([":", ":", "!:"]), values)
    value = rng.choice(pool)
    op = rng.choice(OPERATORS[2:])
    cut = rng.randint(1, max(1, len(value) - 1))
    piece = value[:cut] if op.lstrip("!") == "<~:" else value[-cut:] if op.lstrip("!") == "~>:" else value[cut // 2:cut]
    return Cond(field, op, (piece or value,))


def random_filter(rng: random.Random, vocabulary: Vocabulary) -> Node:
    """One condition (60%), an AND of 2-3, an OR of 2, or an AND holding an OR."""
    roll = rng.random()
    if roll < 0.6:
        return random_condition(rng, vocabulary)
    if roll < 0.8:
        return Combo("+", tuple(random_condition(rng, vocabulary) for _ in range(rng.randint(2, 3))))
    if roll < 0.92:
        return Combo("|", (random_condition(rng, vocabulary), random_condition(rng, vocabulary)))
    inner = Combo("|", (random_condition(rng, vocabulary), random_condition(rng, vocabulary)))
    return Combo("+", (inner, random_condition(rng, vocabulary)))
