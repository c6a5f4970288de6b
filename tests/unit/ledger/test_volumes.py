"""The ledger's volume misbehaving: full, read-only, or its writer killed and its WAL lost (issue 19).

Real volumes: a tmpfs mounted with `size=` in the test's directory (root only: skipped otherwise),
filled with a filler file until the kernel says ENOSPC, remounted read-only; real processes:
`kubetally rollups` as the writer that meets them, and a writer killed with SIGKILL mid-hour. The
expected sentences and exit codes are README's ("Ledger: integrity, backups, restore").
"""

from __future__ import annotations

import os
import random
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import duckdb
import pytest

from kubetally.bench.ledgers import batch_of
from kubetally.facts.batch import FactBatch
from kubetally.ledger.errors import LedgerNoSpace
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, tiny
from tests.unit.ledger.files import ROOT, Built, build_tiny, copy_of, kubetally, one_line

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "ledger.duckdb")


@pytest.fixture
def volume(tmp_path: Path) -> Iterator[Path]:
    """A 12 MiB tmpfs (the tiny ledger is 4 MiB), unmounted afterwards whatever happened."""
    mount = tmp_path / "volume"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=12m,mode=0755", "tmpfs", str(mount)], check=True)
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def fill(directory: Path) -> Path:
    """Write a filler file until the volume is full (ENOSPC); returns it."""
    filler = directory / "filler"
    with filler.open("wb") as handle, pytest.raises(OSError, match="No space left on device"):
        _write_forever(handle)
    return filler


def _write_forever(handle: BinaryIO) -> None:
    while True:
        handle.write(b"\0" * 65536)
        handle.flush()


def write_until_refused(ledger: DuckDBLedger, hour: int, batch: FactBatch) -> None:
    """Rewrite `hour` (the WAL may take a few small commits before a block is refused)."""
    for _ in range(50):
        ledger.write_hour("c1", hour, batch, 1.0, ingested_at=7)


@root_only
def test_a_full_volume_stops_the_writer_with_no_space_and_keeps_every_hour(built: Built, volume: Path) -> None:
    path = copy_of(built, volume)
    filler = fill(volume)
    result = kubetally("rollups", "--ledger", str(path), "--rebuild")
    assert result.returncode == 6, result.stderr
    assert one_line(result) == (f"kubetally: no space left on the volume of the ledger {path}: free space or grow the "
                                "volume (PVC), then start again; the ledger keeps every hour committed before")
    spec = tiny()
    ledger = DuckDBLedger(path)  # opening writes nothing to a ledger of this version
    try:
        batch = batch_of(fact_arrays(generate(spec), spec.start))
        with pytest.raises(LedgerNoSpace):  # what `kubetally ingest` and the ingest loop meet
            write_until_refused(ledger, spec.start, batch)
    finally:
        ledger.close()
    filler.unlink()
    after = kubetally("ledger", "verify", "--ledger", str(path))
    assert after.returncode == 0, after.stdout + after.stderr
    assert " 3 hours read in " in after.stdout


@root_only
def test_a_read_only_volume_refuses_writers_and_still_verifies_and_backs_up(built: Built, volume: Path,
                                                                           tmp_path: Path) -> None:
    path = copy_of(built, volume)
    subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
    result = kubetally("rollups", "--ledger", str(path))
    assert result.returncode == 7, result.stderr
    assert one_line(result) == (f"kubetally: the ledger {path} cannot be written: the volume is read-only (uid 0); "
                                "mount the volume read-write for this user; `kubetally ledger verify` and `backup` "
                                "only read")
    assert kubetally("ledger", "verify", "--ledger", str(path)).returncode == 0
    saved = kubetally("ledger", "backup", "--ledger", str(path), "--to", str(tmp_path / "backup.duckdb"))
    assert saved.returncode == 0, saved.stderr
    assert saved.stdout.startswith(f"backed up {path} to {tmp_path / 'backup.duckdb'} (3 hours, ")


WRITER = """
import sys
from kubetally.bench.ledgers import batch_of
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, tiny
spec = tiny()
cluster = generate(spec)
batches = [batch_of(fact_arrays(cluster, h)) for h in range(spec.start, spec.end, 3600)]
ledger = DuckDBLedger(sys.argv[1])
ledger.connection.execute("SET checkpoint_threshold = '1GB'")  # commits stay in the WAL
for k in range(10**6):
    ledger.write_hour("c1", spec.start + 3600 * (k % 3), batches[k % 3], 1.0, ingested_at=1000 + k)
    print(k, flush=True)
"""


def test_a_writer_killed_mid_hour_whose_wal_is_lost_leaves_whole_hours(built: Built, tmp_path: Path) -> None:
    seed = random.randrange(2**32)
    print(f"KUBETALLY_WAL_SEED={seed}")
    pause = random.Random(seed).uniform(0.5, 2.0)
    path = copy_of(built, tmp_path)
    with subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, text=True,
                          env={"PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}", "PATH": "/usr/bin:/bin"}) as writer:
        assert writer.stdout is not None
        assert writer.stdout.readline().strip() == "0"
        time.sleep(pause)
        writer.kill()  # SIGKILL, mid-hour or between two
        writer.wait()
    wal = Path(f"{path}.wal")
    assert wal.exists()
    wal.unlink()
    result = kubetally("ledger", "verify", "--ledger", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert " 3 hours read in " in result.stdout
    con = duckdb.connect(str(path), read_only=True)
    try:
        rows = con.execute("SELECT hour_start, container_facts FROM hours ORDER BY 1").fetchall()
    finally:
        con.close()
    assert rows == [(hour, built.container_facts[hour]) for hour in built.hours]  # every hour whole, as checkpointed


@root_only
def test_serve_refuses_to_start_on_a_full_or_read_only_volume(built: Built, volume: Path) -> None:
    """`serve` (and `run`, which opens the ledger the same way first) exits with the sentence and its code."""
    filler = fill(volume)
    new = volume / "data" / "kubetally.duckdb"
    full = kubetally("serve", "--prometheus-url", "http://127.0.0.1:9", "--port", "0", "--ledger", str(new))
    assert full.returncode == 6, full.stderr
    assert one_line(full).startswith(f"kubetally: no space left on the volume of the ledger {new}: ")
    filler.unlink()
    path = copy_of(built, volume)
    subprocess.run(["mount", "-o", "remount,ro", str(volume)], check=True)
    read_only = kubetally("serve", "--prometheus-url", "http://127.0.0.1:9", "--port", "0", "--ledger", str(path))
    assert read_only.returncode == 7, read_only.stderr
    assert one_line(read_only).startswith(f"kubetally: the ledger {path} cannot be written: the volume is read-only")
