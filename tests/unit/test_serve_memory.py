"""`--memory-limit` is the serving process's budget: DuckDB gets half of it, written in bytes.

Hand-derived: 1GB = 10^9 B → 500,000,000 B; 2GiB = 2,147,483,648 B → 1,073,741,824 B; 512MB →
256,000,000 B; 1.5 GB → 750,000,000 B. A malformed size is refused naming an example.
"""

from __future__ import annotations

import pytest

from kubetally.domain.errors import SpecError
from kubetally.ledger.store import memory_bytes
from kubetally.serve import duckdb_memory


@pytest.mark.parametrize(("budget", "duckdb"), [("1GB", "500000000B"), ("2GiB", "1073741824B"),
                                                 ("512MB", "256000000B"), ("1.5 GB", "750000000B"), (None, None)])
def test_duckdb_gets_half_of_the_budget(budget: str | None, duckdb: str | None) -> None:
    assert duckdb_memory(budget) == duckdb


def test_a_size_is_read_as_duckdb_reads_it_and_a_malformed_one_refused() -> None:
    assert memory_bytes("300MB") == 300_000_000
    assert memory_bytes("1KiB") == 1024
    with pytest.raises(SpecError, match=r"e\.g\. 1GB"):
        duckdb_memory("lots")
