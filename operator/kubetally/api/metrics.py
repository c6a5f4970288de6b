"""The process's own Prometheus metrics, on a dedicated registry served at /metrics.

- `kubetally_http_request_duration_seconds{route,code}`: API latency (histogram).
- `kubetally_http_errors_total{route,code}`: answers with a 4xx or 5xx.
- `kubetally_ingest_lag_seconds`: now − end of the newest ingested hour.
- `kubetally_ledger_hours`: hours held by the ledger (per cluster).
- `kubetally_rollup_builds_total`: hour-builds of stored rollups since start (the ingest loop's).
- `kubetally_store_up`: 1 while the metrics store answers, 0 while it does not (`sources.health`).
- `kubetally_namespace_cost{cluster,namespace,currency}`: cost of the last complete hour per
  namespace (Effective basis, idle not shared), for Grafana; `sum_over_time` gives longer spans.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    """All metrics of one process, registered on their own registry."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.request_seconds = Histogram(
            "kubetally_http_request_duration_seconds",
            "API request latency",
            ["route", "code"],
            registry=self.registry,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.errors = Counter(
            "kubetally_http_errors", "API answers with a 4xx or 5xx", ["route", "code"], registry=self.registry
        )
        self.ingest_lag = Gauge(
            "kubetally_ingest_lag_seconds", "now minus the end of the newest ingested hour", registry=self.registry
        )
        self.ledger_hours = Gauge(
            "kubetally_ledger_hours", "hours held by the ledger", ["cluster"], registry=self.registry
        )
        self.rollup_builds = Counter(
            "kubetally_rollup_builds", "hour-builds of stored rollups (an hour at one level and price list)",
            registry=self.registry,
        )
        self.store_up = Gauge(
            "kubetally_store_up", "1 while the metrics store answers (last call or probe)", registry=self.registry
        )
        self.namespace_cost = Gauge(
            "kubetally_namespace_cost",
            "cost of the last complete hour per namespace",
            ["cluster", "namespace", "currency"],
            registry=self.registry,
        )
