"""`kubetally demo` on a fresh machine: every path it opens under the cache folder is created first.

The demo's ledger lives at `<cache>/demo/ledger-<key>.duckdb`. DuckDB creates the file but not its
folder, so with an empty `$KUBETALLY_CACHE` (or `--workdir` elsewhere, which used to be the only
thing that made `<cache>/demo`) opening it raised duckdb.IOException (issue 12, bug 6). The e2e test
tests/e2e/test_demo.py runs the whole demo with an empty cache; this is the fast check of the path.
"""

from __future__ import annotations

from pathlib import Path

from kubetally.demo import demo_ledger
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import presets


def test_the_demo_ledger_opens_in_a_cache_folder_that_does_not_exist(tmp_path: Path) -> None:
    cache = tmp_path / "never-created"
    path = demo_ledger(cache, presets.demo())
    assert path.parent == cache / "demo"
    assert path.name.startswith("ledger-")
    assert path.suffix == ".duckdb"
    DuckDBLedger(path).close()
    assert path.is_file()
    assert demo_ledger(cache, presets.demo()) == path  # a second run finds the same ledger
