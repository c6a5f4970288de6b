"""The scale-L ledger: 30 days of hourly facts for ~10k pods, written without Prometheus.

Why: loading 30 days × 10k pods at 60 s into Prometheus would be billions of samples; the claim
under test is about serving from the ledger, so the ledger is filled straight from the generator's
exact facts (`synthetic.fact_arrays`, the same facts the ingest is proven to derive from the
metrics in tests/integration), one `write_hour` per hour as the ingest does. The file is cached
under `<cache>/bench/`, keyed by the generator, the fact code (`kubetally.facts`: the schema, the
batch and the insert) and the ledger's `SCHEMA_VERSION`, because writing it takes minutes. Rollups
are not part of the key: the bench rebuilds them (`kubetally rollups --rebuild`) on every run.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from kubetally import facts as facts_package
from kubetally.facts.batch import FactBatch, encode_labels
from kubetally.ledger.store import SCHEMA_VERSION, DuckDBLedger
from kubetally.localprom import cache_key
from kubetally.processes import Log
from kubetally.synthetic import Cluster, FactArrays, fact_arrays

#: The code that shapes a stored fact (the schema, the batch, its insert): a change to it rebuilds the cache.
_FACT_CODE = Path(facts_package.__file__).resolve().parent
_TABLES = {"container_facts": "containers", "node_facts": "nodes", "volume_facts": "volumes", "quota_facts": "quotas"}


def batch_of(arrays: FactArrays) -> FactBatch:
    """FactArrays → FactBatch: the same columns; label dicts become the JSON text the insert expects."""
    batch = FactBatch()
    for table, attribute in _TABLES.items():
        columns = dict(getattr(arrays, attribute))
        if "labels" in columns:
            columns["labels"] = np.array([encode_labels(labels) for labels in columns["labels"]],
                                         dtype=np.object_)
        batch.tables[table] = columns
    return batch


def generated_ledger(cluster: Cluster, cache: Path, *, log: Log) -> Path:
    """A ledger file holding every hour of `cluster` (built once, then reused)."""
    key = cache_key(cluster.spec, _FACT_CODE)
    path = cache / "bench" / f"ledger-v{SCHEMA_VERSION}-{cluster.spec.name}-{cluster.spec.hours}h-{key}.duckdb"
    if path.is_file():
        log(f"==> reusing the generated ledger {path}")
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    building = path.with_suffix(".building")
    building.unlink(missing_ok=True)
    ledger = DuckDBLedger(building)
    spec = cluster.spec
    started = time.monotonic()
    try:
        for number, hour in enumerate(range(spec.start, spec.end, 3600), start=1):
            ledger.write_hour(spec.name, hour, batch_of(fact_arrays(cluster, hour)), 1.0, ingested_at=spec.end)
            if number % 72 == 0 or number == spec.hours:
                log(f"    {number}/{spec.hours} hours written ({time.monotonic() - started:.0f} s)")
    finally:
        ledger.close()
    building.rename(path)
    return path
