"""A profile of the slowest L path: cProfile of the engine answering /v2/cost on the L ledger.

Why in the bench: a target that is missed must come with where the time goes. The profile runs the
same query as the slowest HTTP figure, in-process (no HTTP), and lists the functions with the most
cumulative time; DuckDB work shows up as the `execute`/`fetch` calls of the engine's stages.
"""

from __future__ import annotations

import asyncio
import cProfile
import io
import pstats
from datetime import UTC, datetime
from pathlib import Path

from kubetally.bench.ledgers import generated_ledger
from kubetally.bench.scenarios import _NoSource
from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.vocabulary import Method
from kubetally.domain.window import Window
from kubetally.engine.query import CostQuery
from kubetally.ledger.store import DuckDBLedger
from kubetally.localprom import source_config
from kubetally.processes import Log
from kubetally.service import CostService
from kubetally.synthetic import generate, presets

TOP = 14


def profile_query(ledger_path: Path, dimension: Dimension, step_seconds: int | None) -> str:
    spec = presets.large()
    ledger = DuckDBLedger(ledger_path)
    try:
        service = CostService(ledger, _NoSource(), source_config(spec), clock=lambda: spec.end)
        window = Window(datetime.fromtimestamp(spec.end - 30 * 86400, UTC), datetime.fromtimestamp(spec.end, UTC))
        query = CostQuery(window=window, step_seconds=step_seconds, aggregate=(AggregateKey(dimension),),
                          method=Method.REQUEST)
        profiler = cProfile.Profile()
        profiler.enable()
        asyncio.run(service.cost(query))
        profiler.disable()
    finally:
        ledger.close()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(TOP)
    text = out.getvalue()
    return text[text.index("ncalls"):].rstrip() if "ncalls" in text else text


def profile_slowest(cache: Path, log: Log) -> str:
    log("==> profiling /v2/cost 30d/1h/controller and 30d/1d/namespace in-process")
    ledger_path = generated_ledger(generate(presets.large()), cache, log=log)
    parts = []
    for title, dimension, step in (("window=30d step=1h aggregate=controller", Dimension.CONTROLLER, 3600),
                                   ("window=30d step=1d aggregate=namespace", Dimension.NAMESPACE, 86400)):
        parts += [f"`{title}` (cProfile, top {TOP} by cumulative time):", "", "```",
                  profile_query(ledger_path, dimension, step), "```", ""]
    return "\n".join(parts)
