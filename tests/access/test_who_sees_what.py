"""Randomised queries from every caller on both routes, each answer checked against what that caller may see.

`world.queries` (KUBETALLY_ACCESS_QUERIES, default 1000) requests per caller and route, drawn by the
campaign's generator from the printed seed (every window form, steps, aggregates, filters, idle options,
methods, JSON/CSV, time zones, both Alauda endpoints; every 40th with curl), sent by tenant-a, tenant-p,
cost-admin, nobody and the Prometheus ServiceAccount, directly (bearer token at the pod IP) and through
the kube-apiserver (aggregated API). See `tests.access.routes` for the paths and expectations and
`tests.access.fence` for the oracle of a partial viewer.
"""

from __future__ import annotations

import ssl
from pathlib import Path

import httpx
import pytest

from tests.access.conftest import Tier
from tests.access.routes import AGGREGATED, DIRECT, Caller, Placement
from tests.access.runner import AccessRunner, drive
from tests.access.summary import SUMMARY
from tests.campaign.conftest import vocabulary
from tests.campaign.oracle import Oracle
from tests.campaign.requests import Generator
from tests.campaign.runner import DEADLINE
from tests.integration.ledgers import run_in_thread

pytestmark = pytest.mark.access
CALLERS = ("tenant-a", "tenant-p", "cost-admin", "nobody", "prometheus")


def callers(tier: Tier) -> list[Caller]:
    grants = tier.world.grants
    return [Caller(name, tier.tokens[name], None if name == "cost-admin" else grants.get(name, frozenset()))
            for name in CALLERS]


async def _campaign(tier: Tier, oracle: Oracle, log: Path) -> list[AccessRunner]:
    world, operator, plane = tier.world, tier.operator, tier.plane
    words, projects = vocabulary(tier.served)
    generator = Generator(world.seed, world.now, words, projects)
    by_project = {p: world.project_namespaces(p) for p in projects}
    trusted = ssl.create_default_context(cafile=str(plane.ca_file))
    limits = httpx.Limits(max_connections=16)
    async with (httpx.AsyncClient(base_url=operator.url, verify=operator.verify, timeout=DEADLINE,
                                  limits=limits) as direct,
                httpx.AsyncClient(base_url=plane.url, verify=trusted, timeout=DEADLINE, limits=limits) as aggregated):
        runners = []
        for caller in callers(tier):
            for route, client, ca in ((DIRECT, direct, operator.ca), (AGGREGATED, aggregated, plane.ca_file)):
                placement = Placement(world.seed, caller, route, world.namespaces, by_project)
                runner = AccessRunner(placement, client, str(ca), oracle, operator.clock, admin_scoped_ratio=False)
                runner.stats.log = log
                runners.append(runner)
        await drive(runners, generator.cases(world.queries))
    return runners


def test_every_caller_sees_exactly_what_they_may_on_both_routes(tier: Tier, oracle: Oracle, tmp_path: Path) -> None:
    log = tmp_path / "failures.log"
    runners = run_in_thread(_campaign(tier, oracle, log))
    lines = []
    for runner in runners:
        stats = runner.stats
        total = sum(stats.counts["by api"].values())
        statuses = ", ".join(f"{code} {n}" for code, n in sorted(stats.counts["by status"].items()))
        lines.append(f"  {runner.placement.label}: {total} requests ({statuses}); {stats.failed} failed; "
                     f"mean latency {stats.waiting / max(total, 1) * 1000:.0f} ms")
    seconds = runners[0].stats.seconds
    SUMMARY.append(f"access campaign: {sum(sum(r.stats.counts['by api'].values()) for r in runners)} "
                            f"requests in {seconds:.0f} s\n" + "\n".join(lines))
    print(SUMMARY[-1])
    problems = [f"{runner.placement.label}\n{runner.stats.report()}\n" + "\n".join(runner.stats.failures)
                for runner in runners if runner.stats.failed or runner.stats.server_errors]
    assert not problems, f"{tier.world.describe()}\nevery failure: {log}\n" + "\n\n".join(problems)
    for runner in runners:
        assert sum(runner.stats.counts["by api"].values()) >= tier.world.queries, runner.placement.label
