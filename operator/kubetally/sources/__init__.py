"""Readers of the metrics store: PromQL text built safely (`promql`) and the HTTP client (`prometheus`).

This is the only layer that talks to Prometheus, Thanos, Mimir or VictoriaMetrics. The pure layers
(`domain`, `engine`) never import it; the ledger's ingestion does. The package itself imports
nothing, so that `kubetally.sources.promql` (pure) can be used without loading httpx.
"""
