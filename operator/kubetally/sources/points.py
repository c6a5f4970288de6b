"""The points of a range answer, read from its JSON text into numpy arrays without a Python object per point.

A scale-L hour is ~5M points (`[1768478400,"890175488"]`) in ~125 MB of JSON; decoding them as
JSON made four Python objects per point (a list, an int, a str, then a float) and, with the
garbage collector walking them, most of an ingest's time. Here the text of every series'
`"values":[…]` array is cut out of the body and read by vectorised numpy passes over its bytes:

1. **Shape.** In the arrays joined by `,`, the bytes `[`, `"`, `]` must come in the order
   `[ " " ]` once per point, point i spanning opens[i]..closes[i] with `,"` before its first
   quote and `"]` at its end, points separated by one `,`. T is the text between `[` and `,"`,
   V between the quotes.
2. **Times.** For a range query (start, end, step) every T is the text of some t_k = start + k·step;
   it is matched as such (`_evaluation_times`: one 8-byte word compared per point), else read as a
   number like the values.
3. **Numbers.** A token of plain digits (≤ 16) is read 8 bytes at a time as uint64 words (SWAR,
   `_plain_digits`). Others of length L ≤ 19 are read column by column (Horner, in uint64, exact
   for ≤ 19 digits): m = the decimal digits as an integer, f = digits after the `.`, a leading
   `-`/`+`. When m ≤ 2^53 and f ≤ 22, both m and 10^f are exact doubles, so the one IEEE division
   m / 10^f is the correctly rounded value of the decimal (Clinger's fast path): the same double
   `float(text)` gives. Anything else (NaN, ±Inf, exponents, more than 15-16 significant digits)
   is read by `float` one token at a time; these are rare in exporters' series, though a real
   irate with 17 significant digits takes that path (~0.3 µs a value).

Measured on the L hour (21 answers, 125 MB): 0.55 s of CPU for every point, where the JSON
decoder and `np.array` over its lists took ~6 s (plus ~5 s of garbage collection).

A malformed array raises `Misshapen` (a ValueError); the caller then decodes the answer the plain
way, so an odd but valid answer is still read and a broken one fails with the usual message.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Final

import numpy as np
import numpy.typing as npt

__all__ = ["Misshapen", "parse_decimals", "parse_points"]

Int64s = npt.NDArray[np.int64]
Floats = npt.NDArray[np.float64]

_OPEN, _CLOSE, _QUOTE, _COMMA, _DOT, _MINUS, _PLUS, _ZERO = (ord(c) for c in '[]",.-+0')
#: The marks of one point `[T,"V"]`, in order.
_POINT_MARKS: Final = np.array([_OPEN, _QUOTE, _QUOTE, _CLOSE], dtype=np.uint8)
#: The largest integer m such that every integer in [0, m] is an exact double.
_EXACT: Final = 2**53
#: 10^f for f = 0..22: every one an exact double.
_POW10: Final = 10.0 ** np.arange(23)
#: Longest token read by the vectorised path: 19 digits < 2^64 (no uint64 overflow).
_MAX_WIDTH: Final = 19
#: Longest token of plain digits read 8 bytes at a time (two uint64 words).
_WORD_DIGITS: Final = 16
#: Bytes before the first token of a joined text (two words' worth).
_PAD: Final = 16
#: At most this many evaluation times are matched as texts (Prometheus' own limit per series).
_MAX_EVALUATIONS: Final = 11_000
#: Eight '0' bytes.
_ZEROS: Final = 0x3030303030303030
#: What `float` may read on the slow path: decimals, exponents, NaN and infinities as Go and Python
#: write them (no underscores or whitespace, which `float` would otherwise accept).
_NUMBER: Final = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|(?i:inf|infinity|nan))")


class Misshapen(ValueError):
    """The text of a values array is not a list of `[number,"number"]` points."""


def parse_points(
    arrays: Sequence[bytes | memoryview], evaluations: tuple[int, int, int] | None = None
) -> tuple[Int64s, Floats, Int64s]:
    """Read the text inside each `"values":[` … `]` (points only, no outer brackets; may be empty).

    Returns (timestamps, values, offsets): every point of every array in order, timestamps in unix
    seconds rounded to whole seconds (as `np.rint`), and offsets (len(arrays) + 1) such that array
    j holds points offsets[j]:offsets[j+1]. Raises Misshapen on anything else. `evaluations` =
    (start, end, step) of a range query lets the times be matched against the texts of its
    evaluation times (`_evaluation_times`) instead of read digit by digit.
    """
    lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
    # _PAD spaces first, so that every token has two whole words before its end (see _plain_digits).
    text = b" " * _PAD + b",".join([a for a in arrays if len(a)])
    u = np.frombuffer(text, dtype=np.uint8)
    marks = np.flatnonzero((u == _OPEN) | (u == _QUOTE) | (u == _CLOSE))
    if len(marks) % 4 or not (u[marks].reshape(-1, 4) == _POINT_MARKS).all():
        raise Misshapen("a values array is not a list of [time, \"value\"] points")
    opens, first, second, closes = marks[0::4], marks[1::4], marks[2::4], marks[3::4]
    n = len(opens)
    if (len(u) > _PAD and not n) or (n and not (
        opens[0] == _PAD
        and closes[-1] == len(u) - 1
        and np.array_equal(opens[1:], closes[:-1] + 2)
        and np.all(u[closes[:-1] + 1] == _COMMA)
        and np.array_equal(closes, second + 1)
        and np.all(first - 1 > opens + 1)
        and np.all(u[first - 1] == _COMMA)
    )):
        raise Misshapen("a values array is not a list of [time, \"value\"] points")
    times = _evaluation_times(u, opens + 1, first - 1, evaluations) if evaluations else None
    if times is None:
        times = np.rint(parse_decimals(u, opens + 1, first - 1)).astype(np.int64)
    values = parse_decimals(u, first + 1, second)
    # Where each non-empty array starts in `text`, hence its first point: joined by one comma each.
    sizes = lengths[lengths > 0]
    starts = np.cumsum(sizes + 1) - (sizes + 1) + _PAD
    first_point = np.searchsorted(opens, starts)
    if np.any(first_point >= n) or not np.array_equal(opens[first_point], starts):
        raise Misshapen("a values array does not begin with a point")
    offsets = np.zeros(len(arrays) + 1, dtype=np.int64)
    counts = np.zeros(len(arrays), dtype=np.int64)
    counts[lengths > 0] = np.diff(np.append(first_point, n))
    np.cumsum(counts, out=offsets[1:])
    return times, values, offsets


def _evaluation_times(
    u: npt.NDArray[np.uint8], starts: Int64s, ends: Int64s, evaluations: tuple[int, int, int]
) -> Int64s | None:
    """The times of a range answer's points when each one's text is exactly that of an evaluation
    time t_k = start + k·step (whole seconds, as Prometheus writes them), else None.

    All texts t_k then have one width w (9..16 digits) and one first w − 8 digits, so a token is
    t_k iff its first w − 8 bytes are those digits and its last 8 bytes (one uint64 word) equal
    t_k's last 8: one gather and a binary search over the ≤ 11,000 words of the t_k per point."""
    start, end, step = evaluations
    if not len(starts) or step <= 0 or end < start or (end - start) // step >= _MAX_EVALUATIONS:
        return None
    times = np.arange(start, end + 1, step, dtype=np.int64)
    texts = [str(t).encode() for t in times.tolist()]
    width = len(texts[0])
    prefix = texts[0][:-8]
    if not 8 < width <= _WORD_DIGITS or any(len(t) != width or t[:-8] != prefix for t in texts):
        return None
    if not np.all(ends - starts == width) or int(ends.min()) < 2 * 8:
        return None
    words = _words(u)
    high = np.frombuffer(b"0" * (16 - width) + prefix, dtype="<u8")[0]
    if not np.all(_zero_fill(words[ends - 16], 16 - width) == high):
        return None
    lows = np.frombuffer(b"".join(t[-8:] for t in texts), dtype="<u8")
    order = np.argsort(lows)
    found = words[ends - 8]
    at = np.minimum(np.searchsorted(lows[order], found), len(lows) - 1)
    if not np.array_equal(lows[order][at], found):
        return None
    return np.asarray(times[order][at], dtype=np.int64)


def parse_decimals(u: npt.NDArray[np.uint8], starts: Int64s, ends: Int64s) -> Floats:
    """The numbers written in u[starts[i]:ends[i]], each as the double `float` would give."""
    widths = ends - starts
    out = np.empty(len(starts), dtype=np.float64)
    slow = (widths < 1) | (widths > _MAX_WIDTH)
    present = np.flatnonzero(np.bincount(np.clip(widths, 0, _MAX_WIDTH + 1), minlength=_MAX_WIDTH + 2))
    words = _words(u)
    for width in present.tolist():
        if not 1 <= width <= _MAX_WIDTH:
            continue
        chosen = np.flatnonzero(widths == width) if len(present) > 1 else np.arange(len(starts))
        if width <= _WORD_DIGITS and len(words) > 2 * 8:
            numbers, exact = _plain_digits(words, ends[chosen], width)
            if exact.all():
                out[chosen] = numbers
                continue
            out[chosen[exact]] = numbers[exact]
            chosen = chosen[~exact]  # signs, dots, letters: read column by column
        numbers, exact = _fixed_width(u, starts[chosen], width)
        out[chosen] = numbers
        slow[chosen[~exact]] = True
    for i in np.flatnonzero(slow).tolist():
        out[i] = _one(bytes(u[starts[i]:ends[i]]))
    return out


def _words(u: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint64]:
    """words[i] = the 8 bytes u[i:i+8] as a little-endian uint64 (an overlapping view, no copy)."""
    if len(u) < 8 or not u.flags.c_contiguous:
        return np.zeros(0, dtype=np.uint64)
    return np.ndarray(shape=(len(u) - 7,), dtype="<u8", buffer=u, strides=(1,))


def _plain_digits(words: npt.NDArray[np.uint64], ends: Int64s, width: int) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Tokens of 1..16 digits ending at `ends`: (values, exact), 8 digits per uint64 at a time
    (SWAR, as fast_float's parse_eight_digits_unrolled). The low word holds the last 8 bytes of
    the token, the high word the 8 before; bytes before the token are replaced by '0'. A word is
    all digits iff every byte b has b & 0xF0 = 0x30 and (b + 6) & 0xF0 = 0x30."""
    exact = ends >= 2 * 8  # both words inside the buffer; the others are read column by column
    at = np.where(exact, ends, 2 * 8)
    low, high = words[at - 8], words[at - 16]
    if width < 8:
        low = _zero_fill(low, 8 - width)
        high = np.full(len(at), _ZEROS, dtype=np.uint64)
    else:
        high = _zero_fill(high, 16 - width)
    exact &= _all_digits(low) & _all_digits(high)
    mantissa = _eight(high) * np.uint64(10**8) + _eight(low)
    exact &= mantissa <= np.uint64(_EXACT)
    return mantissa.astype(np.float64), exact


def _zero_fill(words: npt.NDArray[np.uint64], count: int) -> npt.NDArray[np.uint64]:
    """The first `count` bytes (the low ones) of each word replaced by '0'."""
    if count <= 0:
        return words
    mask = np.uint64((1 << (8 * count)) - 1)
    return (words & ~mask) | (np.uint64(_ZEROS) & mask)


def _all_digits(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.bool_]:
    high = np.uint64(0xF0F0F0F0F0F0F0F0)
    return np.asarray(
        ((words & high) | (((words + np.uint64(0x0606060606060606)) & high) >> np.uint64(4)))
        == np.uint64(0x3333333333333333), dtype=np.bool_)


def _eight(words: npt.NDArray[np.uint64]) -> npt.NDArray[np.uint64]:
    """The 8-digit number in each word (first byte most significant): pairs, then quads, then all."""
    value = words - np.uint64(_ZEROS)
    value = value * np.uint64(10) + (value >> np.uint64(8))
    pairs = np.uint64(0x000000FF000000FF)
    value = ((value & pairs) * np.uint64(100 + (1_000_000 << 32))
             + ((value >> np.uint64(16)) & pairs) * np.uint64(1 + (10_000 << 32))) >> np.uint64(32)
    return np.asarray(value & np.uint64(0xFFFFFFFF), dtype=np.uint64)


def _fixed_width(u: npt.NDArray[np.uint8], starts: Int64s, width: int) -> tuple[Floats, npt.NDArray[np.bool_]]:
    """Tokens of `width` bytes at `starts`: (values, exact), `exact` marking the ones read here (the
    others must be read by `float`). Column by column: m ← m·10 + d over the digits (uint64), the
    last dot's column is kept (f = width − 1 − that column), and a token is exact when all its bytes
    are digits but one optional leading sign and at most one dot, m ≤ 2^53 and f ≤ 22."""
    count = len(starts)
    mantissa = np.zeros(count, dtype=np.uint64)
    good = np.zeros(count, dtype=np.uint8)  # digits, a leading sign, dots
    dots = np.zeros(count, dtype=np.uint8)
    dot_at = np.zeros(count, dtype=np.int64)
    negative = signed = np.zeros(count, dtype=np.bool_)
    for column in range(width):
        char = u[starts + column]
        digit = char - np.uint8(_ZERO)  # wraps below '0', so one comparison tells digits
        is_digit = digit < 10
        good += is_digit
        is_dot = char == _DOT
        if column == 0:
            negative = char == _MINUS
            signed = negative | (char == _PLUS)
            good += signed
            digit[~is_digit] = 0
        if is_dot.any():
            dots += is_dot
            good += is_dot
            dot_at[is_dot] = column
            mantissa = np.where(is_dot, mantissa, mantissa * np.uint64(10) + digit)
        else:
            mantissa = mantissa * np.uint64(10) + digit
    fraction = np.where(dots > 0, width - 1 - dot_at, 0)
    digits = width - dots.astype(np.int64) - signed
    exact = (good == width) & (dots <= 1) & (digits >= 1) & (mantissa <= np.uint64(_EXACT)) & (fraction < len(_POW10))
    values = mantissa.astype(np.float64) / _POW10[np.minimum(fraction, len(_POW10) - 1)]
    np.negative(values, out=values, where=negative)
    return values, exact


def _one(token: bytes) -> float:
    """One number the vectorised path could not read exactly (NaN, +Inf, 1e-300, 17 digits…)."""
    if not _NUMBER.fullmatch(token):
        raise Misshapen(f"not a number: {token[:40]!r}")
    return float(token)
