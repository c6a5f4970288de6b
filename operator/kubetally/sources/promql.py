"""PromQL text built from values we do not control, so that a value can never change a query.

Label values reach PromQL from users (filters, namespaces, projects, node price selectors) and
from the cluster (pod and label names). DESIGN.md §3 and CORRECTNESS.md S3 require that no value can
break out of its string literal and that no PromQL parse error ever reaches the metrics store. Every
selector kubetally sends is therefore rendered here, never by string formatting at the call site:

- `escape_label_value` escapes a value for a double-quoted PromQL string literal;
- `Matcher` and `selector` render `metric{name op "value", ...}` with validated label names;
- `regex_literal` turns literal values into an anchored-exact alternation (`a|b\\.c`) with every
  RE2 metacharacter escaped, for `=~` / `!~` matchers over many values.

The escaping follows the PromQL lexer (Go string-literal rules, as Prometheus, Thanos, Mimir and
VictoriaMetrics all use): backslash and double quote are escaped, `\\n`, `\\r`, `\\t` use their
short forms, other ASCII control characters (and DEL) become `\\xNN`, and U+FFFD becomes `\\uFFFD`
because the Prometheus lexer reads a literal U+FFFD as an invalid UTF-8 rune and rejects the query.
Every other character, including all of Unicode, is kept as is. Lone surrogates cannot be sent as
UTF-8 at all and raise `ValueError`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final, Literal

MatchOp = Literal["=", "!=", "=~", "!~"]

MATCH_OPS: Final[frozenset[str]] = frozenset({"=", "!=", "=~", "!~"})

_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")

_SHORT_ESCAPES: Final[dict[str, str]] = {
    "\\": "\\\\",
    '"': '\\"',
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}

# RE2 metacharacters, as Go's regexp.QuoteMeta escapes them.
_RE2_META: Final[frozenset[str]] = frozenset("\\.+*?()|[]{}^$")


def _escape_char(char: str) -> str:
    short = _SHORT_ESCAPES.get(char)
    if short is not None:
        return short
    code = ord(char)
    if code < 0x20 or code == 0x7F:
        return f"\\x{code:02x}"
    if code == 0xFFFD:
        return "\\uFFFD"
    if 0xD800 <= code <= 0xDFFF:
        raise ValueError(f"label value holds a lone surrogate U+{code:04X}, which is not valid UTF-8")
    return char


def escape_label_value(value: str) -> str:
    """Return `value` escaped for the inside of a double-quoted PromQL string literal.

    `escape_label_value('a"b\\\\c')` is `a\\"b\\\\\\\\c`; the result never holds an unescaped `"`, a
    newline, a control character or U+FFFD, so `"` + result + `"` is one complete literal whose
    value is exactly `value`.
    """
    if value.isascii() and value.isprintable() and "\\" not in value and '"' not in value:
        return value  # the common case: nothing to escape
    return "".join(_escape_char(char) for char in value)


def quote(value: str) -> str:
    """Return `value` as a complete double-quoted PromQL string literal."""
    return f'"{escape_label_value(value)}"'


def validate_label_name(name: str) -> str:
    """Return `name` if it is a legacy Prometheus label name (`[a-zA-Z_][a-zA-Z0-9_]*`), else raise ValueError.

    Label names are never taken from users as is: user keys go through
    `kubetally.domain.labels.sanitize_label_key` first, so a name failing here is a bug of ours.
    """
    if not _LABEL_NAME.fullmatch(name):
        raise ValueError(f"invalid Prometheus label name {name[:80]!r}: expected [a-zA-Z_][a-zA-Z0-9_]*")
    return name


def validate_metric_name(name: str) -> str:
    """Return `name` if it is a Prometheus metric name (`[a-zA-Z_:][a-zA-Z0-9_:]*`), else raise ValueError."""
    if not _METRIC_NAME.fullmatch(name):
        raise ValueError(f"invalid Prometheus metric name {name[:80]!r}: expected [a-zA-Z_:][a-zA-Z0-9_:]*")
    return name


@dataclass(frozen=True, slots=True)
class Matcher:
    """One label matcher, `name op "value"`; the name and operator are validated on construction.

    For `=~` and `!~` the value is an RE2 regex (anchored by Prometheus at both ends); build it with
    `regex_literal` when it must match literal values exactly.
    """

    name: str
    op: MatchOp
    value: str

    def __post_init__(self) -> None:
        validate_label_name(self.name)
        if self.op not in MATCH_OPS:
            raise ValueError(f"invalid matcher operator {self.op!r}: expected one of =, !=, =~, !~")
        if not isinstance(self.value, str):
            raise TypeError(f"matcher value must be a str, not {type(self.value).__name__}")

    def render(self) -> str:
        """Return the matcher as PromQL text: `name op "escaped value"`."""
        return f"{self.name}{self.op}{quote(self.value)}"


def selector(metric: str, matchers: Sequence[Matcher]) -> str:
    """Render the series selector `metric{m1,m2,...}` (`metric` alone without matchers).

    `metric` may be `""` for a selector of matchers only (`{a="x"}`), which then needs at least one
    matcher. Matchers are rendered in the order given.
    """
    if metric:
        validate_metric_name(metric)
    elif not matchers:
        raise ValueError("a selector needs a metric name or at least one matcher")
    for matcher in matchers:
        if not isinstance(matcher, Matcher):
            raise TypeError(f"selector matchers must be Matcher, not {type(matcher).__name__}")
    if not matchers:
        return metric
    return metric + "{" + ",".join(matcher.render() for matcher in matchers) + "}"


def regex_escape(value: str) -> str:
    """Return `value` with every RE2 metacharacter escaped, so that the regex matches `value` literally."""
    return "".join("\\" + char if char in _RE2_META else char for char in value)


def regex_literal(values: Iterable[str]) -> str:
    """Return an RE2 regex that matches exactly the given literal values (Prometheus anchors it).

    Duplicates are dropped, first occurrence kept, so that the text is deterministic. An empty
    collection raises ValueError: an empty regex would match the *absence* of the label instead of
    nothing. The result is raw regex text; `Matcher("ns", "=~", regex_literal([...]))` string-escapes
    it when rendered.
    """
    unique = list(dict.fromkeys(values))
    if not unique:
        raise ValueError("regex_literal needs at least one value (an empty regex matches a missing label)")
    for value in unique:
        if not isinstance(value, str):
            raise TypeError(f"regex_literal values must be str, not {type(value).__name__}")
    return "|".join(regex_escape(value) for value in unique)
