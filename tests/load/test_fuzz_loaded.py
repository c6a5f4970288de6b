"""Fuzzing a real `kubetally serve` over a loaded ledger, on a running clock at an unaligned instant.

Why: the in-process fuzz (`tests/unit/api/test_fuzz.py`) runs on an empty ledger, where a request
never reaches the engine's SQL, the live collection or the writers with rows to write; the step bug
of issue 12 lived exactly there. Here every route of a real server over 20 ledger hours of the
`small` cluster (plus the live current hour) gets seeded hostile requests (`tests.load.cases`):
`KUBETALLY_FUZZ_CASES` of them (default 300 in CI; run 10,000 or more offline), then the raw
HTTP-level garbage of `cases.PROTOCOL`.

Asserted for every answer (`tests.load.client.problems`): no 5xx; every 4xx of the application a
Kubernetes Status whose 400 message starts with a parameter the request sent or requires; a 405 for
another method on a GET route; no traceback text; an answer within `KUBETALLY_FUZZ_MAX_SECONDS`
(default 6 s: the 3-second budget of live collection plus the engine, on a loaded 2-core CI box).
Afterwards: the server is alive, /metrics keeps one series per route (hostile paths do not add
label values), and its log holds no "unexpected error" (each 500 logs its traceback there).
"""

from __future__ import annotations

import os
import re
import time
from collections import Counter

import httpx
import pytest

from tests.load.cases import PROTOCOL, Generator
from tests.load.client import TRACEBACK_MARKERS, problems, send, send_raw
from tests.load.conftest import Server

pytestmark = pytest.mark.integration
CASES = int(os.environ.get("KUBETALLY_FUZZ_CASES", "").strip() or 300)
MAX_SECONDS = float(os.environ.get("KUBETALLY_FUZZ_MAX_SECONDS", "").strip() or 6.0)
DEADLINE = 60.0  # a request without an answer after this long is a hang
ROUTES = 8  # /v2/cost, two usage routes, the result path, /healthz, /readyz, /metrics, the catch-all
SHOWN = 25


def _server_errors(server: Server) -> list[str]:
    """Lines of the server log about failures that our code did not expect, with what follows."""
    lines = server.log.read_text(errors="replace").splitlines()
    marks = [i for i, line in enumerate(lines) if "unexpected error" in line or "failed unexpectedly" in line]
    return ["\n".join(lines[i:i + 30]) for i in marks[:5]]


def test_hostile_requests_on_a_loaded_ledger(fuzz_server: Server) -> None:
    generator = Generator(fuzz_server.seed, fuzz_server.vocabulary)
    statuses: Counter[tuple[str, int]] = Counter()
    failures: list[str] = []
    slowest: list[tuple[float, str]] = []
    started = time.monotonic()
    for number in range(CASES):
        case = generator.case(number)
        reply = send(fuzz_server.url, case, DEADLINE)
        statuses[(case.route, reply.status)] += 1
        slowest = sorted([*slowest, (reply.seconds, case.describe())], reverse=True)[:5]
        failures.extend(f"{case.describe()}\n    {problem}" for problem in problems(case, reply, MAX_SECONDS))
        if (number + 1) % 1000 == 0:
            print(f"  {number + 1} cases, {len(failures)} failures, {time.monotonic() - started:.0f} s", flush=True)
        if reply.status == 0 and "Connection refused" in reply.error:
            failures.append("the server is gone; stopping")
            break
    elapsed = time.monotonic() - started
    for index, raw in enumerate(PROTOCOL):
        reply = send_raw(fuzz_server.url, raw, DEADLINE)
        statuses[("protocol", reply.status)] += 1
        shown = f"protocol case {index}: {raw[:80]!r}"
        if not 400 <= reply.status < 500:
            failures.append(f"{shown}\n    answered {reply.status} {reply.error}, not a 4xx")
        if reply.seconds > MAX_SECONDS or any(marker in reply.body for marker in TRACEBACK_MARKERS):
            failures.append(f"{shown}\n    {reply.seconds:.1f} s, body {reply.body[:200]!r}")

    health = httpx.get(f"{fuzz_server.url}/healthz", timeout=5)
    metrics = httpx.get(f"{fuzz_server.url}/metrics", timeout=5).text
    routes = set(re.findall(r'kubetally_http_request_duration_seconds_count\{[^}]*route="([^"]*)"', metrics))
    print(f"\nloaded-ledger fuzz: seed {fuzz_server.seed}, {CASES} cases + {len(PROTOCOL)} protocol cases in "
          f"{elapsed:.0f} s ({CASES / max(elapsed, 1e-9):.1f}/s); answers by route and status: "
          f"{dict(sorted(statuses.items()))}")
    print("slowest: " + "; ".join(f"{seconds:.2f} s {what[:160]}" for seconds, what in slowest))
    errors = _server_errors(fuzz_server)
    assert health.status_code == 200, f"/healthz after the fuzz: {health.status_code} {health.text[:200]}"
    assert len(routes) <= ROUTES, f"/metrics holds {len(routes)} route label values: {sorted(routes)[:20]}"
    assert not failures, (
        f"seed {fuzz_server.seed} (KUBETALLY_FUZZ_SEED={fuzz_server.seed}): {len(failures)} failures; the first "
        f"{SHOWN}:\n" + "\n".join(failures[:SHOWN]) + "\nserver log:\n" + "\n---\n".join(errors)
    )
    assert not errors, "the server logged unexpected errors:\n" + "\n---\n".join(errors)
