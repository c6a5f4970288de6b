"""Backups of a ledger, also while another process holds it (and writes), and restores (issue 19).

The holder is a real process that keeps the ledger open, answers on `<ledger>.control` and rewrites
hours all along; `kubetally ledger backup|verify|restore` run as separate processes. A backup must
hold every row of the original (compared table by table, sorted), verify clean, and be refused
nothing because the file is busy; restore must refuse a damaged backup and a ledger in use.
"""

from __future__ import annotations

import stat
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from kubetally.facts.schema import TABLES
from kubetally.ledger import backup
from tests.unit.ledger.files import ROOT, Built, block_of, build_tiny, copy_of, flip, kubetally, one_line


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "ledger.duckdb")


def rows(path: Path, tables: tuple[str, ...] = (*TABLES, "price_versions", "rollup_pods_namespace")) -> dict[str, list[str]]:
    """Every row of `tables`, sorted (the comparison a restore must pass)."""
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {table: sorted(map(repr, con.execute(f"SELECT * FROM {table}").fetchall())) for table in tables}
    finally:
        con.close()


def test_backups_of_a_free_ledger_rotate_and_hold_every_row(built: Built, tmp_path: Path) -> None:
    path = copy_of(built, tmp_path / "data")
    target = tmp_path / "backups"
    target.mkdir()
    made = []
    for _ in range(3):
        result = kubetally("ledger", "backup", "--ledger", str(path), "--to", f"{target}/", "--keep", "2")
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith(f"backed up {path} to {target}/kubetally-ledger-"), result.stdout
        assert "(3 hours, " in result.stdout
        assert "verified clean) in " in result.stdout
        made.append(result.stdout.split(" to ")[1].split(" (")[0])
        (target / "unrelated.txt").write_text("kept: not a backup's name")
        if len(made) < 3:
            time.sleep(1.1)  # names carry the second
    left = sorted(p.name for p in target.iterdir())
    assert left == sorted([Path(made[1]).name, Path(made[2]).name, "unrelated.txt"])
    assert rows(Path(made[2])) == rows(path)


HOLDER = """
import asyncio, sys
from kubetally.bench.ledgers import batch_of
from kubetally.keeper import control_socket
from kubetally.ledger.store import DuckDBLedger
from kubetally.synthetic import fact_arrays, generate, tiny

async def main():
    spec = tiny()
    cluster = generate(spec)
    batches = [batch_of(fact_arrays(cluster, h)) for h in range(spec.start, spec.end, 3600)]
    ledger = DuckDBLedger(sys.argv[1])
    async with control_socket(ledger):
        print("serving", flush=True)
        k = 0
        while not sys.stdin.closed:
            await asyncio.to_thread(ledger.write_hour, "c1", spec.start + 3600 * (k % 3), batches[k % 3], 1.0, 1000 + k)
            k += 1
            if k == 10**9:
                break
            await asyncio.sleep(0.01)
asyncio.run(main())
"""


def test_a_backup_and_a_verify_while_another_process_holds_and_writes_the_ledger(built: Built,
                                                                                   tmp_path: Path) -> None:
    deep = tmp_path / ("a-directory-with-a-long-name-" * 3) / "data"  # its socket path is over AF_UNIX's 107 bytes
    path = copy_of(built, deep)
    want = rows(path, tuple(TABLES))
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, env={"PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}", "PATH": "/usr/bin:/bin"}) as holder:
        assert holder.stdout is not None
        try:
            assert holder.stdout.readline().strip() == "serving"
            control = Path(f"{path}.control")
            assert stat.S_IMODE(control.stat().st_mode) == 0o600
            result = kubetally("ledger", "backup", "--ledger", str(path), "--to", str(tmp_path / "snap.duckdb"))
            assert result.returncode == 0, result.stderr
            assert result.stdout.startswith(f"backed up {path} to {tmp_path / 'snap.duckdb'} (3 hours, "), result.stdout
            checked = kubetally("ledger", "verify", "--ledger", str(path))
            assert checked.returncode == 0, checked.stdout + checked.stderr
            assert checked.stdout.rstrip().endswith("(by the process holding it)")
            busy = kubetally("ledger", "restore", "--from", str(tmp_path / "snap.duckdb"), "--ledger", str(path))
            assert busy.returncode == 3
            assert one_line(busy).startswith(f"kubetally: the ledger {path} is in use by PID {holder.pid} (")
        finally:
            holder.kill()
            holder.wait()
    assert rows(tmp_path / "snap.duckdb", tuple(TABLES)) == want  # rewritten hours hold the same facts
    assert kubetally("ledger", "verify", "--ledger", str(tmp_path / "snap.duckdb")).returncode == 0


def test_restore_into_a_fresh_volume_and_refusals(built: Built, tmp_path: Path) -> None:
    source = copy_of(built, tmp_path / "old")
    saved = tmp_path / "backup.duckdb"
    assert kubetally("ledger", "backup", "--ledger", str(source), "--to", str(saved)).returncode == 0
    fresh = tmp_path / "new-volume" / "kubetally.duckdb"
    result = kubetally("ledger", "restore", "--from", str(saved), "--ledger", str(fresh))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"restored {fresh} from {saved} (3 hours, verified clean)"
    assert rows(fresh) == rows(source)
    again = kubetally("ledger", "restore", "--from", str(saved), "--ledger", str(fresh))
    assert again.returncode == 0
    kept = again.stdout.strip().split("the file it replaced is kept at ")[1]
    assert Path(kept).name.startswith("kubetally.duckdb.replaced-")
    damaged = copy_of(built, tmp_path / "bad", "damaged.duckdb")
    block = block_of(damaged, "container_facts")
    flip(damaged, block + 100)
    before = fresh.read_bytes()
    refused = kubetally("ledger", "restore", "--from", str(damaged), "--ledger", str(fresh))
    assert refused.returncode == 1
    # 3 findings: the block, and the two bookkeeping checks that read container_facts
    assert one_line(refused).startswith(f"kubetally: the ledger {damaged} is damaged (3 finding(s), first: table "
                                        f"container_facts: the block at byte {block} fails its checksum); ")
    assert fresh.read_bytes() == before
    assert backup.PATTERN.fullmatch("kubetally-ledger-20260101T000000Z.duckdb")
