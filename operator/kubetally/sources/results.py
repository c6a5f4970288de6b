"""The answers of the Prometheus HTTP API as Python values: range series, instant samples, stats.

Kept apart from the client (`sources.prometheus`) so that the client holds only the transport
rules (deadlines, retries, limits). A malformed answer raises KeyError, IndexError, TypeError or
ValueError here; the client turns those into one `SourceUnavailable` naming the endpoint.

An answer is decoded once (`decode`): the text of every `"values":[…]` array is cut out before
the JSON parser sees the body, so that the parser builds only the small skeleton (labels, status,
stats) and the points are read into numpy by `sources.points` (`parse_matrix_answer`). Inside a
JSON string a quote is always escaped, so the bare bytes `"values":[` can only be the key of an
array. If the cut arrays do not line up with the series of the result (a server writing other
`values` arrays, or odd spacing), the whole body is decoded the plain way instead.
"""

from __future__ import annotations

import gc
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Final

import numpy as np
import numpy.typing as npt
import orjson

from kubetally.sources.points import Misshapen, parse_points

__all__ = [
    "Decoded",
    "InstantSample",
    "RangeSeries",
    "decode",
    "labels_of",
    "parse_instant",
    "parse_matrix",
    "parse_matrix_answer",
    "parse_stats",
]

_VALUES_KEY: Final = re.compile(rb'"values":\[')
_CLOSE: Final = ord("]")


@dataclass(frozen=True, slots=True, eq=False)
class RangeSeries:
    """One series of a range query: its labels, evaluation times (unix s) and values (NaN/±Inf kept)."""

    labels: dict[str, str]
    timestamps: npt.NDArray[np.int64]
    values: npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class InstantSample:
    """One sample of an instant query (a scalar result has empty labels)."""

    labels: dict[str, str]
    timestamp: int
    value: float


def labels_of(raw: Any) -> dict[str, str]:
    """A label set as str → str (TypeError if it is not an object)."""
    if not isinstance(raw, dict):
        raise TypeError("labels are not an object")
    return {str(key): str(value) for key, value in raw.items()}


@dataclass(frozen=True, slots=True)
class Decoded:
    """One answer: `document` is its JSON value with every `"values":[…]` array left empty, `arrays`
    the text inside those arrays in the order they appear, `body` the answer as received."""

    document: Any
    arrays: tuple[memoryview, ...]
    body: bytes


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while an answer is decoded (no await inside).

    Decoding an L answer allocates ~100k label dicts that nothing cycles through (reference
    counting frees them); with the collector on, the growing heap made it traverse everything
    again and again (11 full collections, ~0.5 s of an L hour). Restored as it was on exit."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def decode(body: bytes) -> Decoded:
    """Decode an answer, its values arrays cut out (ValueError if the skeleton is not JSON).

    Array j spans body[starts[j]:ends[j]]: from just after `"values":[` to its first `]]` (the
    closing bracket of the last point; points hold no strings that could contain one), or nothing
    when the array is `[]`. Arrays that do not end, or overlap, leave the body to the plain parser."""
    with _collector_paused():
        return _decode(body)


def _decode(body: bytes) -> Decoded:
    starts = [found.end() for found in _VALUES_KEY.finditer(body)]
    if not starts:
        return Decoded(document=orjson.loads(body), arrays=(), body=body)
    size = len(body)
    ends = [start if start < size and body[start] == _CLOSE else body.find(b"]]", start) + 1 for start in starts]
    if min(ends) <= 0 or any(later < end for end, later in zip(ends, starts[1:], strict=False)):
        return Decoded(document=orjson.loads(body), arrays=(), body=body)
    view = memoryview(body)
    skeleton = b"".join([view[a:b] for a, b in zip([0, *ends], [*starts, size], strict=True)])
    return Decoded(document=orjson.loads(skeleton), arrays=tuple(view[a:b] for a, b in zip(starts, ends, strict=True)),
                   body=body)


def parse_matrix_answer(answer: Decoded, evaluations: tuple[int, int, int] | None = None) -> list[RangeSeries]:
    """The series of a decoded `matrix` answer (`answer.document` is its `data`), points read in
    bulk; `evaluations` = the (start, end, step) asked, which speeds up reading the times."""
    with _collector_paused():
        return _matrix_answer(answer, evaluations)


def _matrix_answer(answer: Decoded, evaluations: tuple[int, int, int] | None) -> list[RangeSeries]:
    if answer.arrays:
        try:
            return parse_matrix(answer.document, answer.arrays, evaluations)
        except Misshapen:
            pass
        return parse_matrix(orjson.loads(answer.body)["data"])
    return parse_matrix(answer.document)


def parse_matrix(
    data: Any, arrays: Sequence[bytes | memoryview] = (), evaluations: tuple[int, int, int] | None = None
) -> list[RangeSeries]:
    """The series of a `matrix` result, timestamps rounded to whole seconds, arrays read-only.

    With `arrays`, the result's `values` were cut out by `decode`: each item whose `values` is
    empty takes the next array, in order; Misshapen if they do not line up one to one."""
    if data.get("resultType") != "matrix":
        raise ValueError(f"expected resultType matrix, got {data.get('resultType')!r}")
    items = data["result"]
    if not arrays:
        return [_series(item) for item in items]
    if sum(1 for item in items if "values" in item) != len(arrays):
        raise Misshapen("the values arrays do not line up with the series")
    timestamps, values, offsets = parse_points(arrays, evaluations)
    timestamps.flags.writeable = False
    values.flags.writeable = False
    bounds = iter(zip(offsets[:-1].tolist(), offsets[1:].tolist(), strict=True))
    metrics = _label_sets([item.get("metric", {}) for item in items])
    series: list[RangeSeries] = []
    for item, labels in zip(items, metrics, strict=True):
        if "values" not in item:  # a series of native histograms only has no float values
            series.append(_series(item))
            continue
        if item["values"] != []:
            raise Misshapen("the values arrays do not line up with the series")
        a, b = next(bounds)
        series.append(RangeSeries(labels=labels, timestamps=timestamps[a:b], values=values[a:b]))
    return series


def _label_sets(raw: list[Any]) -> list[dict[str, str]]:
    """`labels_of` of each; the decoded objects themselves when they already are str → str (JSON
    object keys always are), which saves a copy of every label set of a large answer."""
    if all(type(m) is dict for m in raw) and {type(v) for m in raw for v in m.values()} <= {str}:
        return raw
    return [labels_of(m) for m in raw]


def _series(item: Any) -> RangeSeries:
    """One series from its decoded JSON points (answers `decode` could not cut, and tests)."""
    points = item.get("values") or []  # a series of native histograms only has no float values
    timestamps = np.rint(np.array([point[0] for point in points], dtype=np.float64)).astype(np.int64)
    values = np.array([point[1] for point in points], dtype=np.float64)
    if timestamps.shape != values.shape:
        raise ValueError("timestamps and values differ in length")
    timestamps.flags.writeable = False
    values.flags.writeable = False
    return RangeSeries(labels=labels_of(item.get("metric", {})), timestamps=timestamps, values=values)


def parse_instant(data: Any) -> list[InstantSample]:
    """The samples of a `vector` or `scalar` result."""
    kind = data.get("resultType")
    if kind == "scalar":
        return [InstantSample(labels={}, timestamp=round(float(data["result"][0])), value=float(data["result"][1]))]
    if kind != "vector":
        raise ValueError(f"expected resultType vector or scalar, got {kind!r}")
    return [
        InstantSample(
            labels=labels_of(item.get("metric", {})),
            timestamp=round(float(item["value"][0])),
            value=float(item["value"][1]),
        )
        for item in data["result"]
        if "value" in item  # a native-histogram sample has "histogram" instead
    ]


def parse_stats(data: Any) -> int | None:
    """`stats.samples.totalQueryableSamples`, or None when the server does not say."""
    stats = data.get("stats")
    samples = stats.get("samples") if isinstance(stats, dict) else None
    total = samples.get("totalQueryableSamples") if isinstance(samples, dict) else None
    return int(total) if isinstance(total, int | float) and not isinstance(total, bool) else None
