"""The campaign's seed, its cluster and its clock: everything follows from one printed number.

Why: a failure must be reproducible (`KUBETALLY_CAMPAIGN_SEED=<seed> make test`), and every run should
look at a new instant. From the seed come the server's starting instant `now` (a random date in
2024-2027, half the time in the first 8 days of a month so that `lastmonth` holds data, at a random
hour, minute 1-59 and second 1-59: never on the hour), the generated cluster, which holds `DAYS` days
of data before `now`'s hour and a few hours after it (the clock keeps running), one 7-minute outage,
and the request sequence.

Size (CI on 2 cores): 4 nodes (one joining late, one without a price), 6 namespaces in 3 projects and
one without, ~30 concurrent pods with churn, reused StatefulSet names, short Jobs, a pending pod, the
hostile `team` label; 60 s samples. 8 days are ~5M samples for promtool and 192 ledger hours.
"""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal

from kubetally.domain.prices import NodePriceRule, PriceBook, PriceVersion
from kubetally.synthetic import ClusterSpec, Namespace, NodeType
from tests.support.weights import WEIGHTS_YAML

DAYS = 6
HOUR = 3600
SEED_VARIABLE = "KUBETALLY_CAMPAIGN_SEED"
REQUESTS_VARIABLE = "KUBETALLY_CAMPAIGN_REQUESTS"
CI_REQUESTS = 2000
CUSTOM = "campaign-custom"

WEIGHTS = WEIGHTS_YAML + f"""---
apiVersion: kubetally.io/v1alpha1
kind: CostWeights
metadata: {{name: {CUSTOM}}}
spec:
  currency: CNY
  unitPrices: {{cpuCoreHour: "0.05", memoryGiBHour: "0.006", storageGiBHour: "0.0001"}}
  nodePrices:
  - selector: {{matchLabels: {{node.kubernetes.io/instance-type: m5.xlarge}}}}
    hourly: "0.25"
"""
#: `default` of WEIGHTS_YAML and CUSTOM above, written out by hand for the oracle.
BOOK = PriceBook(versions=(PriceVersion(
    currency="CNY", cpu_core_hour=Decimal("0.031611"), memory_gib_hour=Decimal("0.004237"),
    storage_gib_hour=Decimal("0.0000548"), weights=(Decimal("0.7"), Decimal("0.3"))),))
CUSTOM_BOOK = PriceBook(versions=(PriceVersion(
    currency="CNY", cpu_core_hour=Decimal("0.05"), memory_gib_hour=Decimal("0.006"),
    storage_gib_hour=Decimal("0.0001"),
    node_rules=(NodePriceRule(Decimal("0.25"), {"node.kubernetes.io/instance-type": "m5.xlarge"}),)),))


@dataclass(frozen=True)
class Campaign:
    seed: int
    requests: int
    now: int  # the server clock's starting instant (unix seconds)
    spec: ClusterSpec

    def describe(self) -> str:
        at = datetime.fromtimestamp(self.now, UTC).strftime("%Y-%m-%dT%H:%M:%SZ (%A)")
        return (f"campaign seed {self.seed} ({SEED_VARIABLE}={self.seed} to repeat), {self.requests} requests "
                f"({REQUESTS_VARIABLE}), server clock starts at {at}, data {self.spec.hours} h from "
                f"{datetime.fromtimestamp(self.spec.start, UTC):%Y-%m-%dT%H:%MZ}")


def seed_from_environment() -> int:
    text = os.environ.get(SEED_VARIABLE, "").strip()
    return int(text) if text else random.SystemRandom().randrange(1, 2**31)


def requests_from_environment() -> int:
    text = os.environ.get(REQUESTS_VARIABLE, "").strip()
    return int(text) if text else CI_REQUESTS


def campaign(seed: int, requests: int) -> Campaign:
    rng = random.Random(seed)
    year, month = rng.randint(2024, 2027), rng.randint(1, 12)
    day = rng.randint(1, 8) if rng.random() < 0.5 else rng.randint(1, 28)
    now = int(datetime(year, month, day, rng.randint(0, 23), rng.randint(1, 59), rng.randint(1, 59),
                       tzinfo=UTC).timestamp())
    start = now - now % HOUR - DAYS * 86400
    after = 2 + -(-requests // 2000)  # hours of data after the start hour: the clock runs ~1 h per 20k requests
    gap = start + rng.randrange(DAYS * 86400 // 2) // 60 * 60
    spec = ClusterSpec(
        seed=rng.randrange(1, 2**31),
        start=start,
        hours=DAYS * 24 + after,
        node_types=(NodeType("m5.xlarge", 8, 32, 2, 0.384), NodeType("c5.2xlarge", 8, 16, 1, 0.34),
                    NodeType("r5.xlarge", 4, 32, 1, None)),
        namespaces=(Namespace("shop", "retail"), Namespace("payments", "retail"), Namespace("ml", "research"),
                    Namespace("batch", "research"), Namespace("kube-system", "platform"), Namespace("sandbox")),
        deployments=8,
        replicas=(1, 3),
        statefulsets=2,
        statefulset_replicas=2,
        daemonsets=1,
        jobs=24,
        bare_pods=2,
        pending_pods=1,
        mean_pod_lifetime_hours=36.0,
        late_nodes=1,
        gaps=((gap, gap + 420),),
    )
    return Campaign(seed=seed, requests=requests, now=now, spec=spec)
