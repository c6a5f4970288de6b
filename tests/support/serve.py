"""Run `kubetally serve` as a real process for tests, and wait until its ledger holds the data."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kubetally.processes import free_port
from tests.support.processes import managed_process

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_serve(
    prometheus_url: str, workdir: Path, *, now: int, weights: str, cluster: str, hours: int, timeout: float = 180,
    resolution: int = 60, extra_args: tuple[str, ...] = (),
) -> Iterator[str]:
    """Start `kubetally serve` on a free loopback port; yield its URL once `hours` hours are ingested.
    `resolution` is the store's sample interval in seconds (`--resolution`, the generator's scrape_seconds);
    `extra_args` go on the command line as they are (`--ingest-interval 10`)."""
    port = free_port()
    weights_file = workdir / "weights.yaml"
    weights_file.write_text(weights)
    url = f"http://127.0.0.1:{port}"
    pattern = re.compile(rf'kubetally_ledger_hours\{{cluster="{re.escape(cluster)}"\}} (\d+)')

    def ingested() -> bool:
        found = pattern.search(httpx.get(f"{url}/metrics", timeout=2).text)
        return found is not None and int(float(found.group(1))) >= hours

    command = [sys.executable, "-m", "kubetally", "serve", "--prometheus-url", prometheus_url,
               "--ledger", str(workdir / f"ledger-{port}.duckdb"), "--weights", str(weights_file), "--port", str(port),
               "--host", "127.0.0.1", "--cluster", cluster, "--now", str(now), "--resolution", str(resolution),
               *extra_args]
    with managed_process(command, workdir / f"serve-{port}.log", ingested, what="kubetally serve", timeout=timeout,
                         env={**os.environ, "PYTHONPATH": str(ROOT / "operator")}):
        yield url
