"""A realistic query mix run by concurrent clients, and a /healthz poller beside it.

Why threads and `http.client`: each client is one keep-alive connection sending one request after
the other, as a dashboard or a script does; the GIL is released while a thread waits on its socket,
so 16 threads keep 16 requests in flight. Every request has a deadline (`timeout`). /healthz is
polled from a process of its own (`tests.load.poller`).

The mix (weights in brackets) is what users of the two APIs ask for, with relative windows that
end at the server's running clock, off the hour:

    /v2/cost  window=7d&aggregate=namespace&step=1d [3]   window=2d&step=1h [1]
              window=12h&step=1h&aggregate=namespace [2]  window=7d&aggregate=controller [2]
              window=3d&aggregate=label:app&step=1d [1]   window=24h&aggregate=controller&filter=namespace:"ns-003" [2]
              window=yesterday&aggregate=project&shareIdle=true&idleByNode=true [1]
              window=7d&aggregate=namespace&format=csv [1] window=48h&aggregate=namespace,label:team&
              filter=label[team]:"__unallocated__" [1]    window=today&aggregate=namespace&step=1h&timeZone=Asia/Shanghai [1]
    Alauda    costs/usage kind=namespace_all&step=day over the week [2]
              projects/project-03/costs/usage kind=namespace&name=ns-003&item=Memory [1]
              costs/usage kind=project_all&step=week&item=Storage [1]
"""

from __future__ import annotations

import http.client
import random
import statistics
import subprocess
import sys
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote, urlsplit

ALAUDA = "/platform/cost.alauda.io/v1beta1"
ROOT = Path(__file__).resolve().parents[2]
#: The words of the warning an answer carries when its live parts did not arrive within the budget.
LIVE_CUT = b"within the live budget"


def mix(first_day: str, last_day: str) -> list[tuple[str, str, int]]:
    """(name, request-target, weight) of the realistic queries over the data's days."""
    week = f"start={first_day}&end={last_day}"
    cost = [
        ("7d/1d/namespace", "window=7d&aggregate=namespace&step=1d", 3),
        ("2d/1h/pod", "window=2d&step=1h", 1),
        ("12h/1h/namespace", "window=12h&step=1h&aggregate=namespace", 2),
        ("7d/controller", "window=7d&aggregate=controller", 2),
        ("3d/1d/label:app", "window=3d&aggregate=label:app&step=1d", 1),
        ("24h/controller/ns-003", 'window=24h&aggregate=controller&filter=namespace:"ns-003"', 2),
        ("yesterday/project/shared", "window=yesterday&aggregate=project&shareIdle=true&idleByNode=true", 1),
        ("7d/namespace/csv", "window=7d&aggregate=namespace&format=csv", 1),
        ("48h/team-unallocated", 'window=48h&aggregate=namespace,label:team&filter=label[team]:"__unallocated__"', 1),
        ("today/1h/Shanghai", "window=today&aggregate=namespace&step=1h&timeZone=Asia/Shanghai", 1),
    ]
    alauda = [
        ("alauda/namespace_all/day", f"{ALAUDA}/costs/usage?{week}&kind=namespace_all&step=day", 2),
        ("alauda/project-03/ns-003", f"{ALAUDA}/projects/project-03/costs/usage?{week}&kind=namespace&name=ns-003"
                                     "&item=Memory", 1),
        ("alauda/project_all/week", f"{ALAUDA}/costs/usage?{week}&kind=project_all&step=week&item=Storage", 1),
    ]
    encoded = [(name, "/v2/cost?" + "&".join(_encode(part) for part in query.split("&")), weight)
               for name, query, weight in cost]
    return encoded + alauda


def _encode(part: str) -> str:
    key, _, value = part.partition("=")
    return f"{key}={quote(value, safe=',:')}"


@dataclass
class Results:
    """What the clients saw: per query name, (status, seconds) of every answer; /healthz latencies."""

    answers: dict[str, list[tuple[int, float]]] = field(default_factory=lambda: defaultdict(list))
    health: list[tuple[int, float]] = field(default_factory=list)
    #: Per query name, the answers whose live edges were cut by the live budget (coverage < 1, a warning).
    cut: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    examples: dict[tuple[str, int], bytes] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def record(self, name: str, status: int, seconds: float, body: bytes) -> None:
        with self.lock:
            self.answers[name].append((status, seconds))
            self.cut[name] += LIVE_CUT in body
            if status != 200:
                self.examples.setdefault((name, status), body[:400])


def _connection(url: str, timeout: float) -> http.client.HTTPConnection:
    parts = urlsplit(url)
    return http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port or 80, timeout=timeout)


def _client(url: str, queries: list[tuple[str, str, int]], rng: random.Random, until: float, timeout: float,
            results: Results) -> None:
    connection = _connection(url, timeout)
    names = [q for q in queries for _ in range(q[2])]
    try:
        while time.monotonic() < until:
            name, target, _ = rng.choice(names)
            started = time.monotonic()
            try:
                connection.request("GET", target)
                response = connection.getresponse()
                body = response.read()
                results.record(name, response.status, time.monotonic() - started, body)
            except (OSError, http.client.HTTPException) as error:
                results.record(name, 0, time.monotonic() - started, repr(error).encode())
                connection.close()
                connection = _connection(url, timeout)
    finally:
        connection.close()


def run(url: str, queries: list[tuple[str, str, int]], *, clients: int, seconds: float, seed: int,
        timeout: float = 120.0, health_every: float = 0.5) -> Results:
    """`clients` clients (client i draws from `random.Random(seed + i)`) for `seconds`, and the /healthz
    poller (`tests.load.poller`, its own process) every `health_every` seconds."""
    results = Results()
    poller = subprocess.Popen([sys.executable, "-m", "tests.load.poller", url, str(seconds), str(health_every)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        until = time.monotonic() + seconds
        threads = [threading.Thread(target=_client, args=(url, queries, random.Random(seed + i), until, timeout,
                                                          results)) for i in range(clients)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        output, _ = poller.communicate(timeout=30)
    finally:
        if poller.poll() is None:
            poller.kill()
            poller.wait()
    results.health = [(int(status), float(took)) for status, took in (line.split() for line in output.splitlines())]
    return results


def once(url: str, queries: list[tuple[str, str, int]], timeout: float = 120.0) -> Results:
    """Every query once, one after the other: the latencies of an unloaded server, for comparison."""
    results = Results()
    connection = _connection(url, timeout)
    try:
        for name, target, _ in queries:
            started = time.monotonic()
            connection.request("GET", target)
            response = connection.getresponse()
            results.record(name, response.status, time.monotonic() - started, response.read())
    finally:
        connection.close()
    return results


def quantile(values: list[float], q: float) -> float:
    """The q-quantile (inclusive method) of `values`; the value itself for a single one."""
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[round(q * 100) - 1]


def table(results: Results, seconds: float) -> str:
    """Per query: answers, 5xx and other non-200 counts, p50, p95 and max latency, and answers whose
    live edges the budget cut (`cut`); then the totals and /healthz."""
    lines = [f"{'query':<28} {'n':>5} {'5xx':>4} {'other':>5} {'p50 s':>7} {'p95 s':>7} {'max s':>7} {'cut':>4}"]
    every: list[float] = []
    for name, answers in sorted(results.answers.items()):
        times = [t for _, t in answers]
        every += times
        server_errors = sum(status >= 500 for status, _ in answers)
        others = sum(status != 200 and status < 500 for status, _ in answers)
        lines.append(f"{name:<28} {len(answers):>5} {server_errors:>4} {others:>5} {quantile(times, 0.5):>7.3f} "
                     f"{quantile(times, 0.95):>7.3f} {max(times):>7.3f} {results.cut[name]:>4}")
    if every:
        lines.append(f"{'all':<28} {len(every):>5} {'':>4} {'':>5} {quantile(every, 0.5):>7.3f} "
                     f"{quantile(every, 0.95):>7.3f} {max(every):>7.3f}   ({len(every) / seconds:.1f} answers/s)")
    health = [t for _, t in results.health]
    if health:
        lines.append(f"{'/healthz (poller)':<28} {len(health):>5} {'':>4} "
                     f"{sum(status != 200 for status, _ in results.health):>5} {quantile(health, 0.5):>7.3f} "
                     f"{quantile(health, 0.95):>7.3f} {max(health):>7.3f}")
    return "\n".join(lines)
