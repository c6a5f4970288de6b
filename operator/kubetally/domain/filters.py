"""The `filter` parameter: which workloads a cost query looks at.

kubetally answers Alibaba ACK's `GET /v2/cost`, whose `filter` parameter joins conditions with `+`
(AND). Users of OpenCost's filter language v2 expect `|` (OR), parentheses and more operators, so this
module accepts the union of both. It turns the text into a small, frozen AST (`Condition`, `AllOf`,
`AnyOf`) that the engine compiles to SQL (`kubetally.engine.filtering`), and evaluates that AST in
plain Python (`matches`) so that tests have an independent reference.

Grammar (whitespace is allowed between tokens, never inside an operator or `label[`)::

    filter     := or_expr
    or_expr    := and_expr ( "|" and_expr )*          OR, binds loosest
    and_expr   := primary ( ("+" | ws) primary )*     AND, binds tighter than "|"
    primary    := condition | "(" or_expr ")"         at most 32 nested parentheses
    condition  := field operator values
    field      := "cluster" | "node" | "namespace" | "controllerName" | "controller"
                | "controllerKind" | "pod" | "project" | "label[" key "]"
    key        := one or more characters other than "]"   (kept as written: `app.kubernetes.io/name`)
    operator   := ":"  equals          | "!:"   not equals
                | "~:" contains        | "!~:"  not contains
                | "<~:" starts with    | "!<~:" not starts with
                | "~>:" ends with      | "!~>:" not ends with
    values     := string ( "," string )*
    string     := '"' ( '\\"' | '\\\\' | any other character )* '"'

Field names are case-sensitive; `controller` is an alias of `controllerName`. Inside a string only
`\\"` and `\\\\` are escapes; every other character (a lone backslash, unicode, `{ } | ' $ .*`) is
literal, and `""` is a valid value. A positive operator holds when the field matches ANY of the values;
a negated one holds when it matches NONE of them. A missing field or label counts as `""`, so
`label[team]:""` selects workloads without a `team` label (or with an empty one). Matching is exact
and case-sensitive: `~:` is a substring test, not a pattern.

`__unallocated__` (OpenCost's word for "missing"). `aggregate=X` prints the workloads whose X is
missing or empty as one row named `__unallocated__` (`kubetally.engine.grouping`), and users filter
on what they see, so with `:` and `!:` the value `__unallocated__` matches a field that is missing or
empty, besides the literal text `__unallocated__` (which aggregation shows under the same name;
Kubernetes names and label values cannot hold it). Hence `X:"__unallocated__"` selects exactly the
workloads of that row, and `X!:"__unallocated__"` exactly the others, for every field:

    field                        `X:"__unallocated__"` selects pods...
    label[k]                     without label k, or with k = ""
    controllerName/controller    without a controller (bare pods, static pods)
    controllerKind               without a controller kind
    project                      whose namespace has no project label
    node                         with no node recorded (in practice none: only running pods cost)
    namespace, pod, cluster      with an empty one: Kubernetes always sets them, so in practice none

It is one value among the others: `label[team]:"a","__unallocated__"` is "team is a, or no team";
`label[team]!:"a","__unallocated__"` is "team is set and is not a". With the substring operators
(`~:` `<~:` `~>:` and their negations) a missing field is `""` and a value is plain text; the grammar
refuses `__unallocated__` there with a `SpecError` that points to `:` / `!:`, because "contains
missing" has no meaning (OpenCost turns it into `""`, so `~:"__unallocated__"` selects everything).

AST shape: `a+b+c` gives `AllOf((a, b, c))`, `a|b` gives `AnyOf((a, b))`, a single condition is
returned bare, and parentheses add no node of their own: `(a+b)+c` is `AllOf((AllOf((a, b)), c))`.

Input is rejected with `SpecError` (and never any other exception) when it is longer than 16 KiB in
UTF-8, nests parentheses deeper than 32 levels, or breaks the grammar; the message names the
0-based character position, the bad part, and shows an accepted example.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from enum import StrEnum

from kubetally.domain.errors import SpecError
from kubetally.domain.vocabulary import UNALLOCATED_KEY

#: Longest accepted filter, in UTF-8 bytes.
MAX_FILTER_BYTES = 16 * 1024
#: Deepest accepted nesting of parentheses.
MAX_DEPTH = 32


class Field(StrEnum):
    """What a condition looks at."""

    CLUSTER = "cluster"
    NODE = "node"
    NAMESPACE = "namespace"
    CONTROLLER_NAME = "controllerName"
    CONTROLLER_KIND = "controllerKind"
    POD = "pod"
    PROJECT = "project"
    LABEL = "label"


class Op(StrEnum):
    """How a condition compares the field with its values."""

    EQ = ":"
    NE = "!:"
    CONTAINS = "~:"
    NOT_CONTAINS = "!~:"
    PREFIX = "<~:"
    NOT_PREFIX = "!<~:"
    SUFFIX = "~>:"
    NOT_SUFFIX = "!~>:"

    @property
    def negated(self) -> bool:
        """True for the operators that hold when NONE of the values match."""
        return self.value.startswith("!")


@dataclass(frozen=True)
class Condition:
    """`field op "v1","v2"`; `label_key` is the user's key as written, only for `Field.LABEL`."""

    field: Field
    op: Op
    values: tuple[str, ...]
    label_key: str | None = None


@dataclass(frozen=True)
class AllOf:
    """Holds when every child holds (`+`); holds when there are no children."""

    children: tuple[Filter, ...]


@dataclass(frozen=True)
class AnyOf:
    """Holds when at least one child holds (`|`); never holds when there are no children."""

    children: tuple[Filter, ...]


Filter = Condition | AllOf | AnyOf

#: Field names as users write them (`controller` is an alias).
_FIELDS: dict[str, Field] = {
    "cluster": Field.CLUSTER,
    "node": Field.NODE,
    "namespace": Field.NAMESPACE,
    "controllerName": Field.CONTROLLER_NAME,
    "controller": Field.CONTROLLER_NAME,
    "controllerKind": Field.CONTROLLER_KIND,
    "pod": Field.POD,
    "project": Field.PROJECT,
}
#: Operators, longest first so that `!~:` is not read as `!` + `~:`.
_OPS: tuple[Op, ...] = tuple(sorted(Op, key=lambda op: -len(op.value)))
_EXAMPLE = 'namespace:"default"+label[app]:"nginx"'
_ACCEPTED_FIELDS = "cluster, node, namespace, controllerName, controllerKind, pod, project, label[<key>]"
_ACCEPTED_OPS = " ".join(op.value for op in Op)
_WORD_CHARS = frozenset("_-./")
_SNIPPET = 24


def _quote(text: str) -> str:
    """`text` in double quotes with JSON escapes, cut to a readable length."""
    if len(text) > _SNIPPET:
        text = text[:_SNIPPET] + "…"
    return json.dumps(text, ensure_ascii=False)


class _Parser:
    """Recursive descent over the grammar of the module docstring; `pos` is a character index."""

    def __init__(self, text: str, field: str) -> None:
        self.text = text
        self.field = field
        self.pos = 0

    def fail(self, message: str) -> SpecError:
        return SpecError(self.field, f"{message}; example: {_EXAMPLE}")

    def at_end(self) -> bool:
        return self.pos >= len(self.text)

    def peek(self) -> str:
        return self.text[self.pos] if self.pos < len(self.text) else ""

    def skip_ws(self) -> None:
        while self.pos < len(self.text) and self.text[self.pos].isspace():
            self.pos += 1

    def found(self) -> str:
        """What stands at `pos`, for messages."""
        return "the end of the filter" if self.at_end() else _quote(self.text[self.pos :])

    def word(self) -> str:
        """The run of name-like characters at `pos` (not consumed)."""
        end = self.pos
        while end < len(self.text) and (self.text[end].isalnum() or self.text[end] in _WORD_CHARS):
            end += 1
        return self.text[self.pos : end]

    def parse(self) -> Filter:
        node = self.or_expr(0)
        self.skip_ws()
        if not self.at_end():
            if self.peek() == ")":
                raise self.fail(f"unbalanced parentheses: ')' at position {self.pos} has no matching '('")
            raise self.fail(
                f"expected '+', '|' or the end of the filter at position {self.pos}, found {self.found()}"
            )
        return node

    def or_expr(self, depth: int) -> Filter:
        children = [self.and_expr(depth)]
        while True:
            self.skip_ws()
            if self.peek() != "|":
                break
            self.operand_follows("|")
            children.append(self.and_expr(depth))
        return children[0] if len(children) == 1 else AnyOf(tuple(children))

    def and_expr(self, depth: int) -> Filter:
        children = [self.primary(depth)]
        while True:
            self.skip_ws()
            spaced = self.pos > 0 and self.text[self.pos - 1].isspace()
            if self.peek() == "+":
                self.operand_follows("+")
            elif not spaced or self.at_end() or not (self.peek().isalpha() or self.peek() == "("):
                break
            # else: whitespace between two conditions is an AND. ACK's documented curl examples send
            # `+` raw in the query string, and form decoding turns it into a space.
            children.append(self.primary(depth))
        return children[0] if len(children) == 1 else AllOf(tuple(children))

    def operand_follows(self, symbol: str) -> None:
        """Consume `symbol` and check that a condition or `(` comes after it."""
        at = self.pos
        self.pos += 1
        self.skip_ws()
        if self.at_end():
            raise self.fail(f"trailing '{symbol}' at position {at}: a condition must follow it")
        if self.peek() in "+|)":
            raise self.fail(
                f"'{symbol}' at position {at} is followed by '{self.peek()}' at position {self.pos}, "
                "not by a condition"
            )

    def primary(self, depth: int) -> Filter:
        self.skip_ws()
        char = self.peek()
        if char == "(":
            return self.group(depth)
        if char == ")":
            raise self.fail(f"unbalanced parentheses: ')' at position {self.pos} has no matching '('")
        if char in ("+", "|"):
            raise self.fail(f"'{char}' at position {self.pos} has no condition before it")
        return self.condition()

    def group(self, depth: int) -> Filter:
        opened = self.pos
        if depth >= MAX_DEPTH:
            raise self.fail(f"parentheses nested deeper than {MAX_DEPTH} levels at position {opened}")
        self.pos += 1
        self.skip_ws()
        if self.at_end():
            raise self.fail(f"unbalanced parentheses: '(' at position {opened} is never closed")
        if self.peek() == ")":
            raise self.fail(f"empty parentheses at position {opened}: put a condition inside")
        node = self.or_expr(depth + 1)
        self.skip_ws()
        if self.at_end():
            raise self.fail(f"unbalanced parentheses: '(' at position {opened} is never closed")
        if self.peek() != ")":
            raise self.fail(f"expected '+', '|' or ')' at position {self.pos}, found {self.found()}")
        self.pos += 1
        return node

    def condition(self) -> Condition:
        start = self.pos
        name = self.word()
        if not name:
            raise self.fail(
                f"expected a field at position {start}, found {self.found()}; "
                f"accepted fields: {_ACCEPTED_FIELDS}"
            )
        self.pos += len(name)
        label_key: str | None = None
        if name == "label":
            field = Field.LABEL
            label_key = self.label_key(start)
        elif name in _FIELDS:
            field = _FIELDS[name]
        else:
            raise self.fail(
                f"unknown field {_quote(name)} at position {start}; accepted fields: {_ACCEPTED_FIELDS}"
            )
        self.skip_ws()
        op = self.operator(name if label_key is None else f"label[{label_key}]")
        self.skip_ws()
        located = self.values()
        values = tuple(value for _, value in located)
        if op not in (Op.EQ, Op.NE):
            for at, value in located:
                if value == UNALLOCATED_KEY:
                    shown = name if label_key is None else f"label[{label_key}]"
                    equal = Op.NE if op.negated else Op.EQ
                    raise self.fail(
                        f"{_quote(value)} at position {at} stands for a missing or empty value and is accepted "
                        f"only with ':' or '!:', not with '{op.value}' (write {shown}{equal.value}{_quote(value)})"
                    )
        return Condition(field, op, values, label_key)

    def label_key(self, start: int) -> str:
        if self.peek() != "[":
            raise self.fail(f"field 'label' at position {start} needs a key in brackets, e.g. label[app]")
        close = self.text.find("]", self.pos + 1)
        if close < 0:
            raise self.fail(f"unterminated label key at position {start}: 'label[' has no closing ']'")
        key = self.text[self.pos + 1 : close]
        if not key:
            raise self.fail(f"empty label key at position {start}: 'label[]' needs a key, e.g. label[app]")
        self.pos = close + 1
        return key

    def operator(self, shown: str) -> Op:
        for op in _OPS:
            if self.text.startswith(op.value, self.pos):
                self.pos += len(op.value)
                return op
        raise self.fail(
            f"missing operator after field {_quote(shown)} at position {self.pos}, found {self.found()}; "
            f"accepted operators: {_ACCEPTED_OPS}"
        )

    def values(self) -> list[tuple[int, str]]:
        """The value list, each value with the position of its opening quote (for messages)."""
        if self.at_end() or self.peek() in "+|),":
            raise self.fail(f"empty value list at position {self.pos}: give at least one double-quoted value")
        values = [(self.pos, self.string())]
        while True:
            self.skip_ws()
            if self.peek() == '"':
                raise self.fail(f"missing ',' between values at position {self.pos}")
            if self.peek() != ",":
                return values
            comma = self.pos
            self.pos += 1
            self.skip_ws()
            if self.at_end() or self.peek() in "+|),":
                raise self.fail(f"trailing ',' at position {comma}: a double-quoted value must follow it")
            values.append((self.pos, self.string()))

    def string(self) -> str:
        start = self.pos
        if self.peek() != '"':
            end = start
            while end < len(self.text) and not self.text[end].isspace() and self.text[end] not in "+|(),":
                end += 1
            raise self.fail(
                f"value not quoted at position {start}: {_quote(self.text[start:end])}; "
                'values are double-quoted strings such as "default"'
            )
        text = self.text
        out: list[str] = []
        i = start + 1
        while i < len(text):
            char = text[i]
            if char == '"':
                self.pos = i + 1
                return "".join(out)
            if char == "\\" and i + 1 < len(text) and text[i + 1] in '"\\':
                out.append(text[i + 1])
                i += 2
                continue
            out.append(char)
            i += 1
        raise self.fail(f"unterminated quote at position {start}: {_quote(text[start:])} has no closing '\"'")


def parse_filter(text: str | None, *, field: str = "filter") -> Filter | None:
    """Parse a `filter` parameter; `None`, `""` or only whitespace mean "no filter" (`None`).

    `field` names the parameter in errors (`filter`, `spec.filter`...). Raises `SpecError`, and only
    `SpecError`, on any input the grammar does not accept.
    """
    if text is None:
        return None
    size = len(text.encode("utf-8", "surrogatepass"))
    if size > MAX_FILTER_BYTES:
        raise SpecError(
            field,
            f"filter is {size} bytes long; the limit is {MAX_FILTER_BYTES} bytes (16 KiB); "
            f"example: {_EXAMPLE}",
        )
    if not text.strip():
        return None
    return _Parser(text, field).parse()
