"""The answers of the Prometheus HTTP API as Python values: range series, instant samples, stats.

Kept apart from the client (`sources.prometheus`) so that the client holds only the transport
rules (deadlines, retries, limits). A malformed answer raises KeyError, IndexError, TypeError or
ValueError here; the client turns those into one `SourceUnavailable` naming the endpoint.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["InstantSample", "RangeSeries", "labels_of", "parse_instant", "parse_matrix", "parse_stats"]


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


def parse_matrix(data: Any) -> list[RangeSeries]:
    """The series of a `matrix` result, timestamps rounded to whole seconds, arrays read-only."""
    if data.get("resultType") != "matrix":
        raise ValueError(f"expected resultType matrix, got {data.get('resultType')!r}")
    series: list[RangeSeries] = []
    for item in data["result"]:
        points = item.get("values") or []  # a series of native histograms only has no float values
        timestamps = np.rint(np.array([point[0] for point in points], dtype=np.float64)).astype(np.int64)
        values = np.array([point[1] for point in points], dtype=np.float64)
        if timestamps.shape != values.shape:
            raise ValueError("timestamps and values differ in length")
        timestamps.flags.writeable = False
        values.flags.writeable = False
        series.append(RangeSeries(labels=labels_of(item.get("metric", {})), timestamps=timestamps, values=values))
    return series


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
