"""The sample functions shared by the metrics writer and the expected facts: when and what.

Why one module: `openmetrics` writes exactly these samples and `expected` / `arrays` integrate
exactly these samples, so a value can never differ between what Prometheus holds and what the
ingest is expected to derive.

Sample semantics (see `kubetally.synthetic.model` for the objects):

* `sample_times(spec, start, end)`: every `t = k·r` (absolute multiples of `r`) with
  `max(start, spec.start) ≤ t < min(end, spec.end)` and `t` outside every gap `[g0, g1)`.
* `memory_values` / `used_values`: `base + PAGE·(h mod (span/PAGE + 1))` with
  `h = splitmix64(key XOR splitmix64(t))`: integer bytes in `[base, base + span]`.
* `counter_values`: `rate·(t − start)`, exact in float64 (rates are multiples of 1/256 core).
* `rate_window(spec)`: the PromQL range `w` of the CPU usage rate, default `max(300, 2·r)` so that a
  full window always holds at least two samples (at r = 300 a `[5m]` window never does). CPU usage
  at a sample `t` is the container's rate iff its counter has ≥ 2 samples in `(t − w, t]`, else 0.
  That is `irate(container_cpu_usage_seconds_total[w])` in Prometheus ≥ 3 (left-open ranges);
  `rate()` differs near the edges of a life because it extrapolates.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from kubetally.synthetic.model import PAGE, ClusterSpec, Container, PersistentVolumeClaim

Int64Array = NDArray[np.int64]
FloatArray = NDArray[np.float64]
BoolArray = NDArray[np.bool_]
UInt64Array = NDArray[np.uint64]

_GOLDEN = np.uint64(0x9E3779B97F4A7C15)
_M1 = np.uint64(0xBF58476D1CE4E5B9)
_M2 = np.uint64(0x94D049BB133111EB)


def rate_window(spec: ClusterSpec) -> int:
    """The CPU rate range in seconds: `spec.rate_window`, else `max(300, 2·scrape_seconds)`."""
    if spec.rate_window is not None:
        return spec.rate_window
    return max(300, 2 * spec.scrape_seconds)


def grid(a: int, b: int, r: int) -> Int64Array:
    """The multiples of `r` in `[a, b)`."""
    first = -(-a // r) * r
    return np.arange(first, b, r, dtype=np.int64)


def gap_mask(times: Int64Array, gaps: tuple[tuple[int, int], ...]) -> BoolArray:
    """True where `times` fall inside a gap `[g0, g1)`."""
    mask = np.zeros(times.shape, dtype=np.bool_)
    for g0, g1 in gaps:
        mask |= (times >= g0) & (times < g1)
    return mask


def data_times(spec: ClusterSpec, a: int, b: int) -> Int64Array:
    """Grid points in `[a, b)` at which the store holds data: inside the span, outside gaps."""
    times = grid(max(a, spec.start), min(b, spec.end), spec.scrape_seconds)
    return times[~gap_mask(times, spec.gaps)]


def sample_times(spec: ClusterSpec, start: int, end: int) -> Int64Array:
    """The sample times of an object living over `[start, end)`."""
    return data_times(spec, start, end)


def clip(times: Int64Array, a: int | None, b: int | None) -> Int64Array:
    """The times inside `[a, b)` (None: unbounded)."""
    if a is not None:
        times = times[times >= a]
    if b is not None:
        times = times[times < b]
    return times


def mix64(x: UInt64Array) -> UInt64Array:
    """splitmix64's finaliser, elementwise, wrapping modulo 2**64 (numpy arrays wrap silently)."""
    z = x + _GOLDEN
    z = (z ^ (z >> np.uint64(30))) * _M1
    z = (z ^ (z >> np.uint64(27))) * _M2
    return z ^ (z >> np.uint64(31))


def wobble(keys: UInt64Array, times: Int64Array, span: Int64Array) -> Int64Array:
    """`PAGE·(h(key, t) mod (span/PAGE + 1))`, broadcasting `keys`/`span` (n, 1) against `times`."""
    hashed = mix64(keys ^ mix64(times.astype(np.uint64)))
    pages = (span // PAGE).astype(np.uint64) + np.uint64(1)
    return (hashed % pages).astype(np.int64) * PAGE


def memory_values(container: Container, times: Int64Array) -> Int64Array:
    """The working-set bytes of `container` at `times`."""
    keys = np.array([container.key], dtype=np.uint64)
    span = np.array([container.memory_span], dtype=np.int64)
    return container.memory_base + wobble(keys, times, span)


def used_values(pvc: PersistentVolumeClaim, times: Int64Array) -> Int64Array:
    """The used bytes of `pvc` at `times`."""
    keys = np.array([pvc.key], dtype=np.uint64)
    span = np.array([pvc.used_span], dtype=np.int64)
    return pvc.used_base + wobble(keys, times, span)


def counter_values(rate: float, start: int, times: Int64Array) -> FloatArray:
    """A constant-rate counter started at `start`: `rate·(t − start)`."""
    return rate * (times - start).astype(np.float64)


def samples_in_window(times: Int64Array, at: Int64Array, window: int) -> Int64Array:
    """For each `t` in `at`, how many of the sorted `times` lie in `(t − window, t]`."""
    upper = np.searchsorted(times, at, side="right")
    lower = np.searchsorted(times, at - window, side="right")
    return (upper - lower).astype(np.int64)
