"""Send every placed case with its caller's token, check each answer against the fenced oracle, count.

Why a subclass of the campaign's `Runner`: its checks (windows on a running clock, sets tiling, JSON and
CSV against the oracle, Σ sets = unstepped, CSV = JSON, /v2/cost = Alauda money) are what every caller's
answer must pass too, on the caller's fenced question. This adds, per caller and route: the expected 403
Status where the caller may see nothing of what was asked; no row of a namespace outside the scope
(row properties, CSV cells, Alauda items); Σ cost per step = Σ of the oracle's permitted rows, and for a
partial viewer Σ costRatio = 1 per step with a non-zero total. The oracle's cross-check against
`tests.reference.reference_costs` is the campaign tier's job and is not repeated here.

One `AccessRunner` per (caller, route); `drive` interleaves them case by case (every caller asks the same
case one after the other, `WORKERS` cases at once), so the server's live parts and the oracle's priced
pieces are computed once per case.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx

from tests.access.fence import FencedOracle, fenced_v2
from tests.access.routes import Placed, Placement
from tests.campaign import checks
from tests.campaign.oracle import Oracle
from tests.campaign.requests import V2, Case, Request
from tests.campaign.runner import DEADLINE, Answer, Runner
from tests.campaign.windows import ServerClock

WORKERS = 6


class AccessRunner(Runner):
    """The campaign runner for one caller on one route (`placement`), over `client` (that route's base URL
    and TLS trust); `ca_file` is what curl trusts on that route."""

    def __init__(self, placement: Placement, client: httpx.AsyncClient, ca_file: str, base: Oracle,
                 clock: ServerClock, *, admin_scoped_ratio: bool) -> None:
        super().__init__(str(client.base_url).rstrip("/"), base, clock)
        self.placement, self.client, self.ca_file, self.base = placement, client, ca_file, base
        self.admin_scoped_ratio = admin_scoped_ratio
        self._fenced: dict[tuple[frozenset[str] | None, bool], FencedOracle] = {}

    def oracle_for(self, scope: frozenset[str] | None) -> FencedOracle:
        """The fenced oracle of `scope`: costRatio per answer for a partial viewer, and for the admin on a
        namespaced path when `admin_scoped_ratio`."""
        partial = scope is not None and (self.placement.caller.grants is not None or self.admin_scoped_ratio)
        key = (scope, partial)
        found = self._fenced.get(key)
        if found is None:
            found = self._fenced[key] = FencedOracle(self.base, scope, ratio_of_answer=partial)
        return found

    async def one(self, case: Case) -> None:
        """Send one placed case, check each answer and the joint invariants (the campaign worker's body)."""
        await self.run_case(self.client, case)

    async def _request(self, client: httpx.AsyncClient, request: Request, t_send: float) -> Answer:
        token = self.placement.caller.token
        if request.curl:
            query = [part for key, value in request.params for part in ("--data-urlencode", f"{key}={value}")]
            process = await asyncio.create_subprocess_exec(
                "curl", "-sS", "-G", "--max-time", str(DEADLINE), "--cacert", self.ca_file, "-H",
                f"Authorization: Bearer {token}", "-w", "\n%{http_code}", *query, f"{self.url}{request.path}",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
            out, err = await asyncio.wait_for(process.communicate(), DEADLINE + 5)
            text, _, code = out.decode().rpartition("\n")
            self.stats.count("transport", "curl")
            return Answer(int(code or 0), text or err.decode(), t_send, time.time())
        response = await client.get(request.path, params=tuple(request.params),
                                    headers={"Authorization": f"Bearer {token}"})
        self.stats.count("transport", "httpx")
        return Answer(response.status_code, response.text, t_send, time.time())

    def _check(self, request: Request, answer: Answer) -> Any:
        assert isinstance(request, Placed)
        stats = self.stats
        if request.forbidden:
            stats.count("by api", request.api)
            stats.count("by status", str(answer.status))
            try:
                _forbidden(answer)
                stats.count("checks", "403 Status, no data")
            except checks.Mismatch as error:
                stats.fail(request, str(error))
            return None
        self.oracle = self.oracle_for(request.scope)
        spec = request.spec
        asked = Placed(request.path, request.params, fenced_v2(spec, request.scope) if isinstance(spec, V2) else spec,
                       curl=request.curl, route=request.route, scope=request.scope)
        if answer.status == 403:
            stats.count("by api", asked.api)
            stats.fail(asked, f"403 where the caller may see {sorted(request.scope or ['everything'])}: "
                              f"{answer.text[:200]}")
            return None
        result = super()._check(asked, answer)
        if result is not None:
            try:
                self._fence_checks(asked, answer, result)
            except checks.Mismatch as error:
                stats.fail(asked, f"fence: {error}")
            except (KeyError, ValueError, TypeError) as error:
                stats.fail(asked, f"fence check crashed: {type(error).__name__}: {error}")
        return result

    def _fence_checks(self, request: Placed, answer: Answer, result: Any) -> None:
        scope, spec = request.scope, request.spec
        if isinstance(spec, V2) and spec.csv:
            shown = {line["namespace"].lstrip("'") for line in checks.csv_rows(answer.text)}
        elif isinstance(spec, V2):
            body = result[0]
            shown = {item["properties"].get("namespace") or "" for step in body["data"] for item in step.values()}
            self._totals(body)
        else:
            shown = {item["namespace"] for item in answer.json()["items"]}
        outside = shown - {""} - (scope if scope is not None else shown)
        if outside:
            raise checks.Mismatch(f"rows of namespaces {sorted(outside)} outside {sorted(scope or ())}")
        self.stats.count("checks", "no row outside the fence")

    def _totals(self, body: dict[str, Any]) -> None:
        """Σ cost per step = Σ of the oracle's permitted rows (the last question `check_v2_json` matched);
        a partial viewer's cost ratios add up to 1 per step."""
        assert isinstance(self.oracle, FencedOracle)
        expected = self.oracle.last
        for index, (got, want) in enumerate(zip(body["data"], expected, strict=True)):
            total, permitted = sum(i["cost"] for i in got.values()), sum(r["cost"] for r in want.values())
            if not checks.close(total, permitted):
                raise checks.Mismatch(f"step {index}: Σ cost {total!r}, permitted rows {permitted!r}")
            ratios = sum(i["costRatio"] for i in got.values())
            if self.oracle.ratio_of_answer and total > 0 and not checks.close(ratios, 1.0, 1e-9):
                raise checks.Mismatch(f"step {index}: a partial viewer's cost ratios add up to {ratios!r}")
        self.stats.count("checks", "totals = permitted rows' sum")

    def _cross_check(self, request: Request, spec: V2, window: tuple[int, int], known: int) -> None:
        """Not here: the campaign tier cross-checks the oracle with `tests.reference` (its filter is the
        request's text, which a fence does not change)."""


def _forbidden(answer: Answer) -> None:
    """A 403 `Status` (kind, code) without any data."""
    if answer.status != 403:
        raise checks.Mismatch(f"expected 403, got {answer.status}: {answer.text[:300]}")
    try:
        body = json.loads(answer.text)
    except ValueError as error:
        raise checks.Mismatch(f"403 without a JSON Status: {answer.text[:200]}") from error
    if body.get("kind") != "Status" or body.get("code") != 403 or "data" in body or "items" in body:
        raise checks.Mismatch(f"403 is not a bare Status: {answer.text[:300]}")


async def drive(runners: list[AccessRunner], cases: Iterator[Case], workers: int = WORKERS) -> float:
    """Every case placed for every runner, `workers` placed cases at once; returns the seconds taken."""
    started = time.monotonic()
    items = ((runner, runner.placement.place(case)) for case in cases for runner in runners)

    async def worker() -> None:
        for runner, placed in items:  # one shared iterator: each (case, runner) once, in seed order
            await runner.one(placed)

    await asyncio.gather(*(worker() for _ in range(workers)))
    elapsed = time.monotonic() - started
    for runner in runners:
        runner.stats.seconds = elapsed
    return elapsed

