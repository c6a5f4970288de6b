"""Lines for the end of the access tier's run (seed, counts, timings, findings), printed by its conftest's
`pytest_terminal_summary` even when output is captured. A module of its own: pytest may import the
conftest under a second name, and a list there would not be the one the tests append to."""

from __future__ import annotations

SUMMARY: list[str] = []
