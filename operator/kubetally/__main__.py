"""`kubetally` / `python -m kubetally`: the command line.

Subcommands: `ingest` (backfill a range of hours from Prometheus into a ledger file), `serve` (the
HTTP APIs with a background ingest, no Kubernetes needed), `run` (the operator), `demo` (everything
on this machine: `kubetally.demo`), `bench` (`kubetally.bench`) and `ledger verify|backup|restore|repair`
(`kubetally.ledger_cli`). A ledger failure a user can fix exits with its own code (`ledger.errors`).
Every flag can also be set by an environment variable (`KUBETALLY_PROMETHEUS_URL`, ...).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubetally import __version__
from kubetally.domain.errors import KubetallyError, SpecError
from kubetally.domain.labels import sanitize_label_key
from kubetally.domain.timeparse import parse_rfc3339, parse_unix
from kubetally.ledger_cli import add_arguments as add_ledger_arguments
from kubetally.sources.catalogue import DEFAULT_LIVE_BUDGET_SECONDS, SourceConfig

_MEMORY_HELP = ("the process's memory budget, e.g. 1GB: DuckDB gets 50%% of it, bigger work spills to <ledger>.tmp "
                "(default: none; DuckDB takes up to 80%% of RAM)")
_BUDGET_HELP = ("seconds an API request or report may wait in all for the live parts of its window (partial edge "
                "hours, hours not ingested yet); past it they count with coverage 0 and a warning (default 3)")
_TIMEOUT_HELP = "deadline in seconds of one attempt of an ingest query, 2 s of it to connect (default 60)"
_INTERVAL_HELP = ("seconds between two ingest passes, which store the hours closed since (default 60); a pass "
                  "also starts as soon as the store answers again after an outage")


def _env(name: str, default: str | None = None) -> str | None:
    return os.environ.get(f"KUBETALLY_{name.upper().replace('-', '_')}", default)


def _time(text: str) -> int:
    """A unix time or an RFC3339 time."""
    parsed = parse_unix(text, "time") if text.strip().isdigit() else parse_rfc3339(text, "time")
    return int(parsed.timestamp())


def _seconds(text: str) -> float:
    """A positive number of seconds (argparse applies it to string defaults too)."""
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive number of seconds, e.g. 3 or 0.5")
    return value


def _positive(text: str) -> int:
    """A whole number ≥ 1 (argparse applies it to string defaults too)."""
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number of at least 1, e.g. 2")
    return int(text)


_QUERIES_HELP = ("how many cost and usage questions are computed at once (default: the CPU count); the others wait "
                 "their turn, so memory stays bounded however many clients ask")
_AUTH_HELP = ("kubernetes: check every caller's bearer token (TokenReview) and namespaces (SubjectAccessReview) "
              "with the Kubernetes API of KUBECONFIG or the in-cluster service account; none: open, loopback only")


def _backup_arguments(command: argparse.ArgumentParser) -> None:
    """The backup schedule flags `serve` and `run` share (README "Ledger: integrity, backups, restore")."""
    command.add_argument("--backup-dir", default=_env("backup-dir"),
                         help="back the ledger up into this directory on a schedule (default: no backups)")
    command.add_argument("--backup-every", type=_seconds, default=_env("backup-every", "86400"),
                         help="seconds between two backups (default 86400: daily)")
    command.add_argument("--backup-keep", type=_positive, default=_env("backup-keep", "7"),
                         help="how many of the newest backups to keep (default 7)")


def _backup(args: argparse.Namespace) -> Any:
    from kubetally.keeper import BackupSchedule

    if not args.backup_dir:
        return None
    return BackupSchedule(Path(args.backup_dir), every_seconds=args.backup_every, keep=args.backup_keep)


def _access_arguments(command: argparse.ArgumentParser) -> None:
    """The HTTPS and caller-check flags `serve` and `run` share."""
    command.add_argument("--tls-cert-file", default=_env("tls-cert-file"),
                         help="PEM certificate (chain) to serve HTTPS with; default: one made at start")
    command.add_argument("--tls-private-key-file", default=_env("tls-private-key-file"), help="its PEM private key")
    command.add_argument("--auth-cache-ttl", type=_seconds, default=_env("auth-cache-ttl", "10"),
                         help="seconds a token or permission check is reused (a revoked grant stops within it)")
    command.add_argument("--service-proxy-port", type=int, default=_env("service-proxy-port"),
                         help="also answer the kube-apiserver's service proxy on this port: an admin route "
                              "that sees everything (it forwards no identity); off by default")


def _access(args: argparse.Namespace, *, auth: bool) -> dict[str, Any]:
    """ServeOptions fields from the shared access flags."""
    return {"auth": auth, "auth_cache_ttl_seconds": args.auth_cache_ttl,
            "tls_cert_file": Path(args.tls_cert_file) if args.tls_cert_file else None,
            "tls_key_file": Path(args.tls_private_key_file) if args.tls_private_key_file else None,
            "service_proxy_port": args.service_proxy_port}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="kubetally", description="Meters and prices what Kubernetes workloads use.")
    parser.add_argument("--version", action="version", version=f"kubetally {__version__}")
    commands = parser.add_subparsers(dest="command")
    ingest = commands.add_parser("ingest", help="backfill complete hours of a range into the ledger, then exit")
    ingest.add_argument("--prometheus-url", default=_env("prometheus-url"), required=_env("prometheus-url") is None)
    ingest.add_argument("--ledger", default=_env("ledger"), required=_env("ledger") is None, help="DuckDB file")
    ingest.add_argument("--start", required=True, type=_time, help="RFC3339 or unix seconds")
    ingest.add_argument("--end", required=True, type=_time, help="RFC3339 or unix seconds (exclusive)")
    ingest.add_argument("--cluster", default=_env("cluster", "default"), help="cluster name recorded in facts")
    ingest.add_argument("--cluster-label", default=_env("cluster-label"), help="series label naming the cluster")
    ingest.add_argument("--project-label", default=_env("project-label", "kubetally.io/project"))
    ingest.add_argument("--resolution", type=int, default=int(_env("resolution", "60") or 60), help="seconds")
    ingest.add_argument("--missing-only", action="store_true", help="skip hours the ledger already holds")
    ingest.add_argument("--retries", type=int, default=int(_env("retries", "4") or 4), help="per query")
    ingest.add_argument("--timeout", type=float, default=float(_env("timeout", "60") or 60), help="seconds per query")
    rollups = commands.add_parser("rollups", help="store the ledger's hourly rollups now (serve and run do it too)")
    rollups.add_argument("--ledger", default=_env("ledger"), required=_env("ledger") is None, help="DuckDB file")
    rollups.add_argument("--rebuild", action="store_true", help="drop every stored rollup first")
    serve = commands.add_parser("serve", help="serve the HTTP APIs and ingest in the background (no Kubernetes)")
    serve.add_argument("--prometheus-url", default=_env("prometheus-url"), required=_env("prometheus-url") is None)
    serve.add_argument("--ledger", default=_env("ledger"), required=_env("ledger") is None, help="DuckDB file")
    serve.add_argument("--weights", nargs="*", default=[], help="YAML files of CostWeights objects")
    serve.add_argument("--port", type=int, default=int(_env("port", "8080") or 8080))
    serve.add_argument("--host", default=_env("host", "127.0.0.1"),
                       help="address to bind; not loopback only with --auth kubernetes")
    serve.add_argument("--auth", choices=("none", "kubernetes"), default=_env("auth", "none"), help=_AUTH_HELP)
    _access_arguments(serve)
    serve.add_argument("--cluster", default=_env("cluster", "default"))
    serve.add_argument("--cluster-label", default=_env("cluster-label"))
    serve.add_argument("--project-label", default=_env("project-label", "kubetally.io/project"))
    serve.add_argument("--resolution", type=int, default=int(_env("resolution", "60") or 60))
    serve.add_argument("--backfill-days", type=int, default=int(_env("backfill-days", "30") or 30))
    serve.add_argument("--now", type=_time, default=None, help="replay: pretend the current time is T")
    serve.add_argument("--memory-limit", default=_env("memory-limit"), help=_MEMORY_HELP)
    serve.add_argument("--max-queries", type=_positive, default=_env("max-queries", str(os.cpu_count() or 2)),
                       help=_QUERIES_HELP)
    serve.add_argument("--live-budget", type=_seconds, default=_env("live-budget", "3"), help=_BUDGET_HELP)
    serve.add_argument("--timeout", type=_seconds, default=_env("timeout", "60"), help=_TIMEOUT_HELP)
    serve.add_argument("--ingest-interval", type=_seconds, default=_env("ingest-interval", "60"), help=_INTERVAL_HELP)
    _backup_arguments(serve)
    run = commands.add_parser("run", help="the operator: CostWeights and CostReports, with the API and the ingest")
    run.add_argument("--prometheus-url", default=_env("prometheus-url"), required=_env("prometheus-url") is None)
    run.add_argument("--ledger", default=_env("ledger"), required=_env("ledger") is None, help="DuckDB file")
    run.add_argument("--cluster", default=_env("cluster", "default"))
    run.add_argument("--cluster-label", default=_env("cluster-label"))
    run.add_argument("--project-label", default=_env("project-label", "kubetally.io/project"))
    run.add_argument("--resolution", type=int, default=int(_env("resolution", "60") or 60))
    run.add_argument("--port", type=int, default=int(_env("port", "8443") or 8443))
    run.add_argument("--host", default=_env("host", "0.0.0.0"))
    _access_arguments(run)
    run.add_argument("--backfill-days", type=int, default=int(_env("backfill-days", "30") or 30))
    run.add_argument("--admin-namespaces", default=_env("admin-namespaces", ""),
                     help="comma-separated namespaces whose CostReports see every project")
    run.add_argument("--webhook-configuration", default=_env("webhook-configuration", "kubetally"),
                     help="ValidatingWebhookConfiguration whose caBundle gets the certificate made at start "
                          "(\"\" for none; unused with --tls-cert-file)")
    run.add_argument("--namespace", default=_env("namespace", "kubetally-system"),
                     help="the operator's own namespace (budget webhooks' Secrets are read there)")
    run.add_argument("--now", type=_time, default=None, help="replay: pretend the current time is T")
    run.add_argument("--memory-limit", default=_env("memory-limit"), help=_MEMORY_HELP)
    run.add_argument("--max-queries", type=_positive, default=_env("max-queries", str(os.cpu_count() or 2)),
                       help=_QUERIES_HELP)
    run.add_argument("--live-budget", type=_seconds, default=_env("live-budget", "3"), help=_BUDGET_HELP)
    run.add_argument("--timeout", type=_seconds, default=_env("timeout", "60"), help=_TIMEOUT_HELP)
    run.add_argument("--ingest-interval", type=_seconds, default=_env("ingest-interval", "60"), help=_INTERVAL_HELP)
    _backup_arguments(run)
    demo = commands.add_parser("demo", help="everything on this machine: control plane, Prometheus, ledger, operator")
    demo.add_argument("--port", type=int, default=int(_env("port", "8080") or 8080),
                      help="the operator's port on 127.0.0.1 when it cannot run in a network namespace (root); "
                           "in one it listens on <pod ip>:8443")
    demo.add_argument("--cache", default=_env("cache"), help="cache directory (default ~/.cache/kubetally)")
    demo.add_argument("--workdir", default=None, help="this run's logs, kubeconfig, data (default <cache>/demo/run)")
    validate = commands.add_parser(
        "validate", help="check CostWeights and CostReports offline with the operator's own rules; exit 1 if any is "
                         "invalid")
    validate.add_argument("paths", nargs="*", metavar="PATH",
                          help="YAML or JSON files, directories (their *.yaml, *.yml, *.json, recursively), or - for "
                               "stdin")
    validate.add_argument("-k", "--kustomize", action="append", default=[], metavar="DIR",
                          help="a kustomization, built with `kubectl kustomize DIR` (repeatable)")
    validate.add_argument("--resolution", type=int, default=int(_env("resolution", "60") or 60),
                          help="the operator's --resolution in seconds (windows and steps are checked against it)")
    add_ledger_arguments(commands)
    bench = commands.add_parser("bench", help="measure speed and memory at scales L and M; write bench/RESULTS.md")
    bench.add_argument("--cache", default=_env("cache"), help="cache directory (default ~/.cache/kubetally)")
    bench.add_argument("--output", default="bench/RESULTS.md", help="the results table to (re)write")
    bench.add_argument("--runs", type=int, default=20, help="runs per HTTP figure (medians and p95 over them)")
    bench.add_argument("--scales", default="M,L-ingest,L", help="comma-separated subset of M, L-ingest, L")
    return parser


async def _operator(args: argparse.Namespace) -> int:
    from kubetally.run import RunOptions, run
    from kubetally.serve import ServeOptions

    options = RunOptions(
        serve=ServeOptions(prometheus_url=args.prometheus_url, ledger=Path(args.ledger), weights=(), port=args.port,
                           host=args.host, config=_config(args), backfill_days=args.backfill_days, now=args.now,
                           memory_limit=args.memory_limit, max_queries=args.max_queries,
                           query_timeout_seconds=args.timeout,
                           ingest_interval_seconds=args.ingest_interval, backup=_backup(args),
                           **_access(args, auth=True)),
        admin_namespaces=frozenset(ns.strip() for ns in args.admin_namespaces.split(",") if ns.strip()),
        webhook_configuration=args.webhook_configuration,
        namespace=args.namespace,
    )
    await run(options)
    return 0


def _config(args: argparse.Namespace) -> SourceConfig:
    return SourceConfig(
        cluster=args.cluster,
        cluster_label=args.cluster_label,
        project_label_key=sanitize_label_key(args.project_label),
        resolution_seconds=args.resolution,
        live_budget_seconds=getattr(args, "live_budget", DEFAULT_LIVE_BUDGET_SECONDS),
    )


async def _serve(args: argparse.Namespace) -> int:
    from kubetally.serve import ServeOptions, serve

    await serve(
        ServeOptions(
            prometheus_url=args.prometheus_url,
            ledger=Path(args.ledger),
            weights=tuple(Path(w) for w in args.weights),
            port=args.port,
            host=args.host,
            config=_config(args),
            backfill_days=args.backfill_days,
            now=args.now,
            memory_limit=args.memory_limit,
            max_queries=args.max_queries,
            query_timeout_seconds=args.timeout,
            ingest_interval_seconds=args.ingest_interval,
            backup=_backup(args),
            **_access(args, auth=args.auth == "kubernetes"),
        )
    )
    return 0


async def _ingest(args: argparse.Namespace) -> int:
    from kubetally import ingest
    from kubetally.ledger.holder import control_socket, open_for_writing
    from kubetally.sources.prometheus import PrometheusClient

    config = _config(args)
    ledger = await asyncio.to_thread(open_for_writing, Path(args.ledger))

    def progress(done: int, total: int, hour: int, coverage: float) -> None:
        stamp = datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%dT%H:%MZ")
        print(f"[{done}/{total}] {stamp} coverage {coverage:.4f}", flush=True)

    try:
        async with control_socket(ledger), \
                PrometheusClient(args.prometheus_url, retries=args.retries, timeout_seconds=args.timeout) as client:
            summary = await ingest.ingest_range(
                client,
                ledger,
                config,
                args.start,
                args.end,
                now=int(time.time()),
                only_missing=args.missing_only,
                progress=progress,
            )
    finally:
        ledger.close()
    print(
        f"ingested {summary.hours} hours, {summary.container_facts} container facts, "
        f"lowest coverage {summary.min_coverage:.4f}, "
        f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB",
        flush=True,
    )
    return 0


async def _rollups(args: argparse.Namespace) -> int:
    """Build the rollups for the prices recorded in the ledger (CostWeights `default`, else
    OpenCost's defaults), as `kubetally serve` and `run` do after every ingest pass."""
    from kubetally.domain.prices import opencost_default
    from kubetally.ledger.holder import control_socket, open_for_writing
    from kubetally.ledger.pricebook import price_book
    from kubetally.service import DEFAULT_WEIGHTS

    ledger = await asyncio.to_thread(open_for_writing, Path(args.ledger))
    started = time.perf_counter()
    try:
        async with control_socket(ledger):
            built = await asyncio.to_thread(ledger.build_rollups, price_book(ledger, DEFAULT_WEIGHTS)
                                            or opencost_default(), rebuild=args.rebuild)
    finally:
        ledger.close()
    print(f"stored {built} hour-builds in {time.perf_counter() - started:.1f} s, "
          f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB", flush=True)
    return 0


async def _repair(args: argparse.Namespace) -> int:
    """`kubetally ledger repair` (`kubetally.repair`): exit 0 when every damaged hour came back, 1 when
    some are beyond Prometheus' retention (they need a backup)."""
    from kubetally import repair

    now = _time(args.now) if args.now else int(time.time())
    result = await repair.repair(Path(args.ledger), args.prometheus_url, _config(args), now=now,
                                 say=lambda line: print(line, flush=True))
    for line in repair.lines(result, Path(args.ledger)):
        print(line, flush=True)
    return 1 if result.lost else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if args.command == "bench":
        from kubetally.bench.run import SCALES, BenchOptions, run_bench
        from kubetally.demo import default_cache

        scales = tuple(scale.strip() for scale in args.scales.split(",") if scale.strip())
        unknown = sorted(set(scales) - set(SCALES))
        if unknown or args.runs < 1:
            parser.error(f"--scales takes a subset of {', '.join(SCALES)} (got {', '.join(unknown)}); --runs >= 1")
        options = BenchOptions(cache=Path(args.cache) if args.cache else default_cache(), output=Path(args.output),
                               runs=args.runs, scales=scales)
        return run_bench(options, "kubetally " + " ".join(sys.argv[1:] if argv is None else argv))
    if args.command == "demo":
        from kubetally.demo import DemoOptions, default_cache, run_demo

        cache = Path(args.cache) if args.cache else default_cache()
        workdir = Path(args.workdir) if args.workdir else cache / "demo" / "run"
        return run_demo(DemoOptions(cache=cache, workdir=workdir, port=args.port))
    if args.command == "ledger" and args.ledger_command != "repair":
        from kubetally import ledger_cli

        if args.ledger_command == "verify":
            return ledger_cli.verify_command(args.ledger, args.timeout)
        if args.ledger_command == "backup":
            return ledger_cli.backup_command(args.ledger, args.to, args.keep, args.timeout)
        return ledger_cli.restore_command(args.source, args.ledger)
    if args.command == "validate":
        from kubetally.validate_cli import validate_command

        return validate_command(args.paths, args.kustomize, resolution_seconds=args.resolution)
    try:
        commands = {"serve": _serve, "ingest": _ingest, "run": _operator, "rollups": _rollups, "ledger": _repair}
        return asyncio.run(commands[args.command](args))
    except (KubetallyError, SpecError) as error:
        print(f"kubetally: {error}", file=sys.stderr)
        return int(getattr(error, "exit_code", 2))  # a ledger's own code (`ledger.errors`), else 2


if __name__ == "__main__":
    raise SystemExit(main())
