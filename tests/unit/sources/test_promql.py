"""No value can change a PromQL query (DESIGN.md §3, CORRECTNESS.md S3).

Rendered selectors are read back by a small parser written here from the PromQL lexer's rules (Go
string literals; a raw newline or a literal U+FFFD ends the query with a parse error), independent of
`kubetally.sources.promql`: every value must come back exactly, in one literal, with nothing after it.
"""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubetally.sources.promql import (
    Matcher,
    escape_label_value,
    quote,
    regex_escape,
    regex_literal,
    selector,
)

_SIMPLE = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v", "\\": "\\", '"': '"', "'": "'"}
_HEX_DIGITS = {"x": 2, "u": 4, "U": 8}


def read_string(text: str, pos: int) -> tuple[str, int]:
    """Read the double-quoted literal at text[pos]; return its value and the index after it."""
    assert text[pos] == '"', f"expected a literal at {pos} in {text!r}"
    out: list[str] = []
    i = pos + 1
    while True:
        assert i < len(text), "unterminated string"
        char = text[i]
        assert char != "\n", "raw newline in a string literal"
        assert char != "\ufffd", "literal U+FFFD: the PromQL lexer reads it as an invalid UTF-8 rune"
        if char == '"':
            return "".join(out), i + 1
        if char != "\\":
            out.append(char)
            i += 1
            continue
        kind = text[i + 1]
        if kind in _SIMPLE:
            out.append(_SIMPLE[kind])
            i += 2
        elif kind in _HEX_DIGITS:
            digits = text[i + 2 : i + 2 + _HEX_DIGITS[kind]]
            assert re.fullmatch(f"[0-9a-fA-F]{{{_HEX_DIGITS[kind]}}}", digits), digits
            code = int(digits, 16)
            assert kind != "x" or code < 0x80, "\\x above 0x7f is a byte, not a character"
            assert not 0xD800 <= code < 0xE000, "surrogate escape"
            out.append(chr(code))
            i += 2 + len(digits)
        elif kind in "01234567":
            digits = text[i + 1 : i + 4]
            assert re.fullmatch(r"[0-7]{3}", digits), digits
            out.append(chr(int(digits, 8)))
            i += 4
        else:
            raise AssertionError(f"unknown escape \\{kind}")


def parse_selector(text: str) -> tuple[str, list[tuple[str, str, str]]]:
    """Parse `metric{name op "value", ...}` back into the metric and its matchers; all text must be used."""
    head = re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", text)
    metric = head.group(0) if head else ""
    pos = len(metric)
    if pos == len(text):
        return metric, []
    assert text[pos] == "{", text
    pos += 1
    matchers: list[tuple[str, str, str]] = []
    while text[pos] != "}":
        if matchers:
            assert text[pos] == ",", text
            pos += 1
        name_op = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)(=~|!~|!=|=)").match(text, pos)
        assert name_op, text[pos:]
        value, pos = read_string(text, name_op.end())
        matchers.append((name_op.group(1), name_op.group(2), value))
    assert pos == len(text) - 1, f"text after the selector: {text[pos + 1 :]!r}"
    return metric, matchers


label_names = st.from_regex(r"[a-zA-Z_][a-zA-Z0-9_]{0,20}", fullmatch=True)
ops = st.sampled_from(["=", "!=", "=~", "!~"])
nasty = st.sampled_from(
    ['"', "\\", "\n", "\r", "\t", "\x00", "\x7f", "\ufffd", "}", "{", ",", "|", ".*", "$", "`", "'"]
)
values = st.one_of(st.text(), st.lists(st.one_of(nasty, st.text(max_size=3))).map("".join))


@pytest.mark.parametrize(
    ("value", "escaped"),
    [
        ("plain-value_1.2", "plain-value_1.2"),
        ('a"b', 'a\\"b'),
        ("a\\b", "a\\\\b"),
        ("line\nbreak\r\ttab", "line\\nbreak\\r\\ttab"),
        ("\x00\x1f\x7f", "\\x00\\x1f\\x7f"),
        ("\ufffd", "\\uFFFD"),
        ("日本語 ünïcødé 🚀", "日本語 ünïcødé 🚀"),
        ('"}or vector(1)#', '\\"}or vector(1)#'),
        ("", ""),
    ],
)
def test_escape_examples(value: str, escaped: str) -> None:
    assert escape_label_value(value) == escaped
    assert quote(value) == f'"{escaped}"'


@given(values)
def test_no_value_breaks_out_of_its_literal(value: str) -> None:
    rendered = selector("m", [Matcher("l", "=", value)])
    assert parse_selector(rendered) == ("m", [("l", "=", value)])


@given(st.lists(st.tuples(label_names, ops, values), min_size=1, max_size=5))
def test_many_matchers_round_trip(items: list[tuple[str, str, str]]) -> None:
    matchers = [Matcher(name, op, value) for name, op, value in items]  # type: ignore[arg-type]
    assert parse_selector(selector("kube_pod_info", matchers)) == ("kube_pod_info", items)
    assert parse_selector(selector("", matchers)) == ("", items)


@given(values)
def test_escaped_text_holds_no_raw_control_character(value: str) -> None:
    escaped = escape_label_value(value)
    assert not any(ord(char) < 0x20 or ord(char) == 0x7F or char == "\ufffd" for char in escaped)


def test_selector_without_matchers_is_the_metric() -> None:
    assert selector("up", []) == "up"
    assert selector("up", [Matcher("job", "!=", "")]) == 'up{job!=""}'


@pytest.mark.parametrize("name", ["", "1abc", "a-b", "a.b", 'a"', "a b", "ünï", "a{", "__name__}"])
def test_invalid_label_names_are_rejected(name: str) -> None:
    with pytest.raises(ValueError, match="label name"):
        Matcher(name, "=", "x")


def test_invalid_operator_is_rejected() -> None:
    with pytest.raises(ValueError, match="operator"):
        Matcher("a", "==", "x")  # type: ignore[arg-type]


@pytest.mark.parametrize("metric", ["1up", "up{", "up or vector(1)", "a-b"])
def test_invalid_metric_names_are_rejected(metric: str) -> None:
    with pytest.raises(ValueError, match="metric name"):
        selector(metric, [])


def test_empty_selector_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one matcher"):
        selector("", [])


def test_lone_surrogate_is_rejected() -> None:
    with pytest.raises(ValueError, match="surrogate"):
        escape_label_value("a\ud800b")


def test_regex_escape_escapes_every_re2_metacharacter() -> None:
    assert regex_escape(r"\.+*?()|[]{}^$") == r"\\\.\+\*\?\(\)\|\[\]\{\}\^\$"
    assert regex_escape("kube-system") == "kube-system"


def test_regex_literal_examples() -> None:
    assert regex_literal(["a", "b.c", "a"]) == r"a|b\.c"
    rendered = selector("m", [Matcher("namespace", "=~", regex_literal(["x|y", 'q"\\']))])
    assert rendered == 'm{namespace=~"x\\\\|y|q\\"\\\\\\\\"}'
    with pytest.raises(ValueError, match="at least one value"):
        regex_literal([])


@given(st.lists(values, min_size=1, max_size=6), values)
def test_regex_literal_matches_exactly_its_values(literals: list[str], other: str) -> None:
    pattern = re.compile(regex_literal(literals), re.DOTALL)  # Prometheus anchors: ^(?s:...)$
    assert all(pattern.fullmatch(value) for value in literals)
    assert bool(pattern.fullmatch(other)) == (other in literals)
    rendered = selector("m", [Matcher("l", "!~", regex_literal(literals))])
    assert parse_selector(rendered) == ("m", [("l", "!~", regex_literal(literals))])
