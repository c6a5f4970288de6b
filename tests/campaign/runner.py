"""Send the campaign's cases over HTTP (a few with real curl), check every answer, count everything.

Why a separate module: the test only wires fixtures; this holds the loop. Four cases run at once so
the server works on one request while the oracle checks another's answer (one event loop: the checks
are plain Python). Every request has a deadline (120 s); a 5xx, a wrong number or a broken invariant
is recorded (the first 40 in full) and the campaign goes on, so one run shows every kind of failure.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import httpx

from kubetally.domain.filters import parse_filter
from tests import reference
from tests.campaign import checks
from tests.campaign.oracle import Oracle
from tests.campaign.requests import V2, Case, Request, Usage
from tests.campaign.windows import ServerClock, zone

DEADLINE = 120.0
_QUOTED = re.compile(r"'[^']*'|\"[^\"]*\"|\([^)]*\)")
_NUMBER = re.compile(r"\d+")
WORKERS = 4
#: After this many requests without an answer (each waited DEADLINE) the campaign stops: the server hangs.
MAX_UNANSWERED = 5
CROSS_CHECK_EVERY = 20


@dataclass
class Answer:
    status: int
    text: str
    t_send: float
    t_recv: float

    def json(self) -> dict[str, Any]:
        body: dict[str, Any] = json.loads(self.text)
        return body


@dataclass
class Stats:
    counts: dict[str, Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    failures: list[str] = field(default_factory=list)
    failed: int = 0
    server_errors: int = 0
    seconds: float = 0.0
    unanswered: int = 0  # requests without any answer within the deadline
    checking: float = 0.0  # seconds spent in the oracle and checks (one thread)
    waiting: float = 0.0  # seconds requests were in flight, summed over the concurrent workers

    def count(self, table: str, key: str) -> None:
        self.counts[table][key] += 1

    log: Path | None = None  # every failure in full
    latency: dict[str, float] = field(default_factory=lambda: defaultdict(float))  # seconds in flight by API
    slowest: list[tuple[float, str]] = field(default_factory=list)

    def fail(self, request: Request, message: str) -> None:
        self.failed += 1
        self.count("failures by check", _category(message))
        text = f"{request.path}?{urlencode(request.params)}\n    {message[:1500]}"
        if len(self.failures) < 40:
            self.failures.append(text)
        if self.log is not None:
            with self.log.open("a") as out:
                out.write(text + "\n")

    def report(self) -> str:
        total = sum(self.counts["by api"].values())
        lines = [f"campaign: {total} requests in {self.seconds:.0f} s ({self.checking:.0f} s checking, "
                 f"{self.waiting / max(total, 1) * 1000:.0f} ms mean latency), {self.server_errors} answered 5xx, "
                 f"{self.failed} failed checks"]
        for table in sorted(self.counts):
            cells = ", ".join(f"{key} {value}" for key, value in sorted(self.counts[table].items()))
            lines.append(f"  {table}: {cells}")
        means = ", ".join(f"{api} {seconds / self.counts['by api'][api] * 1000:.0f} ms"
                          for api, seconds in sorted(self.latency.items()))
        lines.append(f"  mean latency by api: {means}")
        lines += [f"  slow: {seconds:.1f} s {url[:200]}" for seconds, url in self.slowest]
        return "\n".join(lines)


class Runner:
    def __init__(self, url: str, oracle: Oracle, clock: ServerClock) -> None:
        self.url, self.oracle, self.clock = url, oracle, clock
        self.stats = Stats()
        self.v2_answers = 0

    async def run(self, cases: Iterator[Case]) -> Stats:
        started = time.monotonic()
        async with httpx.AsyncClient(base_url=self.url, timeout=DEADLINE) as client:
            await asyncio.gather(*(self._worker(client, cases) for _ in range(WORKERS)))
        self.stats.seconds = time.monotonic() - started
        return self.stats

    async def _worker(self, client: httpx.AsyncClient, cases: Iterator[Case]) -> None:
        for case in cases:  # one shared iterator: each case is drawn once, in seed order
            if not await self.run_case(client, case):
                return

    async def run_case(self, client: httpx.AsyncClient, case: Case) -> bool:
        """Send one case, check each answer and the joint invariants; False once the server hangs."""
        if self.stats.unanswered >= MAX_UNANSWERED:
            self.stats.fail(case.requests[0], f"stopped: {self.stats.unanswered} requests got no answer")
            return False
        answers = [await self._send(client, request) for request in case.requests]
        started = time.monotonic()
        results = [self._check(request, answer) for request, answer in zip(case.requests, answers, strict=True)]
        try:
            self._joint(case, answers, results)
        except checks.Mismatch as error:
            self.stats.fail(case.requests[0], f"{case.kind}: {error}")
        self.stats.checking += time.monotonic() - started
        return True

    async def _send(self, client: httpx.AsyncClient, request: Request) -> Answer:
        t_send = time.time()
        try:
            return await self._request(client, request, t_send)
        except (httpx.HTTPError, TimeoutError, OSError, ValueError) as error:  # no answer within the deadline
            self.stats.unanswered += 1
            return Answer(0, f"no answer: {type(error).__name__}: {error}", t_send, time.time())
        finally:
            elapsed = time.time() - t_send
            self.stats.waiting += elapsed
            self.stats.latency[request.api] += elapsed
            self.stats.slowest = sorted([*self.stats.slowest, (elapsed, f"{request.path}?{urlencode(request.params)}")],
                                        reverse=True)[:5]

    async def _request(self, client: httpx.AsyncClient, request: Request, t_send: float) -> Answer:
        if request.curl:
            query = [part for key, value in request.params for part in ("--data-urlencode", f"{key}={value}")]
            process = await asyncio.create_subprocess_exec(
                "curl", "-sS", "-G", "--max-time", str(DEADLINE), "-w", "\n%{http_code}", *query,
                f"{self.url}{request.path}", stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), DEADLINE + 5)
            text, _, code = out.decode().rpartition("\n")
            self.stats.count("transport", "curl")
            return Answer(int(code or 0), text or err.decode(), t_send, time.time())
        response = await client.get(request.path, params=tuple(request.params))
        self.stats.count("transport", "httpx")
        return Answer(response.status_code, response.text, t_send, time.time())

    def _check(self, request: Request, answer: Answer) -> Any:
        """Check one answer; returns what joint checks need (the JSON body, the window), or None."""
        spec, stats = request.spec, self.stats
        stats.count("by api", request.api)
        stats.count("by status", str(answer.status))
        if isinstance(spec, V2):
            stats.count("v2 by window form", spec.form)
            stats.count("v2 by step", "none" if spec.step is None else f"{spec.step // 3600}h")
            stats.count("v2 by time zone", spec.tz or "(default)")
        if answer.status >= 500:
            stats.server_errors += 1
            stats.fail(request, f"{answer.status}: {answer.text[:300]}")
            return None
        try:
            if answer.status == 400:
                self._refusal(request, answer)
                return None
            if answer.status != 200:
                raise checks.Mismatch(f"status {answer.status}: {answer.text[:300]}")
            if isinstance(spec, Usage):
                return checks.check_usage(answer.json(), spec, self.oracle, self.clock, answer.t_send, answer.t_recv)
            if spec.cap is not None:
                raise checks.Mismatch(f"cap {spec.cap} not applied: 200")
            if spec.csv:
                stats.count("checks", "csv = oracle")
                return checks.check_v2_csv(answer.text, spec, self.oracle, self.clock, answer.t_send, answer.t_recv)
            body = answer.json()
            window, known = checks.check_v2_json(body, spec, self.oracle, self.clock, answer.t_send, answer.t_recv)
            stats.count("checks", "json = oracle, sets tile")
            self._cross_check(request, spec, window, known)
            return body, (window, known)
        except checks.Mismatch as error:
            stats.fail(request, str(error))
        except (AssertionError, KeyError, ValueError, TypeError) as error:
            stats.fail(request, f"check crashed: {type(error).__name__}: {error}")
        return None

    def _refusal(self, request: Request, answer: Answer) -> None:
        """A 400 is right for a request meant to hit a cap (its message names the cap) and for a
        relative window that is empty at the server's minute (`today` in its first minute)."""
        message = answer.json().get("message", "")
        spec = request.spec
        if isinstance(spec, V2) and spec.cap is not None:
            if checks.CAP_MESSAGES[spec.cap] not in message:
                raise checks.Mismatch(f"cap {spec.cap}: the 400 does not name it: {message}")
            self.stats.count("400 by reason", f"cap {spec.cap}")
            return
        if isinstance(spec, V2) and "is empty" in message:
            windows = checks.candidate_windows(spec, self.clock, answer.t_send, answer.t_recv)
            if any(a >= b for a, b in windows):
                self.stats.count("400 by reason", "empty window")
                return
        raise checks.Mismatch(f"a valid request answered 400: {message}")

    def _cross_check(self, request: Request, spec: V2, window: tuple[int, int], known: int) -> None:
        self.v2_answers += 1
        sets = reference.cut_sets(window[0], window[1], spec.step, zone(spec.tz))
        if self.v2_answers % CROSS_CHECK_EVERY or len(sets) > 30:
            return
        text = dict(request.params).get("filter")
        self.oracle.cross_check(checks.question(spec, sets, known), spec.step, zone(spec.tz),
                                None if text is None else parse_filter(text))
        self.stats.count("checks", "oracle = reference_costs")

    def _joint(self, case: Case, answers: list[Answer], results: list[Any]) -> None:
        if any(result is None for result in results) or case.kind == "single":
            return
        if case.kind == "twin-unstepped":
            (stepped, window), (whole, other) = results  # window: (bounds, where facts ended)
            if window != other:
                self.stats.count("checks", "Σ sets skipped: the clock moved")
                return
            spec = case.requests[0].spec
            assert isinstance(spec, V2)
            span = window[0]
            bounds = [a for a, _ in reference.cut_sets(span[0], span[1], spec.step, zone(spec.tz))[1:]]
            by_pod = any(key.dimension == "pod" for key in spec.aggregate)
            if all(bound % 3600 == 0 for bound in bounds):
                checks.check_sets_add_up(stepped, whole, by_pod)
                self.stats.count("checks", "Σ sets = unstepped")
            else:
                checks.check_sets_add_up(stepped, whole, by_pod, checks.QUANTITIES)
                self.stats.count("checks", "Σ sets = unstepped (quantities: sets cut hours)")
        elif case.kind == "twin-json":
            csv_window, (body, window) = results
            if csv_window != window:
                self.stats.count("checks", "csv = json skipped: the clock moved")
                return
            checks.check_csv_equals_json(answers[0].text, body)
            self.stats.count("checks", "csv = json")
        elif case.kind == "same-money":
            body, _ = results[0]
            ack: dict[str, float] = defaultdict(float)
            for step in body["data"]:
                for name, item in step.items():
                    ack[name] += item["cost"]
            alauda: dict[str, float] = defaultdict(float)
            for answer in answers[1:]:
                for item in answer.json()["items"]:
                    alauda[item["namespace"]] += item["cost"]
            names = set(ack) | set(alauda)
            if not all(checks.close(ack.get(name, 0.0), alauda.get(name, 0.0)) for name in names):
                raise checks.Mismatch(f"/v2/cost by namespace {ack} != Alauda Cpu + Memory {dict(alauda)}")
            self.stats.count("checks", "v2 namespace cost = Alauda Cpu + Memory")


def _category(message: str) -> str:
    """A failure's kind, for counting: its text up to the first colon without names and numbers."""
    return _NUMBER.sub("N", _QUOTED.sub("…", message.split(":")[0]))[:70]
