"""Answering cost and usage questions: the ledger's hours, live edges, and the price books.

Both HTTP APIs (and, later, CostReports) call this one service, so the same window gives the same
numbers everywhere (CORRECTNESS.md row 18). For a question it:

1. plans the window: complete hours from the ledger, the rest collected live (`ingest.window_facts`);
2. picks the price books: the CostWeights named `default` prices `cost`, the one named by
   `customWeights` prices `customCost`; without any CostWeights, OpenCost's public defaults (USD)
   apply and the answer says so;
3. plans the rollups once (`engine.plan.plan_cost`, `plan_usage`: which stored level, method and
   price fingerprint may answer, or facts only) and hands that one plan to the ledger, which fetches
   the rows stored for it for the hours it holds built, and to the engine, which trusts it;
4. runs the pure engine on a private ledger cursor, in a worker thread, so the event loop stays free,
   at most `max_queries` at a time (`turn`): sixteen clients on two cores gain nothing from sixteen
   DuckDB queries at once, and each holds its working memory and its answer until the body is
   written; the others wait their turn (issue 15: peak memory under 16 clients).
   `refresh_rollups` keeps the rollups built for the default prices; the ingest loops call it after
   every pass.

CostWeights come from `record_weights` (YAML files in `kubetally serve`, CRs in the operator); each
change becomes a price version in the ledger, so history keeps its prices.
"""

from __future__ import annotations

import asyncio
from bisect import bisect_left, bisect_right
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace

from kubetally import ingest
from kubetally.domain.errors import SpecError
from kubetally.domain.prices import PriceBook, opencost_default
from kubetally.domain.sets import floor_to
from kubetally.domain.timeparse import format_rfc3339
from kubetally.engine import pipeline, usage
from kubetally.engine.plan import plan_cost, plan_usage
from kubetally.engine.query import CostQuery, CostTable, Renderer, UsageQuery, UsageRow
from kubetally.ledger.pricebook import PriceBooks, record_cost_weights
from kubetally.ledger.store import DuckDBLedger
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.collect import RangeSource

DEFAULT_WEIGHTS = "default"
#: The most groups (distinct rows per step) one answer may hold (CORRECTNESS.md S5).
MAX_GROUPS = 50_000
#: The most workload rows (groups × steps) one answer may hold: 30 days by hour of 500 namespaces
#: (360k) fits; 30 days by hour of 2.6k controllers (1.9M, ~1 GB of JSON) is refused with a 400.
MAX_ROWS = 400_000


#: Whether the current task holds one of the service's turns (`CostService.turn`).
_HOLDING: ContextVar[bool] = ContextVar("holding_a_turn", default=False)


@dataclass(frozen=True, slots=True)
class CostAnswer:
    """An engine table, how the window was answered, and its coverage: the mean coverage of the
    window's hours (1.0 when every hour had data throughout), computed once when the answer is made
    (a field, so readers of the answer need not call back into the service)."""

    table: CostTable
    plan: ingest.WindowPlan
    coverage: float

    @classmethod
    def of(cls, table: CostTable, plan: ingest.WindowPlan) -> CostAnswer:
        values = list(plan.coverage.values())
        return cls(table=table, plan=plan, coverage=sum(values) / len(values) if values else 0.0)

    def step_coverage(self, steps: Sequence[tuple[int, int]]) -> list[float | None]:
        """The coverage of each step [a, b) (unix seconds): the mean coverage of the window's hours,
        each weighted by the seconds it shares with the step (a step may cut an hour: a window's
        partial edge hours, a step grid in a +05:30 time zone):

            coverage(a, b) = Σ_h c_h · |[h, h+3600) ∩ [a, b)| / Σ_h |[h, h+3600) ∩ [a, b)|

        over the hours h of the plan; None for a step that shares no second with any. 0 means no data
        at all in the step: a client draws it as a gap, never as cost 0 (`api.payloads`: the answer's `steps`)."""
        out: list[float | None] = []
        hours = sorted(self.plan.coverage)
        for a, b in steps:  # only the hours that can overlap [a, b): O(steps + hours) in all
            weighted, seconds = 0.0, 0
            for hour in hours[bisect_right(hours, a - ingest.HOUR):bisect_left(hours, b)]:
                shared = min(b, hour + ingest.HOUR) - max(a, hour)
                if shared > 0:
                    weighted += self.plan.coverage[hour] * shared
                    seconds += shared
            out.append(weighted / seconds if seconds else None)
        return out


class CostService:
    """The one place that turns a query into numbers."""

    def __init__(
        self, ledger: DuckDBLedger, source: RangeSource, config: SourceConfig, clock: Callable[[], int],
        *, max_queries: int = 2,
    ) -> None:
        if max_queries < 1:
            raise ValueError(f"max_queries must be at least 1, got {max_queries}")
        self.ledger = ledger
        self.source = source
        self.config = config
        self.clock = clock
        self.price_books = PriceBooks(ledger)
        self._turns = asyncio.Semaphore(max_queries)

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """One of the `max_queries` turns: waits until one is free, holds it for the block. A caller
        that also writes the answer's body holds its turn until the body is written (`api.app`),
        so at most `max_queries` answers exist at once; `cost` and `usage` take a turn themselves
        unless their caller holds one already."""
        if _HOLDING.get():
            yield
            return
        async with self._turns:
            token = _HOLDING.set(True)
            try:
                yield
            finally:
                _HOLDING.reset(token)

    def record_weights(self, name: str, spec: Mapping[str, object]) -> bool:
        """Store CostWeights `name` as a new price version if it changed (SpecError if invalid)."""
        return record_cost_weights(self.ledger, name, spec, observed_at=self.clock())

    def books(self, custom: str | None) -> tuple[PriceBook, PriceBook | None]:
        """The default book (or OpenCost's defaults) and the custom one; an unknown custom name is
        a SpecError naming the CostWeights that exist. Read from the ledger's price versions only
        when they changed (`PriceBooks`): the same stamp gives the same books, parsed once."""
        if not custom:
            return self.price_books.books(DEFAULT_WEIGHTS)[0] or opencost_default(), None
        stored, book = self.price_books.books(DEFAULT_WEIGHTS, custom)
        default = stored or opencost_default()
        if book is None:
            raise SpecError("customWeights", f"no CostWeights named {custom!r}; create it, or omit customWeights")
        return default, book

    async def cost(self, query: CostQuery, custom_weights: str | None = None, *,
                   render: Renderer | None = None) -> CostAnswer:
        """The answer to `query`; with `render` (a body's writer, `engine.query.Renderer`), its workload
        rows come back as text written in DuckDB, not as row objects."""
        start, end = query.window.start_epoch(), query.window.end_epoch()
        prices, custom = self.books(custom_weights)
        cuts = [window.start_epoch() for window in query.sets[1:]]
        known = self._until_now(start, end)
        live, plan = await ingest.window_facts(self.source, self.ledger, self.config, start, known, cuts)
        if known < end:
            plan = replace(plan, warnings=(*plan.warnings, _future(known, end)))
        rollups = plan_cost(query, prices, custom_prices=custom)

        def compute() -> CostTable:
            with self.ledger.facts(start, end, live, plan=rollups, hours=plan.ledger_hours) as facts:
                return pipeline.compute(facts, prices, query, custom_prices=custom, plan=rollups, max_rows=MAX_ROWS,
                                        render=render)

        async with self.turn():
            table = await asyncio.to_thread(compute)
        groups = table.most_rows_in_a_step
        if groups > MAX_GROUPS:
            raise SpecError(
                "aggregate",
                f"the answer has {groups} groups in one step, over the cap of {MAX_GROUPS}; aggregate more coarsely "
                "(e.g. aggregate=namespace) or add a filter",
            )
        return CostAnswer.of(table, plan)

    async def refresh_rollups(self) -> int:
        """Build the rollups of every ledger hour not stored for the current default prices (in a
        worker thread; a price change rebuilds them all). Returns the hour-builds done."""
        prices, _ = self.books(None)
        return await asyncio.to_thread(self.ledger.build_rollups, prices)

    def _until_now(self, start: int, end: int) -> int:
        """`end`, or now (floored to the resolution) if sooner: hours after now have no data yet, and
        asking the store for them live would only spend the request's live budget."""
        now = self.clock()
        return min(end, max(start, floor_to(now, self.config.resolution_seconds)))

    async def usage(self, query: UsageQuery) -> tuple[UsageRow, ...]:
        if not query.periods:
            return ()
        start, end = query.periods[0].window.start_epoch(), query.periods[-1].window.end_epoch()
        end = self._until_now(start, end)
        prices, _ = self.books(None)
        cuts = [period.window.start_epoch() for period in query.periods[1:]]
        live, plan = await ingest.window_facts(self.source, self.ledger, self.config, start, end, cuts)
        rollups = plan_usage(query, prices)

        def compute() -> tuple[UsageRow, ...]:
            with self.ledger.facts(start, end, live, plan=rollups, hours=plan.ledger_hours) as facts:
                return usage.compute_usage(facts, prices, query, plan=rollups)

        async with self.turn():
            return await asyncio.to_thread(compute)


def _future(known: int, end: int) -> str:
    return (f"the window ends at {format_rfc3339(end)}, after now ({format_rfc3339(known)}): the time after "
            "now has no data yet")
