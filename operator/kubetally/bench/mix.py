"""Sixteen clients at a time: a seeded-random mix of the issue-15 shapes against one `kubetally serve`.

Why: a dashboard page fires several panels at once and several people open it; the single-client
figures say nothing about queueing, the event loop or memory under concurrency (issue 15: "sixteen
clients at a time", peak RSS < 1 GiB "also under 16 clients").

Plan (`mix_plan`): `random.Random(seed)` draws, for each of `clients` clients in turn, a sequence of
`requests` shape indices, uniformly; the seed is printed and written with the figures, so a run can be
repeated. Each client is a thread with its own HTTP connection; all start together and send their
sequence one request after the other (closed loop).

Deadlines: each request gets min(`REQUEST_TIMEOUT_SECONDS`, time left in `budget`); after the budget
no request is sent, so the mix ends within `budget` seconds even while shapes take a minute each. A
request is an error when it is answered with a status other than its shape's (the refused shape's
400 is expected); requests without an answer (deadline or connection) and requests never sent are
counted apart.

Statistics (`mix_stats`): p50 and p95 are nearest-rank percentiles (d[⌈q·n⌉ − 1] of the n sorted
durations of every sent request, from send to last byte). A request without an answer enters with
the time it waited, a lower bound of its latency; when such a bound is at or below the percentile,
the true percentile can only be higher, and it is written "≥".
"""

from __future__ import annotations

import math
import random
import threading
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import httpx

from kubetally.bench.shapes import COST, REQUEST_TIMEOUT_SECONDS, Shape

CLIENTS = 16
REQUESTS_PER_CLIENT = 8
MIX_BUDGET_SECONDS = 300.0


@dataclass(frozen=True, slots=True)
class Outcome:
    """One sent request: the shape's index, the status (None: no answer) and the seconds it took."""

    shape: int
    status: int | None
    seconds: float


def mix_plan(seed: int, clients: int, requests: int, shapes: int) -> list[list[int]]:
    """Per client, the indices of the shapes it sends, in order (see the module docstring)."""
    rng = random.Random(seed)
    return [[rng.randrange(shapes) for _ in range(requests)] for _ in range(clients)]


@dataclass(frozen=True, slots=True)
class Percentile:
    seconds: float
    lower_bound: bool

    @property
    def text(self) -> str:
        return f"{'≥ ' if self.lower_bound else ''}{self.seconds:.3f} s"


@dataclass(frozen=True, slots=True)
class MixStats:
    """`unexpected` lists (shape index, status, how many), the errors by shape and status."""

    planned: int
    sent: int
    errors: int
    unanswered: int
    p50: Percentile | None
    p95: Percentile | None
    wall_seconds: float
    unexpected: tuple[tuple[int, int, int], ...] = ()

    @property
    def unsent(self) -> int:
        return self.planned - self.sent

    @property
    def clean(self) -> bool:
        """Every planned request sent and answered with its shape's status."""
        return self.errors == 0 and self.unanswered == 0 and self.unsent == 0


def _percentile(outcomes: Sequence[Outcome], q: float) -> Percentile | None:
    if not outcomes:
        return None
    ordered = sorted(outcome.seconds for outcome in outcomes)
    value = ordered[math.ceil(q * len(ordered)) - 1]
    bounded = any(outcome.status is None and outcome.seconds <= value for outcome in outcomes)
    return Percentile(value, bounded)


def mix_stats(outcomes: Sequence[Outcome], expected: Sequence[int], planned: int, wall_seconds: float) -> MixStats:
    """The mix's figures; `expected[i]` is the status shape i must get."""
    wrong = Counter((o.shape, o.status) for o in outcomes if o.status is not None and o.status != expected[o.shape])
    unanswered = sum(1 for o in outcomes if o.status is None)
    return MixStats(planned=planned, sent=len(outcomes), errors=sum(wrong.values()), unanswered=unanswered,
                    p50=_percentile(outcomes, 0.50), p95=_percentile(outcomes, 0.95), wall_seconds=wall_seconds,
                    unexpected=tuple((shape, status, n) for (shape, status), n in sorted(wrong.items())))


def _client(url: str, shapes: Sequence[Shape], sequence: Sequence[int], start: threading.Barrier,
            deadline: list[float]) -> list[Outcome]:
    outcomes = []
    with httpx.Client(base_url=url) as client:
        start.wait(timeout=120)
        for index in sequence:
            left = deadline[0] - time.monotonic()
            if left <= 0:
                break
            started = time.perf_counter()
            status: int | None
            try:
                status = client.get(COST, params=list(shapes[index].params),
                                    timeout=min(REQUEST_TIMEOUT_SECONDS, left)).status_code
            except httpx.HTTPError:
                status = None
            outcomes.append(Outcome(index, status, time.perf_counter() - started))
    return outcomes


def run_mix(url: str, shapes: Sequence[Shape], plan: Sequence[Sequence[int]],
            budget: float = MIX_BUDGET_SECONDS) -> MixStats:
    """Send `plan` (one sequence per client, all at once) to the server at `url`; its statistics."""
    start = threading.Barrier(len(plan) + 1)
    deadline = [math.inf]
    with ThreadPoolExecutor(max_workers=len(plan), thread_name_prefix="mix-client") as pool:
        futures = [pool.submit(_client, url, shapes, sequence, start, deadline) for sequence in plan]
        deadline[0] = time.monotonic() + budget
        began = time.perf_counter()
        start.wait(timeout=120)
        outcomes = [outcome for future in futures for outcome in future.result()]
        wall = time.perf_counter() - began
    return mix_stats(outcomes, [shape.expect for shape in shapes], sum(len(s) for s in plan), wall)
