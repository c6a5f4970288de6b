"""`kubetally bench`: speed and memory, measured against the goals of issue 15, written to bench/RESULTS.md.

Why: peers recompute every request from raw Prometheus data and time out on week-long windows
(opencost#1841, opencost-ui#65). kubetally's claim is that the hourly ledger makes answers cheap;
this package measures that claim on this machine, in one invocation, with every comparison made
side by side:

- scale L (`synthetic.presets.large`: 500 nodes, ~10k pods, 500 namespaces, 30 days) written
  straight into a ledger file by `synthetic.fact_arrays` (`bench.ledgers`); the /v2/cost shapes of
  issue 15 one client at a time (`bench.shapes`), then a seeded 16-client mix of them (`bench.mix`),
  and the Alauda endpoint, over HTTP from a real `kubetally serve --memory-limit 1GB` process; a
  CostReport computation and the bare DuckDB floor (`bench.scenarios`);
- one hour of scale L at 60 s in a real Prometheus, ingested into a ledger, next to Prometheus' own
  evaluation time of the same queries (`stats=all`, `bench.measure.TimingTransport`);
- scale M (`presets.medium`: 50 nodes, ~1k pods, 7 days at 300 s) in a real Prometheus: the cold
  backfill, and `/v2/cost` served from the ledger versus recomputed from Prometheus per request.

Every figure is the median and p95 of several runs (how many adapts to how slow a shape is:
`bench.shapes`); `bench.goals` puts each next to its goal. Nothing here is a test: the numbers
depend on the machine, so they are recorded, not asserted.
"""
