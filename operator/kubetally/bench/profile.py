"""A profile of the slowest L paths: cProfile of the engine answering /v2/cost on the L ledger.

Why in the bench: the figures say how long, the profile says where. It runs the HTTP figures'
queries in-process, on this thread (so cProfile sees the engine, not a thread pool's wait), through
the rollups the service would use, and lists the functions with the most cumulative time; DuckDB
work shows up as the `execute`/`fetch*` calls.
"""

from __future__ import annotations

import cProfile
import io
import pstats
from datetime import UTC, datetime
from pathlib import Path

from kubetally.bench.ledgers import generated_ledger
from kubetally.bench.scenarios import NoSource
from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.vocabulary import Method
from kubetally.domain.window import Window
from kubetally.engine import pipeline
from kubetally.engine.plan import plan_cost
from kubetally.engine.query import CostQuery
from kubetally.ledger.store import DuckDBLedger
from kubetally.localprom import source_config
from kubetally.processes import Log
from kubetally.service import MAX_ROWS, CostService
from kubetally.synthetic import generate, presets

TOP = 14


def profile_query(ledger_path: Path, dimension: Dimension, step_seconds: int | None) -> str:
    spec = presets.large()
    ledger = DuckDBLedger(ledger_path)
    try:
        service = CostService(ledger, NoSource(), source_config(spec), clock=lambda: spec.end)
        start, end = spec.end - 30 * 86400, spec.end
        window = Window(datetime.fromtimestamp(start, UTC), datetime.fromtimestamp(end, UTC))
        query = CostQuery(window=window, step_seconds=step_seconds, aggregate=(AggregateKey(dimension),),
                          method=Method.REQUEST)
        prices, _ = service.books(None)
        profiler = cProfile.Profile()
        profiler.enable()
        rollups = plan_cost(query, prices)
        with ledger.facts(start, end, plan=rollups) as facts:
            pipeline.compute(facts, prices, query, plan=rollups, max_rows=MAX_ROWS)
        profiler.disable()
    finally:
        ledger.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(TOP)
    text = out.getvalue()
    return text[text.index("ncalls"):].rstrip() if "ncalls" in text else text


def profile_slowest(cache: Path, log: Log) -> str:
    log("==> profiling /v2/cost 30d/1d/controller and 30d/1d/namespace in-process")
    ledger_path = generated_ledger(generate(presets.large()), cache, log=log)
    parts = []
    for title, dimension, step in (("window=30d step=1d aggregate=controller", Dimension.CONTROLLER, 86400),
                                   ("window=30d step=1d aggregate=namespace", Dimension.NAMESPACE, 86400)):
        parts += [f"`{title}` (cProfile, top {TOP} by cumulative time):", "", "```",
                  profile_query(ledger_path, dimension, step), "```", ""]
    return "\n".join(parts)
