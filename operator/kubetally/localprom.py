"""A real Prometheus on loopback, loaded with a generated cluster: for the demo, the benchmark and tests.

Why: `kubetally demo` and `kubetally bench` need what the integration tests need, a real
Prometheus 2.x holding days of a generated cluster (`kubetally.synthetic`). Debian's `prometheus`
package ships both the server and `promtool`; `promtool tsdb create-blocks-from openmetrics` turns
the generator's OpenMetrics into TSDB blocks, and the server runs with a 100-year retention so the
fixed past timestamps stay queryable.

Turning a week of a few hundred pods into blocks takes minutes, so `cached_blocks` keeps the blocks
under `<cache>/prometheus/<key>/`, where the key hashes the spec and the generator's source code: a
second run, or a run after an unrelated change, reuses them; a changed generator or spec makes new
ones. A cache entry is written under a temporary name and renamed when complete, so an interrupted
build is never mistaken for a finished one. `running_prometheus` serves a data directory in place;
`serving_copy` copies cached blocks first, so the server's own writes never touch the cache.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

from kubetally import synthetic
from kubetally.processes import Log, apt_install, background, free_port, wait_ready
from kubetally.sources.catalogue import SourceConfig
from kubetally.synthetic import Cluster, ClusterSpec, generate, write_openmetrics

_SYNTHETIC_SOURCES = Path(synthetic.__file__).resolve().parent
#: promtool writes 2-hour blocks aligned to multiples of 2 h since the epoch.
BLOCK_SECONDS = 7200
_PROMTOOL_TIMEOUT = 1800.0


def ensure_binaries(*, log: Log = print) -> None:
    """`prometheus` and `promtool` on PATH (installs Debian's `prometheus` package if root on Debian)."""
    apt_install("prometheus", ("prometheus", "promtool"), log=log)


def binaries_present() -> bool:
    return shutil.which("prometheus") is not None and shutil.which("promtool") is not None


def _promtool(openmetrics: Path, data_dir: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        ["promtool", "tsdb", "create-blocks-from", "openmetrics", "--quiet", str(openmetrics), str(data_dir)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
    )


def _finish(process: subprocess.Popen[str], openmetrics: Path) -> None:
    _, stderr = process.communicate(timeout=_PROMTOOL_TIMEOUT)
    openmetrics.unlink(missing_ok=True)
    if process.returncode != 0:
        raise RuntimeError(f"promtool failed on {openmetrics.name}: {stderr[-2000:]}")


def load_cluster(cluster: Cluster, data_dir: Path, *, progress: Callable[[int, int], None] | None = None,
                 window: tuple[int, int] | None = None) -> int:
    """Write every sample of `cluster` into TSDB blocks in `data_dir`; returns the number of samples.

    promtool (2.42) reads its whole input once per 2-hour block it writes, so one file for a week
    costs O(84 × the week): 11 minutes for the demo's 7.6M samples. Here each 2-hour block gets
    its own file (`write_openmetrics(start, end)`), the next file is written while promtool loads
    the previous ones (two at a time), and the week takes under a minute. `window` = (a, b) loads
    only the samples in [a, b)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    a, b = window or (cluster.spec.start, cluster.spec.end)
    starts = list(range(a - a % BLOCK_SECONDS, b, BLOCK_SECONDS))
    running: list[tuple[subprocess.Popen[str], Path]] = []
    samples = 0
    try:
        for number, start in enumerate(starts, start=1):
            openmetrics = data_dir.parent / f"{data_dir.name}-{start}.om"
            with openmetrics.open("w") as out:
                samples += write_openmetrics(cluster, out, max(start, a), min(start + BLOCK_SECONDS, b))
            running.append((_promtool(openmetrics, data_dir), openmetrics))
            if len(running) == 2:
                _finish(*running.pop(0))
            if progress is not None:
                progress(number, len(starts))
        while running:
            _finish(*running.pop(0))
    finally:
        for process, openmetrics in running:
            process.kill()
            process.wait()
            openmetrics.unlink(missing_ok=True)
    return samples


def cache_key(spec: ClusterSpec, *code: Path) -> str:
    """16 hex digits of sha256 over the spec and every `*.py` under `kubetally.synthetic` and the
    `code` folders: a cache entry is reused only by the same generator (and code) on the same spec."""
    digest = hashlib.sha256(repr(spec).encode())
    for folder in (_SYNTHETIC_SOURCES, *code):
        for source in sorted(folder.rglob("*.py")):
            digest.update(source.name.encode())
            digest.update(source.read_bytes())
    return digest.hexdigest()[:16]


def source_config(spec: ClusterSpec) -> SourceConfig:
    """How to read a generated cluster back: its name, at its own scrape interval."""
    return SourceConfig(cluster=spec.name, resolution_seconds=spec.scrape_seconds)


def cached_blocks(spec: ClusterSpec, cache: Path, *, log: Log = print, window: tuple[int, int] | None = None) -> Path:
    """The TSDB data directory for `spec` (only [a, b) with `window`) under `cache`, built on first use."""
    suffix = "" if window is None else f"-{window[0]}-{window[1]}"
    entry = cache / "prometheus" / (cache_key(spec) + suffix)
    data = entry / "data"
    if (entry / "complete").is_file():
        log(f"==> generated metrics: reusing {data}")
        return data
    building = entry.with_name(entry.name + ".building")
    shutil.rmtree(building, ignore_errors=True)
    building.mkdir(parents=True)
    started = time.monotonic()
    log("==> generating the cluster's metrics and writing TSDB blocks with promtool (once: they are cached)")

    def progress(done: int, total: int) -> None:
        if done % 12 == 0 or done == total:
            log(f"    {done}/{total} two-hour blocks")

    samples = load_cluster(generate(spec), building / "data", progress=progress, window=window)
    (building / "complete").write_text(f"{spec!r}\n{samples} samples\n")
    shutil.rmtree(entry, ignore_errors=True)
    building.rename(entry)
    log(f"==> {samples:,} samples in TSDB blocks in {time.monotonic() - started:.0f} s, cached at {data}")
    return data


@contextmanager
def running_prometheus(data_dir: Path, *, log_dir: Path | None = None, timeout: float = 60.0,
                       host: str = "127.0.0.1") -> Iterator[str]:
    """Serve `data_dir` on a free port of `host` until the context exits; yields the base URL.

    `host` is the address Prometheus listens on: loopback by default; a `kubetally.netns.PodNetwork`'s
    host_ip lets an operator inside that network namespace reach it."""
    with prometheus_process(data_dir, log_dir=log_dir, timeout=timeout, host=host) as (url, _):
        yield url


@contextmanager
def prometheus_process(
    data_dir: Path, *, port: int | None = None, log_dir: Path | None = None, timeout: float = 60.0,
    host: str = "127.0.0.1",
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """Like `running_prometheus`, on `port` if given (to restart a store where its clients expect it),
    and also yields the process, for drills that stop (SIGSTOP), resume or kill it."""
    port = port or free_port()
    log_dir = log_dir or data_dir.parent
    config = log_dir / f"prometheus-{port}.yml"
    config.write_text("global:\n  scrape_interval: 1h\nscrape_configs: []\n")
    url = f"http://{host}:{port}"
    log_path = log_dir / f"prometheus-{port}.log"
    command = ["prometheus", f"--config.file={config}", f"--storage.tsdb.path={data_dir}",
               f"--web.listen-address={host}:{port}", "--storage.tsdb.retention.time=100y",
               "--query.lookback-delta=5m", "--log.level=warn"]
    with background(command, log_path) as process:
        wait_ready(process, lambda: httpx.get(f"{url}/-/ready", timeout=2.0).status_code == 200,
                   what="prometheus", log_path=log_path, timeout=timeout)
        yield url, process


@contextmanager
def serving_copy(blocks: Path, workdir: Path, *, timeout: float = 120.0, host: str = "127.0.0.1") -> Iterator[str]:
    """Copy cached `blocks` into `workdir/prometheus` (replacing any old copy) and serve the copy on `host`."""
    data = workdir / "prometheus"
    shutil.rmtree(data, ignore_errors=True)
    shutil.copytree(blocks, data)
    with running_prometheus(data, log_dir=workdir, timeout=timeout, host=host) as url:
        yield url
