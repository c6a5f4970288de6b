"""Campaign tier: a generated cluster in a real Prometheus, a real `kubetally serve` on a running clock.

The seed (printed; `KUBETALLY_CAMPAIGN_SEED` repeats a run) fixes the cluster, the server's starting
instant and every request (`tests.campaign.cluster`). The server backfills its ledger from Prometheus
(the ingest under test) before the campaign starts, then keeps ingesting each hour that closes while
the campaign runs. The oracle holds the generator's exact facts (`kubetally.synthetic.expected_facts`).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass

import pytest

from kubetally.domain.labels import sanitize_label_key
from kubetally.synthetic import generate
from tests.campaign import cluster as campaign_cluster
from tests.campaign.filters import Vocabulary
from tests.campaign.oracle import Oracle
from tests.campaign.windows import ServerClock
from tests.support.clusters import Served, serve_cluster
from tests.support.serve import running_serve

#: The server's live-collection budget (`--live-budget`): the campaign checks exact numbers on a healthy
#: store, so it gives live parts 60 s (`KUBETALLY_CAMPAIGN_LIVE_BUDGET`); the 3 s default is for hung stores.
LIVE_BUDGET = "KUBETALLY_LIVE_BUDGET"
LABEL_KEYS = ("app", "team", "app.kubernetes.io/name")


@dataclass(frozen=True)
class Server:
    url: str
    clock: ServerClock


@pytest.fixture(scope="session")
def campaign() -> campaign_cluster.Campaign:
    chosen = campaign_cluster.campaign(campaign_cluster.seed_from_environment(),
                                       campaign_cluster.requests_from_environment())
    print(f"\n{chosen.describe()}")
    return chosen


@pytest.fixture(scope="session")
def campaign_served(campaign: campaign_cluster.Campaign, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    started = time.monotonic()
    for served in serve_cluster(campaign.spec, tmp_path_factory.mktemp("campaign-prometheus")):
        print(f"campaign: Prometheus loaded by promtool in {time.monotonic() - started:.0f} s")
        yield served


@pytest.fixture(scope="session")
def campaign_server(campaign: campaign_cluster.Campaign, campaign_served: Served,
                    tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """`kubetally serve --now <campaign.now>`, returned once it has ingested every hour before `now`."""
    spec = campaign.spec
    hours = (campaign.now - campaign.now % 3600 - spec.start) // 3600
    launched = time.time()
    with ExitStack() as stack:
        with _environment(LIVE_BUDGET, os.environ.get("KUBETALLY_CAMPAIGN_LIVE_BUDGET", "60")):
            url = stack.enter_context(running_serve(
                campaign_served.url, tmp_path_factory.mktemp("campaign-serve"), now=campaign.now,
                weights=campaign_cluster.WEIGHTS, cluster=spec.name, hours=hours, timeout=600))
        ready = time.time()
        print(f"campaign: kubetally serve ingested {hours} hours in {ready - launched:.0f} s")
        yield Server(url, ServerClock(lo=launched - campaign.now, hi=ready - campaign.now))


@contextmanager
def _environment(name: str, value: str) -> Iterator[None]:
    """`name=value` in this process's environment (which child processes inherit), restored on exit."""
    saved = os.environ.get(name)
    os.environ[name] = value
    try:
        yield
    finally:
        if saved is None:
            del os.environ[name]
        else:
            os.environ[name] = saved


@pytest.fixture(scope="session")
def campaign_oracle(campaign: campaign_cluster.Campaign) -> Oracle:
    """The oracle on its own copy of the generated cluster (`generate` is deterministic)."""
    return Oracle(generate(campaign.spec), campaign_cluster.BOOK, campaign_cluster.CUSTOM_BOOK)


def vocabulary(served: Served) -> tuple[Vocabulary, list[str]]:
    """Attribute and label values of the generated cluster (filters built from them select something)."""
    values: dict[str, set[str]] = {name: set() for name in ("cluster", "node", "namespace", "controller",
                                                            "controller_kind", "pod", "project")}
    labels: dict[str, set[str]] = {key: set() for key in LABEL_KEYS}
    generated = served.cluster
    for pod in generated.pods:
        kind, controller = generated.controller_of(pod)
        row = {"cluster": generated.spec.name, "node": pod.node, "namespace": pod.namespace, "pod": pod.name,
               "controller": controller, "controller_kind": kind, "project": generated.project_of(pod.namespace)}
        for name, value in row.items():
            if value:
                values[name].add(value)
        pod_labels = {sanitize_label_key(key): value for key, value in pod.labels}
        for key in LABEL_KEYS:
            if sanitize_label_key(key) in pod_labels:
                labels[key].add(pod_labels[sanitize_label_key(key)])
    projects = sorted(values["project"])
    return Vocabulary({k: sorted(v) for k, v in values.items()}, {k: sorted(v) for k, v in labels.items()}), projects


#: Lines for the end of the test run (the campaign's seed and counts), shown even when output is captured.
SUMMARY: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if SUMMARY:
        terminalreporter.section("differential campaign")
        for line in SUMMARY:
            terminalreporter.write_line(line)
