"""Run `kubetally serve` as a real process for tests, and wait until its ledger holds the data."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.prometheus import free_port

ROOT = Path(__file__).resolve().parents[2]


@contextmanager
def running_serve(
    prometheus_url: str, workdir: Path, *, now: int, weights: str, cluster: str, hours: int, timeout: float = 180
) -> Iterator[str]:
    """Start `kubetally serve` on a free loopback port; yield its URL once `hours` hours are ingested."""
    port = free_port()
    weights_file = workdir / "weights.yaml"
    weights_file.write_text(weights)
    log_path = workdir / f"serve-{port}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "kubetally", "serve", "--prometheus-url", prometheus_url,
         "--ledger", str(workdir / f"ledger-{port}.duckdb"), "--weights", str(weights_file), "--port", str(port),
         "--host", "127.0.0.1", "--cluster", cluster, "--now", str(now)],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "PYTHONPATH": str(ROOT / "operator")},
    )
    url = f"http://127.0.0.1:{port}"
    pattern = re.compile(rf'kubetally_ledger_hours\{{cluster="{re.escape(cluster)}"\}} (\d+)')
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"kubetally serve exited: {log_path.read_text()[-3000:]}")
            try:
                found = pattern.search(httpx.get(f"{url}/metrics", timeout=2).text)
                if found and int(float(found.group(1))) >= hours:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"kubetally serve did not ingest {hours} hours: {log_path.read_text()[-3000:]}")
            time.sleep(0.3)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
