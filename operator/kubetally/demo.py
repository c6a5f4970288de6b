"""`kubetally demo`: the whole product on this machine, from a clone, with one command.

Why: a newcomer should see kubetally work before reading about it. The demo starts, in order:

1. the local control plane (`kubetally.controlplane`: etcd + kube-apiserver v1.20.2; the first run
   builds kube-apiserver from Debian's source package, about 7 minutes on 2 cores, then caches it);
2. a real Prometheus holding 7 days of the generated `demo` cluster (`synthetic.presets.demo`: 20
   nodes, ~260 concurrent pods, ~1.1k pods over the week, 20 namespaces in 5 projects, 300 s
   scrape; the TSDB blocks are built once by promtool and cached, see `kubetally.localprom`);
3. the DuckDB ledger, backfilled hour by hour from that Prometheus with a progress bar (cached per
   code version: a second run of the same code finds every hour already there);
4. the CRDs, the namespaces and the operator itself (`kubetally run` as a child process, with its
   HTTP API on `--port`), replaying the data as if now were the end of the generated week;
5. the sample CostWeights and CostReports (`manifests/samples`, plus a tenant's report in `ns-003`).

Then it prints what to try and waits; Ctrl-C (or SIGTERM) stops everything it started, in reverse
order. Caches live under `$KUBETALLY_CACHE` (default `~/.cache/kubetally`); the run's logs,
kubeconfig and Prometheus copy under `--workdir` (default `<cache>/demo/run`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import httpx

import kubetally
from kubetally import ingest, localprom
from kubetally.controlplane import ControlPlane, local_control_plane
from kubetally.ledger.store import DuckDBLedger
from kubetally.processes import background, wait_ready
from kubetally.sources.prometheus import PrometheusClient
from kubetally.synthetic import ClusterSpec, presets

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(kubetally.__file__).resolve().parent  # the demo's ledger is reused only by the same code
ADMIN_NAMESPACE = "kubetally-system"
TENANT_NAMESPACE = "ns-003"
STEPS = 6


@dataclass(frozen=True, slots=True)
class DemoOptions:
    cache: Path
    workdir: Path  # this run's control plane, Prometheus copy, kubeconfig and logs (recreated)
    port: int = 8080
    ready_timeout: float = 300.0


def default_cache() -> Path:
    return Path(os.environ.get("KUBETALLY_CACHE") or Path.home() / ".cache" / "kubetally")


def demo_ledger(cache: Path, spec: ClusterSpec) -> Path:
    """The cached ledger of `spec` for this code, `<cache>/demo/ledger-<key>.duckdb`, its folder created.

    Why here: DuckDB creates the file but not its folder, and on a fresh machine nothing else has
    made `<cache>/demo` (`--workdir` elsewhere, an empty `$KUBETALLY_CACHE`): we create what we open."""
    path = cache / "demo" / f"ledger-{localprom.cache_key(spec, PACKAGE)}.duckdb"
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def _step(number: int, text: str) -> None:
    print(f"[{number}/{STEPS}] {text}", flush=True)


def _note(text: str) -> None:
    print(f"      {text}", flush=True)


def _bar(done: int, total: int, width: int = 30) -> str:
    filled = width * done // max(total, 1)
    return "[" + "#" * filled + "." * (width - filled) + f"] {done}/{total} hours"


def _backfill(url: str, ledger_path: Path, spec: ClusterSpec) -> None:
    """Ingest the generated week into the ledger, hours already there skipped, with a progress bar."""
    config = localprom.source_config(spec)
    tty = sys.stdout.isatty()

    def progress(done: int, total: int, hour: int, coverage: float) -> None:
        if tty:
            print(f"\r      {_bar(done, total)}", end="" if done < total else "\n", flush=True)
        elif done % 24 == 0 or done == total:
            _note(_bar(done, total))

    async def run() -> ingest.IngestSummary:
        async with PrometheusClient(url) as client:
            return await ingest.ingest_range(client, ledger, config, spec.start, spec.end, now=spec.end,
                                             only_missing=True, progress=progress)

    ledger = DuckDBLedger(ledger_path)
    try:
        started = time.monotonic()
        summary = asyncio.run(run())
    finally:
        ledger.close()
    held = "every hour was already in the ledger" if summary.hours == 0 else \
        f"{summary.hours} hours, {summary.container_facts:,} container facts in {time.monotonic() - started:.0f} s"
    _note(f"ledger {ledger_path}: {held}")


def _kubectl(cp: ControlPlane, *args: str, input: str | None = None) -> str:
    command = ["kubectl", "--kubeconfig", str(cp.kubeconfig), *args]
    result = subprocess.run(command, input=input, capture_output=True, text=True, check=False, timeout=300)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip() or result.stdout.strip()}")
    return result.stdout


def _tenant_report() -> str:
    return json.dumps({
        "apiVersion": "kubetally.io/v1alpha1", "kind": "CostReport",
        "metadata": {"name": "my-controllers", "namespace": TENANT_NAMESPACE},
        "spec": {"window": "7d", "step": "1d", "aggregate": ["controller"], "method": "Effective",
                 "schedule": "@hourly", "topN": 20},
    })


@contextmanager
def _operator(cp: ControlPlane, url: str, ledger: Path, spec: ClusterSpec, options: DemoOptions,
              workdir: Path) -> Iterator[str]:
    """`kubetally run` as a child process; yields its API URL once it is ready."""
    api = f"http://127.0.0.1:{options.port}"
    command = [sys.executable, "-m", "kubetally", "run", "--prometheus-url", url, "--ledger", str(ledger),
               "--cluster", spec.name, "--resolution", str(spec.scrape_seconds), "--port", str(options.port),
               "--host", "127.0.0.1", "--now", str(spec.end), "--backfill-days", "8",
               "--admin-namespaces", ADMIN_NAMESPACE]
    env = {**os.environ, "KUBECONFIG": str(cp.kubeconfig)}
    log_path = workdir / "operator.log"
    with background(command, log_path, env=env) as process:
        wait_ready(process, lambda: httpx.get(f"{api}/readyz", timeout=2.0).status_code == 200,
                   what="kubetally run", log_path=log_path, timeout=120)
        yield api


def _wait_ready(cp: ControlPlane, reports: list[tuple[str, str]], timeout: float) -> None:
    for namespace, name in reports:
        _kubectl(cp, "wait", "--for", "condition=Ready", f"--timeout={timeout:.0f}s", f"costreport/{name}",
                 "-n", namespace)


def _instructions(cp: ControlPlane, api: str, prometheus: str, ledger: Path, workdir: Path,
                  spec: ClusterSpec, elapsed: float) -> str:
    first = datetime.fromtimestamp(spec.start, UTC).date()
    last = datetime.fromtimestamp(spec.end - 86400, UTC).date()
    alauda = f"{api}/platform/cost.alauda.io/v1beta1"
    return "\n".join([
        f"kubetally demo is ready (set up in {elapsed:.0f} s). The data is a generated week, {first} to {last};",
        "the operator replays it as if now were its end. Try, in another terminal:",
        "",
        f"  export KUBECONFIG={cp.kubeconfig}",
        "  kubectl get costreports -A",
        f"  kubectl get costreport namespaces-7d -n {ADMIN_NAMESPACE} -o yaml",
        "  kubectl get costweights",
        f"  curl -s '{api}/v2/cost?window=7d&aggregate=namespace&step=1d' | python3 -m json.tool | head -40",
        f"  curl -s '{api}/v2/cost?window=7d&aggregate=controller&filter=namespace:ns-003' | python3 -m json.tool",
        f"  curl -s '{alauda}/costs/usage?start={first}&end={last}&kind=namespace_all&step=day' | python3 -m json.tool",
        f"  curl -s '{alauda}/projects/project-03/costs/usage?start={first}&end={last}&kind=namespace&name=ns-003'",
        "",
        f"  ledger (DuckDB): {ledger}",
        f"  Prometheus:      {prometheus}",
        f"  logs:            {workdir}",
        "",
        "Ctrl-C stops everything the demo started.",
    ])


def _stop_on_sigterm() -> None:
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)


def run_demo(options: DemoOptions, *, wait: Callable[[], None] = signal.pause) -> int:
    """Set everything up, print what to try, `wait()` (until Ctrl-C), then stop it all."""
    _stop_on_sigterm()
    started = time.monotonic()
    spec = presets.demo()
    workdir = options.workdir
    workdir.mkdir(parents=True, exist_ok=True)
    if not (ROOT / "crds").is_dir():
        print(f"kubetally demo: {ROOT / 'crds'} is missing; run the demo from a clone of the repository",
              file=sys.stderr)
        return 2
    try:
        with ExitStack() as stack:
            _step(1, "local control plane: etcd + kube-apiserver v1.20.2 "
                     "(the first run builds kube-apiserver: about 7 minutes on 2 cores)")
            cp = stack.enter_context(local_control_plane(workdir / "controlplane", log=_note))
            _step(2, "Prometheus with 7 days of a generated cluster (20 nodes, ~260 pods at a time, 20 namespaces)")
            localprom.ensure_binaries(log=_note)
            blocks = localprom.cached_blocks(spec, options.cache, log=_note)
            prometheus = stack.enter_context(localprom.serving_copy(blocks, workdir))
            _note(f"serving on {prometheus}")
            _step(3, "DuckDB ledger: backfilling the week hour by hour")
            ledger = demo_ledger(options.cache, spec)
            _backfill(prometheus, ledger, spec)
            _step(4, "CRDs, namespaces and the operator (kubetally run)")
            _kubectl(cp, "apply", "-k", str(ROOT / "crds"))
            _kubectl(cp, "wait", "--for", "condition=established", "--timeout=60s",
                     "crd/costreports.kubetally.io", "crd/costweights.kubetally.io")
            for namespace in (ADMIN_NAMESPACE, TENANT_NAMESPACE):
                _kubectl(cp, "create", "namespace", namespace)
            api = stack.enter_context(_operator(cp, prometheus, ledger, spec, options, workdir))
            _note(f"API on {api}")
            _step(5, "samples: CostWeights `default`, CostReports `namespaces-7d` and a tenant's `my-controllers`")
            samples = ROOT / "manifests" / "samples"
            _kubectl(cp, "apply", "-f", str(samples / "costweights-default.yaml"))
            _kubectl(cp, "wait", "--for", "condition=Ready", "--timeout=60s", "costweights/default")
            _kubectl(cp, "apply", "-k", str(samples))
            _kubectl(cp, "apply", "-f", "-", input=_tenant_report())
            _wait_ready(cp, [(ADMIN_NAMESPACE, "namespaces-7d"), (TENANT_NAMESPACE, "my-controllers")],
                        options.ready_timeout)
            _step(6, "ready")
            print(_kubectl(cp, "get", "costreports", "-A"), flush=True)
            print(_instructions(cp, api, prometheus, ledger, workdir, spec, time.monotonic() - started), flush=True)
            with suppress(KeyboardInterrupt):
                wait()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
            print("\nstopping: operator, Prometheus, kube-apiserver, etcd", flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopped everything the demo had started", flush=True)
        return 130
    except RuntimeError as error:
        print(f"kubetally demo: {error}", file=sys.stderr)
        return 1
    print("stopped", flush=True)
    return 0
