"""The fact vocabulary: what one entity did over one segment of time, shared by every layer that handles facts.

A *fact* is one entity (a container, a node, a bound volume claim, a namespace's quota) over one
segment `[segment_start, segment_end)` of time (unix seconds, UTC), holding integrals that add up
exactly across segments and groups (DESIGN.md §2, §4). The package sits between `kubetally.domain`
and `kubetally.engine`: the sources produce facts, the ledger stores them, the engine prices them,
and all three speak this one vocabulary.

- `schema`: the four fact relations, their columns and their storage types (DuckDB). Only this
  package, the ledger and the engine read the storage form (an import-linter contract).
- `batch`: `FactBatch`, facts in numpy columns (what one collection of one segment yields).
- `load`: the one way facts get into DuckDB: a batch inserted by one vectorised statement per
  relation, and records (dicts, for tests and small inputs) loaded through a batch.

The package itself imports nothing, so that a producer of batches (`kubetally.sources`) does not
load DuckDB.
"""
