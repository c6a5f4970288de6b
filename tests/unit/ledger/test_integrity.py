"""A damaged, foreign, newer or busy ledger file gives its documented sentence and exit code, never
a traceback, and a damaged one is never opened as if whole (issue 19; README "Ledger: integrity,
backups, restore").

Every file is real: the tiny preset's 3 hours (`tests/unit/ledger/files.py`), cut short at several
offsets, a byte flipped inside a data block of `container_facts`, facts deleted behind the
bookkeeping's back, a stored rollup changed. Expectations are hand-derived from the file layout
(DuckDB 2.0: three 4 KiB headers, then 256 KiB blocks: block b starts at byte 12288 + 262144·b) and
from the generator's own fact counts, never from the code under test.
"""

from __future__ import annotations

import hashlib
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest

from kubetally.keeper import open_verified
from kubetally.ledger.errors import LedgerDamaged, LedgerLocked, NewerLedger, NotALedger
from kubetally.ledger.files import damaged
from kubetally.ledger.store import DuckDBLedger
from kubetally.reports import failed_status
from tests.unit.ledger.files import BLOCK, ROOT, Built, block_of, build_tiny, copy_of, flip, kubetally, one_line


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Built:
    return build_tiny(tmp_path_factory.mktemp("tiny") / "ledger.duckdb")


def stamp(hour: int) -> str:
    return datetime.fromtimestamp(hour, UTC).strftime("%Y-%m-%dT%H:%MZ")


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_whole_ledger_verifies_clean(built: Built, tmp_path: Path) -> None:
    path = copy_of(built, tmp_path)
    result = kubetally("ledger", "verify", "--ledger", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    # 19 tables: ledger_meta, hours, price_versions, 4 fact tables, 12 rollup tables (3 hourly, 5 daily,
    # 2 node tables, rollup_hours, rollup_days); the tiny preset holds 3 hours.
    assert result.stdout.startswith(f"{path}: clean; 19 tables, "), result.stdout
    assert " 3 hours read in " in result.stdout


@pytest.mark.parametrize("cut", ["last block", "half a block off", "half", "first data block", "headers"])
def test_a_ledger_cut_short_is_damaged_and_never_opened_as_whole(built: Built, tmp_path: Path, cut: str) -> None:
    path = copy_of(built, tmp_path)
    size = path.stat().st_size
    offset = {"last block": size - BLOCK, "half a block off": size - BLOCK // 2, "half": size // 2,
              "first data block": 12288 + 100, "headers": 8192}[cut]
    with path.open("r+b") as handle:
        handle.truncate(offset)
    result = kubetally("ledger", "verify", "--ledger", str(path))
    print(f"cut at {offset} of {size}: {result.stdout}")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "damaged: " in result.stdout
    assert "DAMAGED" in result.stdout
    # DuckDB's words become ours: the file ends before a byte past the cut.
    ends = [int(line.split("ends before byte ")[1].split(":")[0]) for line in result.stdout.splitlines()
            if "cut short" in line]
    assert ends, result.stdout
    assert all(end > offset for end in ends), result.stdout
    before = digest(path)
    ledger = open_verified(path)
    try:
        assert isinstance(ledger.failure, LedgerDamaged)
        assert str(ledger.failure).startswith(f"the ledger {path} is damaged (")
        assert "kubetally ledger repair" in str(ledger.failure)
        assert "kubetally ledger restore" in str(ledger.failure)
        with pytest.raises(LedgerDamaged):  # never read, never written
            ledger.hours("c1", 0, 2**40)
    finally:
        ledger.close()
    assert digest(path) == before


def test_a_flipped_byte_in_a_data_block_names_the_block(built: Built, tmp_path: Path) -> None:
    path = copy_of(built, tmp_path)
    block = block_of(path, "container_facts")
    flip(path, block + 100)
    result = kubetally("ledger", "verify", "--ledger", str(path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"damaged: table container_facts: the block at byte {block} fails its checksum" in result.stdout
    before = digest(path)
    for command in (["rollups"], ["ingest", "--missing-only", "--prometheus-url", "http://127.0.0.1:9", "--start", "0",
                                  "--end", "3600"]):  # the "ingested 0 hours" on a damaged ledger
        refused = kubetally(*command, "--ledger", str(path))
        assert refused.returncode == 1, refused.stderr
        assert one_line(refused).startswith(f"kubetally: the ledger {path} is damaged (3 finding(s) at start, first: "
                                            f"table container_facts: the block at byte {block} fails its checksum); ")
    assert digest(path) == before
    ledger = open_verified(path)
    try:
        assert isinstance(ledger.failure, LedgerDamaged)
        assert f"the block at byte {block} fails its checksum" in str(ledger.failure)
    finally:
        ledger.close()


def test_facts_missing_behind_the_books_and_a_changed_rollup_are_named(built: Built, tmp_path: Path) -> None:
    path = copy_of(built, tmp_path)
    second = built.hours[1]
    con = duckdb.connect(str(path))
    con.execute("DELETE FROM container_facts WHERE segment_start >= ? AND segment_start < ?", [second, second + 3600])
    con.execute("UPDATE rollup_pods_controller SET cost = cost + 1 WHERE segment_start = ? AND rowid = "
                "(SELECT min(rowid) FROM rollup_pods_controller WHERE segment_start = ?)", [built.hours[0]] * 2)
    con.close()
    result = kubetally("ledger", "verify", "--ledger", str(path))
    assert result.returncode == 1, result.stdout
    lines = result.stdout.splitlines()
    wanted = (f"damaged: hour {stamp(second)} of cluster 'c1': hours records {built.container_facts[second]} "
              "container facts, the ledger holds 0")
    assert wanted in lines, result.stdout
    assert any(line.startswith(f"damaged: rollup_pods_namespace {stamp(second)} of cluster 'c1' (")
               and "stored integrals" in line for line in lines), result.stdout
    assert any(line.startswith(f"damaged: rollup_pods_controller {stamp(built.hours[0])} of cluster 'c1' (")
               and "Σ cost" in line for line in lines), result.stdout


def test_files_that_are_not_ledgers_or_are_newer_are_refused_with_their_codes(built: Built, tmp_path: Path) -> None:
    junk = tmp_path / "notes.txt"
    junk.write_text("not a database\n" * 400)
    empty = tmp_path / "empty.duckdb"
    empty.touch()
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE invoices (id INTEGER)")
    con.close()
    newer = copy_of(built, tmp_path, "newer.duckdb")
    con = duckdb.connect(str(newer))
    con.execute("UPDATE ledger_meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    cases = {
        junk: (4, f"kubetally: {junk} is not a kubetally ledger (not a DuckDB file); point --ledger at the ledger"),
        empty: (4, f"kubetally: {empty} is not a kubetally ledger (an empty file); "),
        other: (4, f"kubetally: {other} is a DuckDB database but not a kubetally ledger (no ledger_meta table; it has "
                   "invoices); "),
        newer: (5, f"kubetally: the ledger {newer} was written by a newer kubetally (schema version 2; this one reads "
                   "up to 1); upgrade kubetally, or restore a backup"),
    }
    for path, (code, start) in cases.items():
        before = digest(path)
        result = kubetally("rollups", "--ledger", str(path))
        assert result.returncode == code, (path, result.stderr)
        assert one_line(result).startswith(start), result.stderr
        verified = kubetally("ledger", "verify", "--ledger", str(path))
        assert verified.returncode == 2
        assert one_line(verified).startswith(start)
        assert digest(path) == before  # nothing written into a file that is not ours
    with pytest.raises(NotALedger):
        DuckDBLedger(other)
    with pytest.raises(NewerLedger):
        DuckDBLedger(newer)


HOLDER = """
import sys
from kubetally.bench.ledgers import batch_of
from kubetally.ledger.store import DuckDBLedger
from kubetally.reports import failed_status
from kubetally.synthetic import fact_arrays, generate, tiny
ledger = DuckDBLedger(sys.argv[1])
print("holding", flush=True)
sys.stdin.readline()
spec = tiny()
ledger.write_hour("c1", spec.start, batch_of(fact_arrays(generate(spec), spec.start)), 1.0, ingested_at=4242)
print("wrote", ledger.hours("c1", 0, 2**40)[spec.start].ingested_at, flush=True)
ledger.close()
"""


def test_a_second_writer_is_told_who_holds_the_ledger_and_the_first_goes_on(built: Built, tmp_path: Path) -> None:
    path = copy_of(built, tmp_path)
    with subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          text=True, env={"PYTHONPATH": f"{ROOT / 'operator'}:{ROOT}", "PATH": "/usr/bin:/bin"}) as holder:
        _second_writer(path, holder)
    after = kubetally("ledger", "verify", "--ledger", str(path))
    assert after.returncode == 0, after.stdout
    assert " 3 hours read in " in after.stdout


def _second_writer(path: Path, holder: subprocess.Popen[str]) -> None:
    try:
        assert holder.stdout is not None
        assert holder.stdin is not None
        assert holder.stdout.readline().strip() == "holding"
        result = kubetally("rollups", "--ledger", str(path))
        assert result.returncode == 3
        line = one_line(result)
        assert line.startswith(f"kubetally: the ledger {path} is in use by PID {holder.pid} ({sys.executable} -c "), line
        assert line.endswith("stop that process first, or let it finish (`kubetally ledger backup` asks a running "
                             "kubetally for a snapshot)"), line
        for command in (["serve", "--prometheus-url", "http://127.0.0.1:9", "--port", "0"],
                        ["ingest", "--prometheus-url", "http://127.0.0.1:9", "--start", "0", "--end", "3600"]):
            refused = kubetally(*command, "--ledger", str(path))
            assert refused.returncode == 3, refused.stderr
            assert one_line(refused) == line  # serve (and run) refuse to start; ingest stops before any query
        with pytest.raises(LedgerLocked) as raised:
            DuckDBLedger(path)
        assert raised.value.pid == holder.pid
        holder.stdin.write("go\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "wrote 4242"  # the first writer's next write is done
        assert holder.wait(timeout=30) == 0
    finally:
        holder.kill()
        holder.wait()


def test_a_report_over_a_damaged_ledger_says_so_in_its_conditions() -> None:
    """What the CostReport and CostBudget handlers write when the service raises the ledger's failure."""
    error = damaged("/data/kubetally.duckdb", "the block at byte 274432 fails its checksum")
    status = failed_status(error, generation=3, now=datetime(2026, 1, 1, 0, 17, tzinfo=UTC))
    reasons = {c["type"]: (c["status"], c["reason"], c["message"]) for c in status["conditions"]}
    message = ("the ledger /data/kubetally.duckdb is damaged (the block at byte 274432 fails its checksum); `kubetally "
               "ledger verify --ledger /data/kubetally.duckdb` lists the damage; `kubetally ledger repair` re-ingests "
               "hours Prometheus still holds, `kubetally ledger restore` puts back a backup")
    assert reasons == {"Ready": ("False", "LedgerDamaged", message), "Degraded": ("True", "LedgerDamaged", message)}
