"""The /v2/cost query shapes of issue 15, each with its goal, timed one client at a time.

Why: the stored rollups made `aggregate=namespace` fast, but users also group by controller, label
and pod, filter namespaces, price by usage and share idle; issue 15 names each shape and the time it
must take at scale L. Every shape reads the generated month (`MONTH`, 30 days) at step 1d, except the
refused one (step 1h by controller: over the row cap, it must be refused quickly with 400).

Filter values come from the generated cluster, never invented: the two namespaces of median pod
count (`median_namespaces`; the busiest, ns-000, holds every DaemonSet pod and is no typical
tenant), and the `app` label key that every generated pod carries (`require_label`).

Goals are judged on the statistic their target text names: `p95 < x s` for the issue's "< x s" (every
request, not the typical one, must be under the bound), `median ≤ x s` for "keep" (the figures
measured before were medians).

How many requests a shape gets adapts to its first one, t₀ seconds, so a shape that takes a minute
today costs about `SHAPE_BUDGET_SECONDS` and a fast one gets the full n (`runs_after_first`):
- t₀ < `WARM_UP_BELOW_SECONDS`: the first request was a warm-up (discarded), then n requests;
- otherwise it counts, and min(n, max(1, ⌊budget / t₀⌋)) requests are timed in all, the first one
  included (with a 90 s budget: t₀ = 4 s → 20 of n = 20, 38 s → 2, 60 s → 1).
Each request has a deadline (`REQUEST_TIMEOUT_SECONDS`): a shape that misses it is reported as such.
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import httpx

from kubetally.bench.measure import Timing
from kubetally.synthetic import Cluster

#: The generated month, written out: `window=30d` would follow the replay clock, which runs on.
MONTH = "2026-01-01T00:00:00Z,2026-01-31T00:00:00Z"
COST = "/v2/cost"
WARM_UP_BELOW_SECONDS = 2.0
SHAPE_BUDGET_SECONDS = 90.0
REQUEST_TIMEOUT_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Goal:
    """`statistic` (p95 or median) of a shape's durations, below `seconds` (or at most, if `inclusive`)."""

    statistic: str
    seconds: float
    inclusive: bool = False

    @property
    def text(self) -> str:
        return f"{self.statistic} {'≤' if self.inclusive else '<'} {self.seconds:g} s"

    def met(self, timing: Timing) -> bool:
        value = timing.p95 if self.statistic == "p95" else timing.median
        return value <= self.seconds if self.inclusive else value < self.seconds


@dataclass(frozen=True, slots=True)
class Shape:
    """One request of the table: its label in RESULTS.md, its parameters and the status it must get."""

    name: str
    params: tuple[tuple[str, str], ...]
    goal: Goal
    expect: int = 200


UNDER_A_SECOND = Goal("p95", 1.0)


def median_namespaces(namespaces: Iterable[str]) -> tuple[tuple[str, int], tuple[str, int]]:
    """The namespace of median pod count and the next one up, each with its count: `namespaces`
    holds one entry per pod; ranked by (count, name), the median is at index ⌊k/2⌋ of k namespaces."""
    counts = Counter(namespaces)
    ranked = sorted(counts, key=lambda name: (counts[name], name))
    if len(ranked) < 2:
        raise ValueError(f"two namespaces with pods are needed, found {len(ranked)}")
    middle = min(len(ranked) // 2, len(ranked) - 2)
    first, second = ranked[middle], ranked[middle + 1]
    return (first, counts[first]), (second, counts[second])


def require_label(cluster: Cluster, key: str) -> int:
    """How many pods carry label `key` (ValueError if none: a shape must group by a real label)."""
    count = sum(1 for pod in cluster.pods if any(name == key for name, _ in pod.labels))
    if count == 0:
        raise ValueError(f"no generated pod carries the label {key!r}")
    return count


def cost_shapes(cluster: Cluster) -> list[Shape]:
    """The shapes of issue 15 on `cluster`, in the order of the issue's table."""
    (one, one_pods), (two, two_pods) = median_namespaces(pod.namespace for pod in cluster.pods if not pod.pending)
    require_label(cluster, "app")
    month = (("window", MONTH), ("step", "1d"))
    return [
        Shape("step=1d aggregate=namespace", (*month, ("aggregate", "namespace")), Goal("p95", 0.25)),
        Shape("step=1d aggregate=controller", (*month, ("aggregate", "controller")), UNDER_A_SECOND),
        Shape("step=1d aggregate=label:app", (*month, ("aggregate", "label:app")), UNDER_A_SECOND),
        Shape(f'step=1d aggregate=pod filter=namespace:"{one}" ({one_pods} pods)',
              (*month, ("aggregate", "pod"), ("filter", f'namespace:"{one}"')), UNDER_A_SECOND),
        Shape(f'step=1d aggregate=namespace filter=namespace:"{one}","{two}" ({one_pods + two_pods} pods)',
              (*month, ("aggregate", "namespace"), ("filter", f'namespace:"{one}","{two}"')), UNDER_A_SECOND),
        Shape("step=1d aggregate=namespace method=Usage", (*month, ("aggregate", "namespace"), ("method", "Usage")),
              UNDER_A_SECOND),
        Shape("step=1d aggregate=namespace,label:app", (*month, ("aggregate", "namespace,label:app")), UNDER_A_SECOND),
        Shape("step=1d aggregate=namespace shareIdle=true", (*month, ("aggregate", "namespace"), ("shareIdle", "true")),
              Goal("median", 0.54, inclusive=True)),
        Shape("step=1d aggregate=node idleByNode=true", (*month, ("aggregate", "node"), ("idleByNode", "true")),
              Goal("median", 0.81, inclusive=True)),
        Shape("step=1h aggregate=controller: refused with 400 (over the row cap)",
              (("window", MONTH), ("step", "1h"), ("aggregate", "controller")), Goal("p95", 0.5), expect=400),
    ]


def runs_after_first(first_seconds: float, runs: int, budget: float = SHAPE_BUDGET_SECONDS) -> tuple[bool, int]:
    """(whether the first request counts, how many more to time), per the rule in the module docstring."""
    if first_seconds < WARM_UP_BELOW_SECONDS:
        return False, runs
    total = min(runs, max(1, int(budget // first_seconds)))
    return True, total - 1


@dataclass(frozen=True, slots=True)
class ShapeResult:
    """What one shape measured: its timing, or why it has none; the last body's `message` (a refusal's)."""

    shape: Shape
    timing: Timing | None
    failure: str = ""
    message: str = ""

    @property
    def met(self) -> bool:
        return not self.failure and self.timing is not None and self.shape.goal.met(self.timing)


class _Failed(Exception):
    pass


def _send(client: httpx.Client, shape: Shape) -> tuple[float, httpx.Response]:
    """One GET with its body read in full: (seconds from send to last byte, response)."""
    started = time.perf_counter()
    try:
        response = client.get(COST, params=list(shape.params), timeout=REQUEST_TIMEOUT_SECONDS)
    except httpx.TimeoutException as exc:
        raise _Failed(f"no answer within {REQUEST_TIMEOUT_SECONDS:g} s") from exc
    except httpx.TransportError as exc:
        raise _Failed(f"{type(exc).__name__}: {exc}") from exc
    elapsed = time.perf_counter() - started
    if response.status_code != shape.expect:
        raise _Failed(f"answered {response.status_code} (expected {shape.expect}): {message_of(response)}")
    return elapsed, response


def message_of(response: httpx.Response) -> str:
    """The `message` of a Status body, else the start of the body; at most 160 characters."""
    try:
        body = response.json()
    except ValueError:
        body = None
    text = str(body["message"]) if isinstance(body, dict) and "message" in body else response.text
    return text if len(text) <= 160 else text[:159] + "…"


def time_shape(url: str, shape: Shape, runs: int) -> ShapeResult:
    """Time `shape` against the server at `url`, one request at a time (see the module docstring)."""
    durations: list[float] = []
    with httpx.Client(base_url=url) as client:
        try:
            first, response = _send(client, shape)
            counts, more = runs_after_first(first, runs)
            durations += [first] if counts else []
            for _ in range(more):
                elapsed, response = _send(client, shape)
                durations.append(elapsed)
        except _Failed as failed:
            return ShapeResult(shape, Timing(tuple(durations)) if durations else None, str(failed))
    return ShapeResult(shape, Timing(tuple(durations)), message=message_of(response) if shape.expect != 200 else "")


def time_shapes(url: str, shapes: Sequence[Shape], runs: int, log: Callable[[str], None]) -> list[ShapeResult]:
    """Every shape in turn, logging each result as it comes (a slow shape takes minutes today)."""
    results = []
    for shape in shapes:
        result = time_shape(url, shape, runs)
        timing = result.timing
        log(f"    {shape.name}: " + (f"median {timing.median:.3f} s, p95 {timing.p95:.3f} s (n={len(timing.seconds)})"
                                     if timing is not None else "no timing") + (f"; {result.failure}" if result.failure
                                                                                 else ""))
        results.append(result)
    return results
