"""The rollup plan: whether stored rollups may answer a query, decided once per request.

Stored rollups (`engine.rollup`) hold an hour's engine result at a coarse level, priced by one book
and one method. Whether they may answer a question, and which of them, depends on the question and
the prices only, so it is decided here and nowhere else: the service asks `plan_cost` or
`plan_usage` once, hands the plan to the ledger (which fetches the stored rows of that level and
fingerprint for the hours it holds built, and leaves those hours out of the facts) and to the
engine (which adds those rows to the live ones without deciding again; `stored_for` checks only
that the rows it was handed were fetched for the plan it was given). `None` means facts only.

A cost query may read stored rows when (`usable`, then `rollup.level_for`):
- its method is maintained (`rollup.METHODS`): stored money is priced by one method;
- it has no customWeights: stored money is priced by the default book only;
- it reads idle shares only as the rows were stored (weighted over the cluster), or reads none: a
  query reads shares when it shares idle, and when it shows idle under a filter (its idle rows are
  then the Σ of the kept pods' shares, `pipeline` stage 9);
- and a level keeps every column its aggregate keys read and its filter tests (the pod level
  keeps all of them, so any key and any filter may read it).

The plan also carries the query's set boundaries, and whether day rows may answer at all: a
stored UTC day is read only where no boundary falls inside it (`RollupPlan.day_fits`), and never
when idle is shared (`engine.rollup`: unallocated idle is hourly).

Alauda Cpu and Memory usage read the namespace level (container cost: no idle, no shares; a
usage filter names only cluster, namespace and project, which that level keeps); Storage and
ProjectQuota, and methods not maintained, read the facts.
"""

from __future__ import annotations

from dataclasses import dataclass

from kubetally.domain.prices import PriceBook
from kubetally.domain.vocabulary import Item, Method, ShareSplit
from kubetally.engine import filtering, rollup
from kubetally.engine.query import CostQuery, UsageQuery


@dataclass(frozen=True, slots=True)
class RollupPlan:
    """The stored rows a query reads: those of `level`, priced by `method` at the book named by
    `fingerprint` (`rollup.fingerprint`). Hours not stored for it are computed from their facts.
    `boundaries` are the starts of the query's sets after the first (unix seconds); with `days`,
    a stored UTC day no boundary cuts may be read as one row per group."""

    method: Method
    fingerprint: str
    level: str
    boundaries: tuple[int, ...] = ()
    days: bool = True

    def day_fits(self, day_start: int) -> bool:
        """Whether the UTC day from `day_start` may be read from day rows: days are allowed and no
        set boundary falls strictly inside it."""
        return self.days and not any(day_start < b < day_start + rollup.DAY for b in self.boundaries)


def usable(*, method: Method, has_custom: bool, reads_shares: bool, split: ShareSplit, idle_by_node: bool) -> bool:
    """Whether stored rows answer a cost query with these settings (the list in the module docstring)."""
    shares_as_stored = not reads_shares or (split is ShareSplit.WEIGHTED and not idle_by_node)
    return method in rollup.METHODS and not has_custom and shares_as_stored


def reads_shares(query: CostQuery) -> bool:
    """Whether the answer reads pods' idle shares: with shareIdle, and for idle rows under a filter."""
    return query.share_idle or (query.idle and query.filter is not None)


def plan_cost(query: CostQuery, prices: PriceBook, *, custom_prices: PriceBook | None = None) -> RollupPlan | None:
    """The stored rows that answer `query` priced by `prices` (and `custom_prices` for customCost),
    or None: facts only."""
    fits = usable(method=query.method, has_custom=custom_prices is not None, reads_shares=reads_shares(query),
                  split=query.share_split, idle_by_node=query.idle_by_node)
    level = rollup.level_for(query.aggregate, filtering.columns_read(query.filter)) if fits else None
    boundaries = tuple(window.start_epoch() for window in query.sets[1:])
    return _plan(query.method, prices, level, boundaries, days=not query.share_idle)


def plan_usage(query: UsageQuery, prices: PriceBook) -> RollupPlan | None:
    """The stored rows that answer an Alauda usage query priced by `prices`: the namespace level for
    Cpu and Memory by a maintained method, else None (facts only)."""
    reads_containers = query.item in (Item.CPU, Item.MEMORY)
    level = "namespace" if query.method in rollup.METHODS and reads_containers else None
    return _plan(query.method, prices, level, tuple(period.window.start_epoch() for period in query.periods[1:]))


def _plan(method: Method, prices: PriceBook, level: str | None, boundaries: tuple[int, ...], *,
          days: bool = True) -> RollupPlan | None:
    if level is None:
        return None
    return RollupPlan(method, rollup.fingerprint(prices, method), level, boundaries, days)


def stored_for(stored: rollup.Stored | None, plan: RollupPlan | None) -> rollup.Stored | None:
    """`stored` (the rows the ledger fetched), once checked to be of `plan`'s method and level: rows
    fetched for another plan, or handed to a facts-only computation, are a caller's error (ValueError).
    Nothing is decided here: the plan is trusted."""
    if stored is not None and (plan is None or (stored.method, stored.level) != (plan.method, plan.level)):
        wanted = "facts only" if plan is None else f"{plan.method.value} rows at level {plan.level}"
        raise ValueError(f"stored {stored.method.value} rows at level {stored.level} cannot answer this query "
                         f"(its plan: {wanted})")
    return stored
