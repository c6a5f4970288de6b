"""`kubetally serve`: the API without a Kubernetes API server, ingesting in the background.

The mode for laptops, tests and users who only want the API: CostWeights come from YAML files
(`--weights`, each file one or more CostWeights objects), the ledger is a DuckDB file, and a
background loop backfills missing hours (as far back as the store holds, at most `backfill_days`)
and then ingests each hour once it has closed. `--now` replays recorded data as if the current time
were T (the clock then runs on from T); it exists for demos and tests on generated data.

The process is assembled in one place for both modes (`assemble` → `Process`): `serve` starts it
as is; the operator (`kubetally run`, `kubetally.run`) starts it with its CostReport results
and adds its schedule loop.

Deadlines (bug 5 of issue 12: a hung store must not hang us). Two clients talk to the store, sharing
one `StoreHealth`: the ingest client (per attempt `query_timeout_seconds`, default 60 s, 2 s of it to
connect, 4 retries: an hour of a big cluster may take a while) and the live client that answers the
live parts of API requests and reports (per attempt and in all `config.live_budget_seconds`, default
3 s, 2 quick retries), so a request never queues behind a backfill's queries and never waits on the
store longer than its budget. A probe task keeps the health current (`sources.health`); /readyz reads
it and never calls the store; the ingest loop backfills as soon as the store answers again.

Exposure (issue 13). Without `--auth kubernetes` the API is open, so it binds loopback only: a
non-loopback `--host` is refused with a message saying how to turn the checks on. With it (and
always in `kubetally run`), every caller is checked against the Kubernetes API (`api.guard`). Plain
HTTP is served only on loopback without certificate files; anywhere else the API is HTTPS, with
`--tls-cert-file`/`--tls-private-key-file` or a certificate made at start (`access.tls`), asking
for (not requiring) a client certificate from the aggregator's front proxy.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import signal
import socket
import ssl
import time
from collections.abc import Callable, Coroutine
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

from kubetally import ingest, keeper
from kubetally.access.kubeapi import api_client, front_proxy
from kubetally.access.reviews import Reviews
from kubetally.access.tls import self_signed, server_context
from kubetally.api.app import build_app
from kubetally.api.guard import Gate
from kubetally.api.metrics import Metrics
from kubetally.budgets import BudgetLister, no_budgets
from kubetally.domain.aggregation import AggregateKey, Dimension
from kubetally.domain.errors import KubetallyError, SpecError
from kubetally.domain.vocabulary import Method
from kubetally.domain.window import Window
from kubetally.engine.query import CostQuery
from kubetally.ledger.errors import LedgerError
from kubetally.ledger.memory import duckdb_memory as duckdb_memory  # `serve` sizes DuckDB's share
from kubetally.ledger.store import DuckDBLedger
from kubetally.objects import ObjectLister, serve_objects
from kubetally.reports import ResultFinder, no_results
from kubetally.service import CostService
from kubetally.sources.catalogue import SourceConfig
from kubetally.sources.health import StoreHealth, probe_loop
from kubetally.sources.prometheus import PrometheusClient

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServeOptions:
    prometheus_url: str
    ledger: Path
    weights: tuple[Path, ...]
    port: int
    host: str = "0.0.0.0"
    config: SourceConfig = field(default_factory=SourceConfig)
    backfill_days: int = 30
    ingest_interval_seconds: float = 60.0
    now: int | None = None
    memory_limit: str | None = None
    #: How many questions the service computes at once (`CostService`); the others wait their turn.
    max_queries: int = 2
    #: Deadline of one attempt of an ingest query (the whole request, connect included).
    query_timeout_seconds: float = 60.0
    #: Check every caller with the Kubernetes API (TokenReview, SubjectAccessReview); `run` always does.
    auth: bool = False
    #: How long a TokenReview or SubjectAccessReview answer is reused (seconds): a revoked grant
    #: stops working at most this long after the revocation.
    auth_cache_ttl_seconds: float = 10.0
    tls_cert_file: Path | None = None
    tls_key_file: Path | None = None
    #: The admin route for the kube-apiserver's service proxy (off by default; README "The service proxy").
    service_proxy_port: int | None = None
    backup: keeper.BackupSchedule | None = None  # `--backup-dir` ... (README "Ledger: integrity, backups, restore")


def make_clock(now: int | None) -> Callable[[], int]:
    """The process clock: real time, or real time shifted so that it started at `now`."""
    offset = 0.0 if now is None else time.time() - now
    return lambda: int(time.time() - offset)


def load_weights(service: CostService, paths: tuple[Path, ...]) -> list[str]:
    """Record every CostWeights object of the YAML files; returns their names."""
    names = []
    for path in paths:
        try:
            documents = list(yaml.safe_load_all(path.read_text()))
        except (OSError, yaml.YAMLError) as error:
            raise SpecError("--weights", f"{path}: cannot read a YAML CostWeights file: {error}") from error
        for document in documents:
            if not isinstance(document, dict) or document.get("kind") != "CostWeights":
                continue
            name = str((document.get("metadata") or {}).get("name", ""))
            if not name:
                raise SpecError("--weights", f"{path}: a CostWeights without metadata.name")
            service.record_weights(name, document.get("spec") or {})
            names.append(name)
    return names


async def ingest_once(
    service: CostService, client: PrometheusClient, options: ServeOptions, metrics: Metrics, earliest: int | None = None
) -> int | None:
    """Backfill and ingest every complete hour the ledger lacks, then refresh the metrics.

    The backfill goes back `backfill_days`, but never before the store's earliest data (`earliest`,
    found once per process and returned for the next call), so hours the store never held are not
    ingested as empty hours over and over."""
    config, ledger, now = service.config, service.ledger, service.clock()
    first_pass = earliest is None
    if earliest is None:
        earliest = await ingest.earliest_data(client, config, now=now, limit_days=options.backfill_days)
        if earliest is None:
            return None
    horizon = max(now - options.backfill_days * 86400, earliest)
    summary = await ingest.ingest_range(client, ledger, config, horizon, now, now=now, only_missing=True)
    newest = ledger.latest_hour(config.cluster)
    if newest is None:
        return earliest
    metrics.ingest_lag.set(now - (newest + 3600))
    if not (first_pass or summary.hours):
        return earliest  # nothing new: the hour counts and namespace costs are as last set
    metrics.ledger_hours.labels(config.cluster).set(len(ledger.hours(config.cluster, 0, newest + 3600)))
    hour = Window(datetime.fromtimestamp(newest, UTC), datetime.fromtimestamp(newest + 3600, UTC))
    answer = await service.cost(CostQuery(window=hour, aggregate=(AggregateKey(Dimension.NAMESPACE),),
                                          method=Method.EFFECTIVE, idle=False))
    metrics.namespace_cost.clear()
    for row in answer.table.rows:
        metrics.namespace_cost.labels(config.cluster, row.name, answer.table.currency).set(row.cost)
    return earliest


async def refresh_rollups(service: CostService) -> int:
    """Build the rollups the ledger lacks (all of them after a price change); logs what it did."""
    started = time.monotonic()
    built = await service.refresh_rollups()
    if built:
        log.info("rollups: %d hour-builds stored in %.1f s", built, time.monotonic() - started)
    return built


async def ingest_loop(service: CostService, client: PrometheusClient, options: ServeOptions, metrics: Metrics) -> None:
    """Every interval: ingest what the ledger lacks, then store the rollups of the new hours (also
    when the ingest failed: hours already in the ledger, and price changes, still get rollups).

    The wait between passes ends early when the store comes back after an outage (`client.health`),
    so the hours that closed meanwhile are backfilled at once; a pass that failed while the store came
    back is retried after a second."""
    earliest: int | None = None
    health = client.health
    while True:
        recoveries = health.recoveries
        failed = False
        if await keeper.idle_while_refused(service, options.ingest_interval_seconds):  # never write into damage
            continue
        try:
            earliest = await ingest_once(service, client, options, metrics, earliest)
        except LedgerError as error:  # no space, read-only: the sentence, not a traceback; retried next pass
            failed = True
            log.error("ingest stopped: %s", error)
        except KubetallyError as error:
            failed = True
            log.warning("ingest failed, retrying when the store answers again (at most %.0f s): %s",
                        options.ingest_interval_seconds, error)
        except Exception:
            log.exception("ingest failed unexpectedly")
        try:
            metrics.rollup_builds.inc(await refresh_rollups(service))
        except LedgerError as error:
            log.error("building rollups stopped: %s", error)
        except Exception:
            log.exception("building rollups failed; answers are computed from the facts meanwhile")
        if failed and health.recoveries != recoveries:
            await asyncio.sleep(1.0)
        else:
            await health.wait_recovery(options.ingest_interval_seconds)


@dataclass(frozen=True, slots=True)
class StoreClients:
    """The two clients of one store and their shared known state (see the module's docstring)."""

    ingest: PrometheusClient
    live: PrometheusClient
    health: StoreHealth


async def open_clients(options: ServeOptions, stack: AsyncExitStack) -> StoreClients:
    """The ingest and live clients of `options.prometheus_url`, closed with `stack`."""
    health = StoreHealth()
    budget = options.config.live_budget_seconds
    ingest_client = await stack.enter_async_context(
        PrometheusClient(options.prometheus_url, timeout_seconds=options.query_timeout_seconds, health=health))
    live_client = await stack.enter_async_context(
        PrometheusClient(options.prometheus_url, timeout_seconds=budget, retries=2, backoff_base_seconds=0.1,
                         backoff_max_seconds=0.5, probe_timeout_seconds=min(2.0, budget), health=health,
                         retry_log_level=logging.DEBUG))  # per request: the health logs each outage once
    return StoreClients(ingest=ingest_client, live=live_client, health=health)


def background_tasks(service: CostService, clients: StoreClients, options: ServeOptions,
                     metrics: Metrics) -> list[asyncio.Task[None]]:
    """The ingest loop and the store probe; `kubetally_store_up` reads the probe's state."""
    metrics.store_up.set_function(lambda: 1.0 if clients.health.up else 0.0)
    return [asyncio.create_task(ingest_loop(service, clients.ingest, options, metrics)),
            asyncio.create_task(probe_loop(clients.live.ready, clients.health))]


def loopback(host: str) -> bool:
    """Whether `host` is a loopback address (or `localhost`)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(options: ServeOptions) -> None:
    """Refuse to serve an open API beyond this machine (SpecError saying how to turn the checks on)."""
    if not options.auth and not loopback(options.host):
        raise SpecError("--host", f"{options.host} is not a loopback address, and without authentication anyone "
                                  "who reaches it would read every namespace's cost; bind 127.0.0.1 (--host "
                                  "127.0.0.1), or check every caller with the Kubernetes API (--auth kubernetes, "
                                  "which uses KUBECONFIG or the in-cluster service account)")
    if options.service_proxy_port is not None and not options.auth:
        raise SpecError("--service-proxy-port", "the service-proxy admin route is for the operator behind a "
                                                "kube-apiserver: use it with --auth kubernetes (always on in run)")
    if options.service_proxy_port is not None and options.service_proxy_port == options.port:
        raise SpecError("--service-proxy-port", f"{options.port} is already the API's port; pick another")
    if (options.tls_cert_file is None) != (options.tls_key_file is None):
        raise SpecError("--tls-cert-file", "give both --tls-cert-file and --tls-private-key-file, or neither "
                                           "(a certificate is then made at start)")


async def open_gate(options: ServeOptions, ledger: DuckDBLedger, stack: AsyncExitStack) -> Gate | None:
    """The caller checks of this process (None when `options.auth` is off), closed with `stack`.
    Reads the front proxy's CA once, at start (a rotated CA needs a restart)."""
    if not options.auth:
        return None
    client = await stack.enter_async_context(api_client(timeout_seconds=5.0))
    proxy = await front_proxy(client)
    if proxy is None:
        log.warning("the Kubernetes API has no front-proxy CA (requestheader-client-ca-file): the aggregated "
                    "API cannot reach us; bearer tokens still work")
    reviews = Reviews(client, ttl_seconds=options.auth_cache_ttl_seconds)
    return Gate(reviews, proxy, partial(ledger.namespaces, options.config.cluster))


def tls_context(options: ServeOptions, gate: Gate | None) -> tuple[ssl.SSLContext | None, str | None]:
    """HTTPS settings, or None for plain HTTP (loopback without certificate files only), and the
    PEM of the certificate made at start when no files were given (whoever must verify us, e.g.
    the admission webhook's caBundle, can be given it).

    Certificate files named but both absent (the manifests mount the cert-manager Secret
    `optional: true`) mean "make one": logged, never a crash loop. One present without the other
    is a mistake and refused."""
    cert, key = options.tls_cert_file, options.tls_key_file
    if cert is not None and key is not None and not cert.exists() and not key.exists():
        log.warning("no certificate at %s and %s: serving HTTPS with a self-signed one made at start", cert, key)
        cert = key = None
    elif cert is not None and key is not None and not (cert.exists() and key.exists()):
        missing = cert if not cert.exists() else key
        raise SpecError("--tls-cert-file", f"{missing} does not exist, but its pair does; give both files or neither")
    if cert is None and loopback(options.host):
        return None, None
    hosts = sorted({"localhost", "127.0.0.1", socket.gethostname(), options.host,
                    "kubetally.kubetally-system.svc"} - {"0.0.0.0", "::"})
    client_ca = gate.front_proxy.ca_pem if gate is not None and gate.front_proxy is not None else None
    made = self_signed(hosts) if cert is None else None
    context = server_context(cert, key, hosts=hosts, client_ca_pem=client_ca, made=made)
    return context, None if made is None else made.cert_pem


@dataclass
class Api:
    """The HTTP servers of one process: the API, and the service-proxy admin route when asked for."""

    runners: list[web.AppRunner]
    url: str
    #: The certificate made at start (PEM), None when it came from files or HTTP is plain.
    self_signed_pem: str | None = None

    async def close(self) -> None:
        for runner in self.runners:
            await runner.cleanup()


async def start_api(service: CostService, metrics: Metrics, health: StoreHealth, options: ServeOptions,
                    gate: Gate | None, results: ResultFinder = no_results, budgets: BudgetLister = no_budgets,
                    objects: ObjectLister | None = None) -> Api:
    """Serve the API as `options` say (`serve` and `run` alike).

    With `service_proxy_port`, a second server answers the kube-apiserver's service proxy, which
    forwards no identity: everything it answers is the cluster-wide view, so RBAC on `services/proxy`
    (and a NetworkPolicy keeping everyone but the apiserver off the port) decides who sees it. Off by
    default; `manifests/service-proxy` turns it on."""
    context, made = tls_context(options, gate)
    runners = []
    for port, checked in ((options.port, gate), (options.service_proxy_port, None)):
        if port is None:
            continue
        app = build_app(service, metrics, health.ready, results, state=health.describe, gate=checked, budgets=budgets,
                        objects=objects)
        keeper.guard(app, service.ledger)  # a damaged ledger: /readyz says why, answers are refused with 503
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        await web.TCPSite(runner, options.host, port, ssl_context=context).start()
        runners.append(runner)
    return Api(runners, f"{'https' if context else 'http'}://{options.host}:{options.port}", made)


@dataclass
class Process:
    """One kubetally process, the same for `serve` and `run` (`assemble` builds it): the ledger, the
    store's two clients, the service, the caller checks and the metrics. `start` adds the HTTP servers
    (with the caller's CostReport results: the operator's, or none) and the background tasks (ingest
    loop, store probe); `spawn` adds a task of the caller's (the operator's schedule loop); `close`
    stops the tasks, then the servers, then what `stack` holds (the clients, the gate's client, the
    ledger)."""

    options: ServeOptions
    ledger: DuckDBLedger
    clients: StoreClients
    service: CostService
    gate: Gate | None
    metrics: Metrics
    #: Names of the CostWeights recorded from `options.weights` (`serve --weights`; none in `run`).
    weights: tuple[str, ...]
    stack: AsyncExitStack
    api: Api | None = None
    tasks: list[asyncio.Task[None]] = field(default_factory=list)

    async def start(self, results: ResultFinder = no_results, budgets: BudgetLister = no_budgets,
                    objects: ObjectLister | None = None) -> Api:
        """Serve the API, then start the ingest loop and the store probe. Without `objects` (serve), the
        console lists the CostWeights of `--weights` (`objects.serve_objects`)."""
        if objects is None:
            objects = serve_objects(self.weights, self.ledger.price_versions, self.service.clock)
        self.api = await start_api(self.service, self.metrics, self.clients.health, self.options, self.gate, results,
                                   budgets, objects)
        self.tasks.extend(background_tasks(self.service, self.clients, self.options, self.metrics))
        await keeper.attach(self.ledger, self.metrics.registry, self.stack, self.options.backup, self.spawn)
        return self.api

    def spawn(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` in the background until `close`."""
        self.tasks.append(asyncio.create_task(work))

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        if self.api is not None:
            await self.api.close()
        await self.stack.aclose()


async def assemble(options: ServeOptions) -> Process:
    """The process `options` describe, not serving yet; what was opened is closed again if a part fails
    (a refused exposure, an unreachable Kubernetes API for the caller checks, an unreadable weights file)."""
    check_exposure(options)
    async with AsyncExitStack() as stack:
        ledger = await asyncio.to_thread(keeper.open_verified, options.ledger, duckdb_memory(options.memory_limit))
        stack.callback(ledger.close)
        gate = await open_gate(options, ledger, stack)
        clients = await open_clients(options, stack)
        service = CostService(ledger, clients.live, options.config, make_clock(options.now),
                              max_queries=options.max_queries)
        weights = tuple(load_weights(service, options.weights)) if ledger.failure is None else ()  # never written
        process = Process(options=options, ledger=ledger, clients=clients, service=service, gate=gate,
                          metrics=Metrics(), weights=weights, stack=stack.pop_all())
    return process


async def serve(options: ServeOptions) -> None:
    """Run until SIGINT or SIGTERM."""
    process = await assemble(options)
    try:
        api = await process.start()
        checked = "callers checked with the Kubernetes API" if process.gate else "open: loopback only"
        print(
            f"kubetally serving on {api.url} ({checked}; "
            f"ledger {options.ledger}, CostWeights: {', '.join(process.weights) or 'none, OpenCost defaults'})",
            flush=True,
        )
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
    finally:
        await process.close()
