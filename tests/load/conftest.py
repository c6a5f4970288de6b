"""Load tier: a real `kubetally serve` over a loaded ledger, fuzzed and put under concurrent load.

Both servers replay a generated cluster served by a real Prometheus (`kubetally.localprom`), with
`--now` at an instant off the hour (minutes and seconds drawn from the seed) and a clock that keeps
running, so relative windows end at unaligned instants as they do in production:

* the fuzz server: the `small` preset (10 nodes, ~240 pods over 24 h, a 2-hour gap, the hostile
  label value `a"b\\c{d}|e`), clock 20 h and some minutes into the data: the ledger holds 20 hours
  and the current hour is collected live from Prometheus;
* the concurrency server: the `demo` preset that `kubetally demo` serves (20 nodes, ~260 pods at a
  time, 7 days at 300 s, 7.6M samples), clock some minutes after the end of the week. Its TSDB
  blocks are built once per cache (`localprom.cached_blocks` under `$KUBETALLY_CACHE`; `make test`
  starts from an empty cache, so CI builds them every run: 49 s here) and the server backfills its
  own ledger (48 s); the load starts once the 168 hours are in, while the server builds its rollups.

`KUBETALLY_FUZZ_SEED` / `KUBETALLY_LOAD_SEED` repeat a run (the seed is printed).
"""

from __future__ import annotations

import os
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from kubetally import localprom
from kubetally.demo import default_cache
from kubetally.synthetic import ClusterSpec, generate, presets
from tests.load.vocabulary import Vocabulary
from tests.support.clusters import serve_cluster
from tests.support.serve import running_serve
from tests.support.weights import WEIGHTS_YAML

FUZZ_HOURS = 20


@dataclass(frozen=True)
class Server:
    """A running `kubetally serve`: its URL, the instant its clock started at, its log, its data."""

    url: str
    now: int
    log: Path
    spec: ClusterSpec
    vocabulary: Vocabulary
    seed: int


def seed_from(variable: str) -> int:
    text = os.environ.get(variable, "").strip()
    return int(text) if text else random.SystemRandom().randrange(1, 2**31)


def unaligned(seed: int) -> int:
    """Seconds past the hour, never on a whole minute nor in the hour's first or last minute."""
    rng = random.Random(seed)
    return rng.randint(1, 58) * 60 + rng.randint(1, 59)


def _log_of(workdir: Path) -> Path:
    return next(workdir.glob("serve-*.log"))


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    seed = seed_from("KUBETALLY_FUZZ_SEED")
    spec = presets.small()
    now = spec.start + FUZZ_HOURS * 3600 + unaligned(seed)
    print(f"\nloaded-ledger fuzz: seed {seed} (KUBETALLY_FUZZ_SEED={seed} repeats it); server clock starts at {now}")
    for served in serve_cluster(spec, tmp_path_factory.mktemp("fuzz-prometheus")):
        workdir = tmp_path_factory.mktemp("fuzz-serve")
        with running_serve(served.url, workdir, now=now, weights=WEIGHTS_YAML, cluster=spec.name,
                           hours=FUZZ_HOURS, resolution=spec.scrape_seconds) as url:
            yield Server(url, now, _log_of(workdir), spec, Vocabulary.of(served.cluster), seed)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    if not localprom.binaries_present():
        pytest.fail("prometheus and promtool are missing: run scripts/test.sh, which installs them")
    seed = seed_from("KUBETALLY_LOAD_SEED")
    spec = presets.demo()
    now = spec.end + unaligned(seed)
    print(f"\nconcurrency: seed {seed} (KUBETALLY_LOAD_SEED={seed} repeats it); server clock starts at {now}")
    started = time.monotonic()
    blocks = localprom.cached_blocks(spec, default_cache(), log=print)
    print(f"concurrency: demo blocks ready in {time.monotonic() - started:.0f} s")
    workdir = tmp_path_factory.mktemp("load-serve")
    with localprom.serving_copy(blocks, workdir) as prometheus:
        started = time.monotonic()
        with running_serve(prometheus, workdir, now=now, weights=WEIGHTS_YAML, cluster=spec.name, hours=spec.hours,
                           timeout=900, resolution=spec.scrape_seconds) as url:
            print(f"concurrency: ledger backfilled ({spec.hours} hours) in {time.monotonic() - started:.0f} s; "
                  "the load starts now, while the server builds its rollups")
            yield Server(url, now, _log_of(workdir), spec, Vocabulary.of(generate(spec)), seed)
