"""kopf wiring: the only modules that import kopf. Importing this package registers the handlers.

`runtime` builds the process (ledger, Prometheus client, service, HTTP API, ingest loop) at startup;
`costweights` turns CostWeights into price versions; `costreports` computes reports on create,
on spec change, on their schedule and after a price change; `results` serves each report's
`status.resultPath`, recomputed from the ledger after a restart. No handler adds a finalizer, so
CostReports and namespaces delete normally when the operator is gone; kopf's progress lives in
annotations, so the status holds only what the CRD declares.
"""

from kubetally.handlers import costreports, costweights, runtime

__all__ = ["costreports", "costweights", "runtime"]
