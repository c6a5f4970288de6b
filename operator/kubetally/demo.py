"""`kubetally demo`: the whole product on this machine, from a clone, with one command.

Why: a newcomer should see kubetally work before reading about it, tenants' access included. The
demo starts, in order:

1. when it may (root and iproute2's `ip`), a network namespace standing in for the operator's Pod
   (`kubetally.netns`), then the local control plane (`kubetally.controlplane`: etcd +
   kube-apiserver v1.20.2 with the front proxy, bound to the namespace's host address; the first
   run builds kube-apiserver from Debian's source package, about 7 minutes on 2 cores, then caches
   it), with a token user `tenant-ns-003` besides the admin;
2. a real Prometheus holding 7 days of the generated `demo` cluster (`synthetic.presets.demo`: 20
   nodes, ~260 concurrent pods, ~1.1k pods over the week, 20 namespaces in 5 projects, 300 s
   scrape; the TSDB blocks are built once by promtool and cached, see `kubetally.localprom`), on
   the same address as kube-apiserver;
3. the DuckDB ledger, backfilled hour by hour from that Prometheus with a progress bar (cached per
   code version: a second run of the same code finds every hour already there);
4. the CRDs, the namespaces and the operator itself (`kubetally run` as a child process, callers
   checked with TokenReview and SubjectAccessReview), replaying the data as if now were the end of
   the generated week: inside the network namespace on HTTPS `<pod ip>:8443`, else plain HTTP on
   `127.0.0.1:--port`;
5. access (`kubetally.demo_access`): manifests/access, the tenant's cost-viewer RoleBinding in
   ns-003, token files, and with the network namespace the aggregated API `query.kubetally.io`
   routed to the operator (Pod, Service, Endpoints, APIService with the demo CA) until it answers;
6. the sample CostWeights and CostReports (`manifests/samples`, plus a tenant's report in `ns-003`).

Then it prints what to try and waits; Ctrl-C (or SIGTERM) stops everything it started, in reverse
order, the network namespace last. Caches live under `$KUBETALLY_CACHE` (default
`~/.cache/kubetally`); the run's logs, kubeconfigs, certificates, token files and Prometheus copy
under `--workdir` (default `<cache>/demo/run`).
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from contextlib import ExitStack, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType

import kubetally
from kubetally import demo_access, ingest, localprom
from kubetally.controlplane import ControlPlane, local_control_plane
from kubetally.demo_access import TENANT, TENANT_NAMESPACE, Operator, Tokens, kubectl
from kubetally.ledger.store import DuckDBLedger
from kubetally.sources.prometheus import PrometheusClient
from kubetally.synthetic import ClusterSpec, presets

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(kubetally.__file__).resolve().parent  # the demo's ledger is reused only by the same code
ADMIN_NAMESPACE = demo_access.OPERATOR_NAMESPACE
STEPS = 7


@dataclass(frozen=True, slots=True)
class DemoOptions:
    cache: Path
    workdir: Path  # this run's control plane, Prometheus copy, kubeconfigs, certificates, tokens and logs
    port: int = 8080  # the operator's port on 127.0.0.1 without a network namespace (inside one: 8443)
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


def _tenant_report() -> str:
    return json.dumps({
        "apiVersion": "kubetally.io/v1alpha1", "kind": "CostReport",
        "metadata": {"name": "my-controllers", "namespace": TENANT_NAMESPACE},
        "spec": {"window": "7d", "step": "1d", "aggregate": ["controller"], "method": "Effective",
                 "schedule": "@hourly", "topN": 20},
    })


def _budget() -> str:
    """A weekly budget of the platform team, small enough to be crossed in the generated week (its Events:
    `kubectl get events -n kubetally-system`)."""
    return json.dumps({
        "apiVersion": "kubetally.io/v1alpha1", "kind": "CostBudget",
        "metadata": {"name": "platform-weekly", "namespace": ADMIN_NAMESPACE},
        "spec": {"amount": "10", "currency": "CNY", "period": "weekly", "method": "Effective",
                 "thresholds": [{"percent": "50"}, {"percent": "80"}, {"percent": "100"},
                                {"percent": "100", "basis": "forecast"}]},
    })


def _run_args(prometheus: str, ledger: Path, spec: ClusterSpec) -> list[str]:
    """`kubetally run` flags of the demo's data (the address, port and TLS come from `demo_access`)."""
    return ["--prometheus-url", prometheus, "--ledger", str(ledger), "--cluster", spec.name,
            "--resolution", str(spec.scrape_seconds), "--now", str(spec.end), "--backfill-days", "8",
            "--admin-namespaces", ADMIN_NAMESPACE]


def _wait_ready(cp: ControlPlane, reports: list[tuple[str, str]], timeout: float) -> None:
    for namespace, name in reports:
        kubectl(cp, "wait", "--for", "condition=Ready", f"--timeout={timeout:.0f}s", f"costreport/{name}",
                "-n", namespace)


def _instructions(cp: ControlPlane, api: Operator, tokens: Tokens, prometheus: str, ledger: Path, workdir: Path,
                  spec: ClusterSpec, elapsed: float, *, aggregated: bool, reason: str) -> str:
    first = datetime.fromtimestamp(spec.start, UTC).date()
    last = datetime.fromtimestamp(spec.end - 86400, UTC).date()
    tries = demo_access.try_lines(cp, api, tokens, aggregated=aggregated, reason=reason, first=str(first),
                                  last=str(last))
    return "\n".join([
        f"kubetally demo is ready (set up in {elapsed:.0f} s). The data is a generated week, {first} to {last};",
        "the operator replays it as if now were its end. Try, in another terminal:",
        "",
        *tries,
        "",
        f"  ledger (DuckDB):   {ledger}",
        f"  Prometheus:        {prometheus}",
        f"  web console:       {api.url}/ui/  (sign in with a token file's contents"
        + (f"; trust the demo CA {api.ca} or accept its warning)" if api.ca else ")"),
        f"  operator API:      {api.url}" + (f" (CA {api.ca})" if api.ca else ""),
        f"  admin token:       {tokens.admin}",
        f"  {TENANT} token: {tokens.tenant} (kubeconfig {cp.kubeconfig_for(TENANT)})",
        f"  logs:              {workdir}",
        "",
        "Ctrl-C stops everything the demo started.",
    ])


def _stop_on_signals() -> None:
    """SIGINT and SIGTERM both unwind the setup (KeyboardInterrupt). SIGINT explicitly too: a process
    started in the background of a script inherits SIGINT ignored, and Python then never raises it."""
    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)


def run_demo(options: DemoOptions, *, wait: Callable[[], None] = signal.pause) -> int:
    """Set everything up, print what to try, `wait()` (until Ctrl-C), then stop it all."""
    _stop_on_signals()
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
            network, reason = demo_access.try_pod_network(stack)
            if network is not None:
                _note(f"network namespace {network.name}: the operator at {network.pod_ip}, kube-apiserver and "
                      f"Prometheus at {network.host_ip}")
            else:
                _note(f"no network namespace for the operator, so no aggregated API: {reason}")
            host = network.host_ip if network is not None else "127.0.0.1"
            cp = stack.enter_context(local_control_plane(workdir / "controlplane", log=_note, bind_host=host,
                                                         users=(demo_access.tenant_user(),)))
            _step(2, "Prometheus with 7 days of a generated cluster (20 nodes, ~260 pods at a time, 20 namespaces)")
            localprom.ensure_binaries(log=_note)
            blocks = localprom.cached_blocks(spec, options.cache, log=_note)
            prometheus = stack.enter_context(localprom.serving_copy(blocks, workdir, host=host))
            _note(f"serving on {prometheus}")
            _step(3, "DuckDB ledger: backfilling the week hour by hour")
            ledger = demo_ledger(options.cache, spec)
            _backfill(prometheus, ledger, spec)
            _step(4, "CRDs, namespaces and the operator (kubetally run, every caller checked with the Kubernetes API)")
            kubectl(cp, "apply", "-k", str(ROOT / "crds"))
            kubectl(cp, "wait", "--for", "condition=established", "--timeout=60s",
                    "crd/costreports.kubetally.io", "crd/costweights.kubetally.io", "crd/costbudgets.kubetally.io")
            for namespace in (ADMIN_NAMESPACE, TENANT_NAMESPACE):
                kubectl(cp, "create", "namespace", namespace)
            api = stack.enter_context(demo_access.operator(cp, _run_args(prometheus, ledger, spec), network,
                                                           options.port, workdir))
            _note(f"API on {api.url}")
            _step(5, f"access: cost ClusterRoles, {TENANT} a cost viewer of {TENANT_NAMESPACE}"
                     + (", the aggregated API query.kubetally.io" if network is not None else ""))
            tokens = demo_access.grant(cp, workdir)
            if network is not None and api.ca is not None:
                demo_access.register(cp, network, api.ca, log=_note)
            _step(6, "samples: CostWeights `default`, CostReports `namespaces-7d` and a tenant's `my-controllers`, "
                     "CostBudget `platform-weekly`")
            samples = ROOT / "manifests" / "samples"
            kubectl(cp, "apply", "-f", str(samples / "costweights-default.yaml"))
            kubectl(cp, "wait", "--for", "condition=Ready", "--timeout=60s", "costweights/default")
            kubectl(cp, "apply", "-k", str(samples))
            kubectl(cp, "apply", "-f", "-", input=_tenant_report())
            kubectl(cp, "apply", "-f", "-", input=_budget())
            _wait_ready(cp, [(ADMIN_NAMESPACE, "namespaces-7d"), (TENANT_NAMESPACE, "my-controllers")],
                        options.ready_timeout)
            _step(7, "ready")
            print(kubectl(cp, "get", "costreports", "-A"), flush=True)
            print(kubectl(cp, "get", "costbudgets", "-A"), flush=True)
            print(_instructions(cp, api, tokens, prometheus, ledger, workdir, spec, time.monotonic() - started,
                                aggregated=network is not None, reason=reason), flush=True)
            with suppress(KeyboardInterrupt):
                wait()
            for sig in (signal.SIGINT, signal.SIGTERM):
                signal.signal(sig, signal.SIG_IGN)  # a second Ctrl-C must not cut the shutdown short
            print("\nstopping: operator, Prometheus, kube-apiserver, etcd"
                  + (f", network namespace {network.name}" if network is not None else ""), flush=True)
    except KeyboardInterrupt:
        print("\ninterrupted: stopped everything the demo had started", flush=True)
        return 130
    except RuntimeError as error:
        print(f"kubetally demo: {error}", file=sys.stderr)
        return 1
    print("stopped", flush=True)
    return 0
