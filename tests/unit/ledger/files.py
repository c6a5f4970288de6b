"""Real ledger files for the integrity tests: built once from the generator, copied per test, damaged
by hand, and the `kubetally` command line run on them as a user would."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb

from kubetally.bench.ledgers import batch_of
from kubetally.domain.prices import opencost_default
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, tiny

ROOT = Path(__file__).resolve().parents[3]
#: DuckDB 2.0's layout: three 4 KiB headers, then 256 KiB blocks, each starting with its 8-byte checksum.
HEADERS, BLOCK = 3 * 4096, 262144


@dataclass(frozen=True)
class Built:
    path: Path
    hours: list[int]
    container_facts: dict[int, int]  # hour → facts the generator made for it


def build_tiny(path: Path) -> Built:
    """The tiny preset's 3 hours (cluster "c1") written as `kubetally ingest` writes them, with rollups, checkpointed."""
    spec = tiny()
    cluster = generate(spec)
    ledger = DuckDBLedger(path)
    counts = {}
    for hour in range(spec.start, spec.end, 3600):
        batch = batch_of(fact_arrays(cluster, hour))
        counts[hour] = batch.rows("container_facts")
        ledger.write_hour(spec.name, hour, batch, 1.0, ingested_at=spec.end)
    ledger.build_rollups(opencost_default())
    ledger.connection.execute("CHECKPOINT")
    ledger.close()
    return Built(path, list(range(spec.start, spec.end, 3600)), counts)


def copy_of(built: Built, directory: Path, name: str = "ledger.duckdb") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / name
    shutil.copyfile(built.path, target)
    return target


def kubetally(*args: str, cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """`kubetally …` as a separate process (stdout, stderr, exit code as a user sees them)."""
    return subprocess.run([sys.executable, "-m", "kubetally", *args], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd, env={**os.environ, "PYTHONPATH": str(ROOT / "operator")})


def one_line(result: subprocess.CompletedProcess[str]) -> str:
    """The single `kubetally: …` line a failure prints; no traceback."""
    assert "Traceback" not in result.stderr + result.stdout, result.stderr
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kubetally: "), result.stderr
    return lines[0]


def block_of(path: Path, table: str) -> int:
    """The byte offset of a data block holding `table`'s rows (a block id from DuckDB's storage_info)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        row = con.execute(f"SELECT max(block_id) FROM pragma_storage_info('{table}') WHERE block_id >= 0").fetchone()
    finally:
        con.close()
    assert row is not None
    assert row[0] is not None
    return HEADERS + int(row[0]) * BLOCK


def flip(path: Path, offset: int) -> None:
    with path.open("r+b") as handle:
        handle.seek(offset)
        byte = handle.read(1)
        handle.seek(offset)
        handle.write(bytes([byte[0] ^ 0xFF]))
