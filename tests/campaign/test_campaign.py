"""The differential campaign: thousands of random valid requests on a running clock, each checked exactly.

Every answer must be 200 (or the 400 of a documented cap, naming it) and equal the oracle computed from the
generator's facts for the window the server reports; sets tile the window; Σ sets = the unstepped answer;
rows + idle = the cluster cost; CSV = JSON; /v2/cost by namespace = Alauda Cpu + Memory money. See
`tests/campaign/*` for each piece and README (test tiers) for the knobs.
"""

from __future__ import annotations

import os
import time
from datetime import timedelta, timezone
from pathlib import Path

import pytest

from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.vocabulary import Method, ShareSplit
from tests import reference
from tests.campaign import conftest
from tests.campaign.cluster import Campaign
from tests.campaign.oracle import CostQuestion, Oracle
from tests.campaign.requests import Generator
from tests.campaign.runner import Runner
from tests.integration.ledgers import run_in_thread
from tests.support.clusters import Served

pytestmark = pytest.mark.campaign


def test_every_valid_request_answers_exactly_on_a_moving_clock(
    campaign: Campaign, campaign_served: Served, campaign_server: conftest.Server, campaign_oracle: Oracle,
    tmp_path: Path,
) -> None:
    words, projects = conftest.vocabulary(campaign_served)
    generator = Generator(campaign.seed, campaign.now, words, projects)
    runner = Runner(campaign_server.url, campaign_oracle, campaign_server.clock)
    runner.stats.log = tmp_path / "failures.log"
    serve_cpu = cpu_seconds(campaign_server.url)
    checks_cpu = time.process_time()
    stats = run_in_thread(runner.run(generator.cases(campaign.requests)))
    clock = campaign_server.clock
    conftest.SUMMARY[:] = [campaign.describe(), stats.report(),
                           f"  server clock offset known to {clock.hi - clock.lo:.2f} s; CPU: kubetally serve "
                           f"{cpu_seconds(campaign_server.url) - serve_cpu:.0f} s, this process (client, oracle, "
                           f"checks) {time.process_time() - checks_cpu:.0f} s"]
    print("\n".join(conftest.SUMMARY))
    failures = (f"{campaign.describe()}\n{stats.report()}\nevery failure: {runner.stats.log}\nfirst failures:\n"
                + "\n".join(stats.failures))
    assert stats.server_errors == 0, failures
    assert stats.failed == 0, failures
    assert sum(stats.counts["by api"].values()) >= campaign.requests


def test_the_oracle_is_the_reference_on_a_stepped_day(campaign: Campaign, campaign_oracle: Oracle) -> None:
    """A self-check that needs no server: the campaign's per-set accumulation equals
    `tests.reference.reference_costs` for a day cut into 6-hour sets in a +05:30 zone (hours cut in two)."""
    tz = timezone(timedelta(hours=5, minutes=30))
    end = campaign.now - campaign.now % 60
    sets = reference.cut_sets(end - 86400, end, 6 * 3600, tz)
    for share_idle in (False, True):
        q = CostQuestion(tuple(sets), (AggregateKey(Dimension.NAMESPACE),), None, Method.EFFECTIVE, True, share_idle,
                         ShareSplit.WEIGHTED, False, True, end - 1800)  # facts end half an hour early
        campaign_oracle.cross_check(q, 6 * 3600, tz, None)


def cpu_seconds(url: str) -> float:
    """User + system CPU seconds of the process listening at `url` (its command line names the port)."""
    port = url.rsplit(":", 1)[1]
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes().split(b"\0")
            if b"serve" in command and b"--port" in command and command[command.index(b"--port") + 1] == port.encode():
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
                return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except (OSError, ValueError, IndexError):
            continue
    return float("nan")
