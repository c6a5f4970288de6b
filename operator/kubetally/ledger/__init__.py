"""The hourly ledger: facts of complete hours kept in a DuckDB file (DESIGN.md §2).

`store.Ledger` is the one small interface the rest of kubetally uses; `store.DuckDBLedger` is the
embedded implementation. Another engine (ClickHouse) can implement the same interface later.
"""
