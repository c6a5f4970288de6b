"""How a window is split between the ledger and live collection (kubetally.ingest.live_segments).

Hours are H0..H4 = T, T+1h, ...; the ledger holds H0 and H2 (H1 is a gap before the newest hour H2).
"""

from __future__ import annotations

from kubetally.ingest import live_segments

T = 1748736000
H = 3600


def test_edges_and_new_hours_are_live_and_old_gaps_are_not() -> None:
    # Window [H0 + 30m, H4 + 10m): H0's second half is a partial edge, H1 is an old gap (backfill's
    # job, reported as coverage 0), H2 is in the ledger, H3 is newer than the ledger, H4 is a partial edge.
    segments = live_segments(T + 1800, T + 4 * H + 600, {T, T + 2 * H}, 60, newest=T + 2 * H)
    assert segments == [(T + 1800, T + H), (T + 3 * H, T + 4 * H), (T + 4 * H, T + 4 * H + 600)]


def test_an_empty_ledger_collects_everything_and_aligns_to_the_resolution() -> None:
    assert live_segments(T + 59, T + H + 61, set(), 60) == [(T, T + H), (T + H, T + H + 60)]
    assert live_segments(T, T + H, {T}, 60, newest=T) == []
