"""Hostile parameter values for fuzzing the HTTP APIs, shared by the two fuzz tiers.

Why one module: the in-process fuzz on an empty ledger (`tests/unit/api/test_fuzz.py`, hypothesis) and
the fuzz of a real `kubetally serve` over a loaded ledger (`tests/load/test_fuzz_loaded.py`, a seeded
`random.Random`) must throw the same kinds of garbage; each adds what only it can reach. The values
are grouped by what they attack: `NASTY` breaks parsers (quotes, escapes, braces, regex and shell
metacharacters, control characters, unicode, numbers that overflow), `UNALLOCATED` is the word
OpenCost uses for "missing", and `HUGE_*` sit on either side of the 16 KiB per-value cap.
"""

from __future__ import annotations

from hypothesis import strategies as st

from kubetally.api.params import COST_PARAMETERS, MAX_VALUE_BYTES, USAGE_PARAMETERS

__all__ = [
    "COST_KEYS", "HUGE_ACCEPTED", "HUGE_REFUSED", "NASTY", "UNALLOCATED", "USAGE_KEYS", "params_strategy", "values",
]

COST_KEYS: tuple[str, ...] = COST_PARAMETERS
USAGE_KEYS: tuple[str, ...] = USAGE_PARAMETERS
UNALLOCATED = "__unallocated__"
#: Exactly at the cap (accepted by the size check), in ASCII and in 3-byte UTF-8 (16383 bytes + 1 byte).
HUGE_ACCEPTED: tuple[str, ...] = ("x" * MAX_VALUE_BYTES, "€" * (MAX_VALUE_BYTES // 3) + "x")
#: One byte over the cap, and far over it.
HUGE_REFUSED: tuple[str, ...] = ("x" * (MAX_VALUE_BYTES + 1), "é" * (MAX_VALUE_BYTES // 2 + 1), "9" * 17000)

NASTY: tuple[str, ...] = (
    # parser and PromQL/SQL metacharacters
    '"', "\\", '\\"', "{", "}", "{}", "|", "||", ".*", ".*$", "$", "^", "'", "`", "(", ")", "((", "[", "]", "]]",
    "' OR 1=1 --", '"; DROP TABLE container_facts; --', "a'b\"c", "${HOME}", "$(id)", "%s%n", "{{7*7}}",
    'a"b\\c{d}|e', '}|{"', "=~", "!~", "!=", 'label_replace(up,"a","b","c","d")', 'up{job=~".*"}',
    # separators of our own grammars
    "+", ",", ":", ";", "&", "=", "/", "//", "..", "../../etc/passwd", " ", "\t", "label[app]:", 'namespace:"',
    'namespace:"a"+', 'namespace:"a"|', "label:", "label[", "label[]:\"a\"", "namespace,,pod", ",namespace",
    # control characters and unicode
    "\x00", "a\x00b", "\n", "\r\n", "\x7f", "\x1b[31m", "\u202e", "\u200b", "\ufeff", "é", "名前空間", "🙂", "\ud7ff",
    "İ", "ǅ", "ﬀ", "Ω", "٣", "１２",
    # numbers and times at the edges
    "9" * 40, "-1", "0", "-0", "00", "1e309", "-1e309", "NaN", "inf", "-inf", "0x10", "1_000", "1.5", ".5", "1e3",
    "today", "TODAY", "1h", "7d", "-7d", "0h", "0s", "1s", "59s", "61s", "90m", "1.5h", "1h30m", "P1D", "1 h",
    "2025-06-01", "20250601", "2025-02-30", "0000-01-01", "9999-12-31", "10000-01-01",
    "2025-06-01T00:00:00Z,2025-06-01T02:00:00Z", "2025-06-01T02:00:00Z,2025-06-01T00:00:00Z", "1711382400,1711468800",
    "99999999999999999999,99999999999999999999", "-1,1", "1,", ",1", ",",
    UNALLOCATED, '"__unallocated__"', "__idle__", "__unallocated_idle__",
    "x" * 300,
)


def values() -> st.SearchStrategy[str]:
    """Any text, a nasty value, a run of them glued together, or an ASCII value at or over the size
    cap (ASCII so that six of them percent-encoded stay under aiohttp's 128 KiB request line, past
    which its parser answers before our code runs)."""
    nasty = st.sampled_from(NASTY)
    huge = st.sampled_from([value for value in HUGE_ACCEPTED + HUGE_REFUSED if value.isascii()])
    return st.one_of(st.text(max_size=40), nasty, st.lists(nasty, max_size=3).map("".join), huge)


def params_strategy(keys: tuple[str, ...]) -> st.SearchStrategy[dict[str, str]]:
    """Up to six parameters: accepted names or any text, each with a hostile value."""
    return st.dictionaries(st.one_of(st.sampled_from(keys), st.text(max_size=12)), values(), max_size=6)
