"""kopf handlers: with `kubetally.run`, which starts kopf, the only modules that import kopf.
Importing this package registers the handlers.

`runtime` holds what the handlers read (the service, the ledger, the admin namespaces) and the one
writer of report statuses; `costweights` turns CostWeights into price versions; `costreports`
computes reports on create, on spec change, on their schedule and after a price change; `results`
serves each report's `status.resultPath`, recomputed from the ledger after a restart; `costbudgets`
computes CostBudgets, posts an Event per threshold crossed and sets their gauges. The process
around them (ledger, Prometheus clients, service, HTTP API, ingest loop) is assembled by
`kubetally.run`, so these modules never import the HTTP API. No handler adds a finalizer, so
CostReports and namespaces delete normally when the operator is gone; kopf's progress lives in
annotations, so the status holds only what the CRD declares. Imports go one way:
runtime ← costweights, costreports ← results.
"""

from kubetally.handlers import costbudgets, costreports, costweights, results, runtime

__all__ = ["costbudgets", "costreports", "costweights", "results", "runtime"]
