"""The 16-client mix: its plan, its statistics on hand-made outcomes, and its deadlines against a
small local HTTP server (a stdlib server standing in for `kubetally serve`, whose own figures the
bench measures; here only the client side is under test)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

from kubetally.bench.mix import Outcome, Percentile, mix_plan, mix_stats, run_mix
from kubetally.bench.shapes import Goal, Shape


def test_plan_is_seeded_and_covers_every_client() -> None:
    plan = mix_plan(15, 16, 8, 10)
    assert len(plan) == 16
    assert all(len(sequence) == 8 for sequence in plan)
    assert all(0 <= index < 10 for sequence in plan for index in sequence)
    assert plan == mix_plan(15, 16, 8, 10)
    assert plan != mix_plan(16, 16, 8, 10)
    assert len({index for sequence in plan for index in sequence}) == 10  # 128 draws of 10 reach all (seed 15)


def test_statistics_count_errors_apart_from_the_expected_refusal() -> None:
    """Shape 0 expects 200, shape 1 expects 400. Sent 6 of 8 planned:
    (0, 200, 0.1) ok; (0, 200, 0.3) ok; (1, 400, 0.2) ok (the refusal); (1, 200, 0.4) error;
    (0, None, 5.0) unanswered; (0, 500, 0.05) error → 2 errors, 1 unanswered, 2 unsent.
    Sorted: 0.05 0.1 0.2 0.3 0.4 5.0; p50 rank ⌈3⌉ = 3 → 0.2 (the unanswered 5.0 is above: exact);
    p95 rank ⌈5.7⌉ = 6 → 5.0, itself a lower bound → "≥ 5.000 s"."""
    outcomes = [Outcome(0, 200, 0.1), Outcome(0, 200, 0.3), Outcome(1, 400, 0.2), Outcome(1, 200, 0.4),
                Outcome(0, None, 5.0), Outcome(0, 500, 0.05)]
    stats = mix_stats(outcomes, [200, 400], planned=8, wall_seconds=6.0)
    assert (stats.sent, stats.errors, stats.unanswered, stats.unsent, stats.clean) == (6, 2, 1, 2, False)
    assert stats.unexpected == ((0, 500, 1), (1, 200, 1))  # (shape, status, count)
    assert stats.p50 == Percentile(0.2, False)
    assert stats.p50.text == "0.200 s"
    assert stats.p95 == Percentile(5.0, True)
    assert stats.p95.text == "≥ 5.000 s"


def test_an_unanswered_request_below_the_percentile_makes_it_a_bound() -> None:
    """Durations 0.1 (unanswered), 0.2, 0.3, 0.4: p50 rank 2 → 0.2, but the unanswered request may
    really have taken longer, so p50 ≥ 0.2."""
    outcomes = [Outcome(0, None, 0.1), Outcome(0, 200, 0.2), Outcome(0, 200, 0.3), Outcome(0, 200, 0.4)]
    stats = mix_stats(outcomes, [200], planned=4, wall_seconds=1.0)
    assert stats.p50 == Percentile(0.2, True)
    assert mix_stats([], [200], planned=3, wall_seconds=0.0).p95 is None


class _Handler(BaseHTTPRequestHandler):
    """/v2/cost?aggregate=fast → 200, refused → 400, slow → 200 after 3 s."""

    def do_GET(self) -> None:
        aggregate = parse_qs(urlparse(self.path).query)["aggregate"][0]
        if aggregate == "slow":
            time.sleep(3.0)
        status = 400 if aggregate == "refused" else 200
        body = b'{"code": %d}' % status
        try:
            self.send_response(status)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (the budget test): nothing to answer

    def log_message(self, format: str, *args: object) -> None:
        pass


@contextmanager
def _server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _shape(aggregate: str, expect: int = 200) -> Shape:
    return Shape(aggregate, (("aggregate", aggregate),), Goal("p95", 1.0), expect)


def test_sixteen_clients_all_answered() -> None:
    shapes = [_shape("fast"), _shape("refused", 400)]
    plan = mix_plan(7, 16, 4, 2)
    with _server() as url:
        stats = run_mix(url, shapes, plan, budget=60.0)
    assert (stats.planned, stats.sent, stats.errors, stats.unanswered, stats.clean) == (64, 64, 0, 0, True)
    assert stats.p95 is not None
    assert not stats.p95.lower_bound


def test_the_budget_ends_the_mix_and_counts_what_it_cut() -> None:
    """Two clients, each: slow (3 s) then fast. With a 1 s budget the slow request is cut when the
    budget ends (≤ 1 s after it was sent: unanswered) and the fast one is never sent; the mix ends well
    before the 3 s answer."""
    shapes = [_shape("slow"), _shape("fast")]
    with _server() as url:
        started = time.monotonic()
        stats = run_mix(url, shapes, [[0, 1], [0, 1]], budget=1.0)
        elapsed = time.monotonic() - started
    assert elapsed < 2.5
    assert (stats.planned, stats.sent, stats.unanswered, stats.unsent, stats.errors) == (4, 2, 2, 2, 0)
    assert stats.p50 is not None
    assert stats.p50.lower_bound
    assert 0.5 < stats.p50.seconds < 1.5
