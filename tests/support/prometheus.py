"""A real Prometheus for tests: backfill OpenMetrics with promtool, serve it on a free loopback port.

Debian's `prometheus` package (2.42) ships both binaries; `scripts/test.sh` installs it. Blocks are
written with `promtool tsdb create-blocks-from openmetrics`, and the server runs with a retention
of 100 years, so fixed timestamps in the past stay queryable. Everything runs on 127.0.0.1 and is
stopped (and its directory removed by pytest's tmp_path) when the context exits.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from tests.support.processes import managed_process


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def binaries_present() -> bool:
    return shutil.which("prometheus") is not None and shutil.which("promtool") is not None


def backfill(openmetrics: Path, data_dir: Path) -> None:
    """Turn an OpenMetrics file into TSDB blocks in `data_dir`."""
    data_dir.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", str(openmetrics), str(data_dir)],
        capture_output=True, text=True, check=False, timeout=600,
    )
    if result.returncode != 0:
        raise RuntimeError(f"promtool failed: {result.stderr[-2000:]}")


@contextmanager
def running_prometheus(data_dir: Path, *, timeout: float = 60.0) -> Iterator[str]:
    """Serve `data_dir` on a free loopback port; yields the base URL."""
    port = free_port()
    config = data_dir.parent / f"prometheus-{port}.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    url = f"http://127.0.0.1:{port}"
    command = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
               f"--web.listen-address=127.0.0.1:{port}", "--storage.tsdb.retention.time=100y",
               "--query.lookback-delta=5m", "--log.level=warn"]
    with managed_process(command, data_dir.parent / f"prometheus-{port}.log",
                         lambda: httpx.get(f"{url}/-/ready", timeout=2.0).status_code == 200,
                         what="prometheus", timeout=timeout):
        yield url
