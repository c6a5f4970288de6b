"""The HTTP surface of kubetally, kept pure: query parameters → engine queries, engine answers → bodies.

`params` turns the query strings of `GET /v2/cost` (Alibaba ACK) and of Alauda's
`/platform/cost.alauda.io/v1beta1/[projects/{project}/]costs/usage` into `CostQuery` / `UsageQuery`,
raising only `SpecError`; `payloads` renders `CostTable` and `UsageRow`s as JSON-ready dicts or CSV
lines and builds Kubernetes `Status` error bodies. Neither module does I/O or reads a clock, so the
web server that uses them stays a thin adapter and every rule of the API is unit-testable.
"""
