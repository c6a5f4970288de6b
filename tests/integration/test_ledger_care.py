"""The ledger's integrity, backups and repair with real processes: `kubetally ingest` and `kubetally
serve` against the tiny generated cluster in a real Prometheus, answers read with real curl (issue 19).

- A damaged ledger (a flipped byte in a data block; a file cut in half) is never served silently:
  /readyz 200 `degraded: the ledger … is damaged (…)`, /v2/cost and Alauda a 503 Status naming the
  damage, `kubetally_ledger_damaged 1`, and the file is not written.
- A backup taken while `kubetally serve` holds the ledger and runs its ingest loop, restored into a
  fresh directory, answers `/v2/cost` as the original for several queries: the same status, rows,
  names and fields, numbers equal to 1e-12 relative (DuckDB's parallel sums may differ in the last
  bit between two processes, even on the same file).
- `kubetally ledger repair` of hours within Prometheus' retention equals an uninterrupted `kubetally
  ingest` row for row (every fact table, sorted); an hour older than the data is named as lost.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import math
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import httpx
import pytest

from kubetally.facts.schema import TABLES
from kubetally.processes import free_port
from tests.integration.conftest import Served
from tests.support.processes import managed_process
from tests.support.weights import WEIGHTS_YAML
from tests.unit.ledger.files import block_of, flip

pytestmark = pytest.mark.integration
ROOT = Path(__file__).resolve().parents[2]
ENV = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}


def kubetally(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "kubetally", *args], capture_output=True, text=True, timeout=300,
                          env=ENV)


def stamp(epoch: int) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@pytest.fixture(scope="module")
def ingested(tiny: Served, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny cluster's 3 hours, by one uninterrupted `kubetally ingest`."""
    spec = tiny.cluster.spec
    path = tmp_path_factory.mktemp("ingested") / "ledger.duckdb"
    result = kubetally("ingest", "--prometheus-url", tiny.url, "--ledger", str(path), "--start", str(spec.start),
                       "--end", str(spec.end), "--cluster", spec.name, "--resolution", str(spec.scrape_seconds))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-1].startswith("ingested 3 hours")
    return path


@contextmanager
def serving(served: Served, ledger: Path, workdir: Path, *, hours: int | None,
            extra: tuple[str, ...] = ()) -> Iterator[str]:
    """`kubetally serve` on `ledger` with its clock at the data's end; ready at /readyz 200 (and, with
    `hours`, once `kubetally_ledger_hours` says so)."""
    spec = served.cluster.spec
    port = free_port()
    weights = workdir / "weights.yaml"
    weights.write_text(WEIGHTS_YAML)
    url = f"http://127.0.0.1:{port}"
    log = workdir / f"serve-{port}.log"

    def ready() -> bool:
        if httpx.get(f"{url}/readyz", timeout=2).status_code != 200:
            return False
        metrics = httpx.get(f"{url}/metrics", timeout=2).text
        return hours is None or f'kubetally_ledger_hours{{cluster="{spec.name}"}} {float(hours)}' in metrics

    command = [sys.executable, "-m", "kubetally", "serve", "--prometheus-url", served.url, "--ledger", str(ledger),
               "--weights", str(weights), "--port", str(port), "--cluster", spec.name, "--now", str(spec.end + 600),
               "--resolution", str(spec.scrape_seconds), "--ingest-interval", "5", *extra]
    with managed_process(command, log, ready, what="kubetally serve", timeout=120, env=ENV):
        yield url


def curl(url: str) -> tuple[int, bytes]:
    """Status and body as curl gets them."""
    result = subprocess.run(["curl", "-sS", "-m", "30", "-w", "\n%{http_code}", url], capture_output=True, timeout=60,
                            check=True)
    body, _, code = result.stdout.rpartition(b"\n")
    return int(code), body


@pytest.mark.parametrize("damage", ["flipped byte", "cut in half"])
def test_serve_never_answers_silently_from_a_damaged_ledger(tiny: Served, ingested: Path, tmp_path: Path,
                                                             damage: str) -> None:
    spec = tiny.cluster.spec
    path = tmp_path / "ledger.duckdb"
    shutil.copyfile(ingested, path)
    if damage == "flipped byte":
        block = block_of(path, "container_facts")
        flip(path, block + 100)
        why = (f"is damaged (3 finding(s) at start, first: table container_facts: the block at byte {block} fails its "
               "checksum)")
    else:
        with path.open("r+b") as handle:
            handle.truncate(path.stat().st_size // 2)
        why = "is damaged ("
    before = hashlib.sha256(path.read_bytes()).hexdigest()
    with serving(tiny, path, tmp_path, hours=None) as url:
        code, body = curl(f"{url}/readyz")
        assert code == 200
        assert body.decode().startswith(f"degraded: the ledger {path} {why}"), body
        window = f"{stamp(spec.start)},{stamp(spec.start + 7200)}"
        for route in (f"/v2/cost?window={window}&aggregate=namespace",
                      f"/platform/cost.alauda.io/v1beta1/costs/usage?kind=namespace_all&type=Cpu&startTime="
                      f"{stamp(spec.start)}&endTime={stamp(spec.start + 7200)}"):
            code, body = curl(url + route)
            status = json.loads(body)
            assert code == 503, body
            assert status["kind"] == "Status"
            assert status["reason"] == "ServiceUnavailable"
            assert status["message"].startswith(f"the ledger cannot answer: the ledger {path} {why}"), status
        code, body = curl(f"{url}/metrics")
        assert code == 200
        assert b"\nkubetally_ledger_damaged 1.0\n" in body
    assert hashlib.sha256(path.read_bytes()).hexdigest() == before  # nothing written into it


QUERIES = ["window={a},{b}&aggregate=namespace", "window={a},{b}&aggregate=pod&step=1h&idle=true",
           "window={a},{b}&aggregate=controller&filter=namespace:%22shop%22", "window={a},{b}&aggregate=node&format=csv",
           "window={a},{b}&aggregate=project&idle=true&step=1h"]


def answers(served: Served, ledger: Path, workdir: Path) -> dict[str, tuple[int, bytes]]:
    """QUERIES asked with curl of a `kubetally serve` started on `ledger` (its whole 3 hours: nothing live)."""
    spec = served.cluster.spec
    workdir.mkdir()
    with serving(served, ledger, workdir, hours=3) as url:
        return {query: curl(f"{url}/v2/cost?" + query.format(a=stamp(spec.start), b=stamp(spec.end)))
                for query in QUERIES}


def test_a_backup_taken_while_serving_restores_to_identical_answers(tiny: Served, tmp_path: Path) -> None:
    """The backup is taken from a running `kubetally serve` (its ingest loop and rollup builds going on);
    the original and the restored file are then each served by a new process. (A process that built
    its rollups itself may sum in another order than one that read them from a file: the comparison is
    file against file, which is what a restore must preserve.)"""
    original = tmp_path / "a" / "ledger.duckdb"
    original.parent.mkdir()
    with serving(tiny, original, tmp_path / "a", hours=3):
        for _ in range(30):  # until the serve has stored its rollups (3 hours × 3 methods)
            result = kubetally("ledger", "backup", "--ledger", str(original), "--to", f"{tmp_path / 'backups'}/")
            assert result.returncode == 0, result.stderr
            assert "(3 hours, " in result.stdout
            made = Path(result.stdout.split(" to ")[1].split(" (")[0])
            assert made.parent == tmp_path / "backups"
            if built_rollups(made) == 9:
                break
            time.sleep(1.1)
    fresh = tmp_path / "fresh-volume" / "kubetally.duckdb"
    restored = kubetally("ledger", "restore", "--from", str(made), "--ledger", str(fresh))
    assert restored.returncode == 0, restored.stderr
    want = answers(tiny, original, tmp_path / "original")
    assert all(code == 200 for code, _ in want.values()), want
    got = answers(tiny, fresh, tmp_path / "restored")
    assert got.keys() == want.keys()
    for query, (code, body) in got.items():
        assert code == want[query][0], query
        assert same(decoded(body), decoded(want[query][1])), query


def decoded(body: bytes) -> Any:
    """A JSON body as objects, a CSV body as its rows (cells that read as numbers as floats)."""
    if body.startswith(b"{"):
        return json.loads(body)
    rows = list(csv.reader(io.StringIO(body.decode())))
    return [[_number(cell) for cell in row] for row in rows]


def _number(cell: str) -> Any:
    try:
        return float(cell)
    except ValueError:
        return cell


def same(a: Any, b: Any) -> bool:
    """Equal, numbers to 1e-12 relative: two processes answering from the same file may sum in another
    order (DuckDB aggregates in parallel), so the last bit of a float may differ; nothing else may."""
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, int | float) and isinstance(b, int | float) and math.isclose(a, b, rel_tol=1e-12,
                                                                                       abs_tol=1e-12)
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def test_the_backup_schedule_keeps_the_newest(tiny: Served, tmp_path: Path) -> None:
    """`serve --backup-dir D --backup-every 1.5 --backup-keep 2`: dated backups, the newest 2 kept, each a
    whole ledger; the time of the last one in `kubetally_ledger_backup_timestamp_seconds`. A second start
    on the same directory rotates before its first backup, so a stop's leftover is gone."""
    backups = tmp_path / "backups"
    extra = ("--backup-dir", str(backups), "--backup-every", "1.5", "--backup-keep", "2")
    with serving(tiny, tmp_path / "ledger.duckdb", tmp_path, hours=3, extra=extra) as url:
        started = time.monotonic()
        while len(list(backups.glob("kubetally-ledger-*.duckdb"))) < 2 or time.monotonic() < started + 5:
            assert time.monotonic() < started + 60
            time.sleep(0.5)
        metrics = httpx.get(f"{url}/metrics", timeout=5).text
    made = sorted(backups.glob("kubetally-ledger-*.duckdb"))
    # the older ones removed (one every 1.5 s for at least 5 s); a third when the stop came between the
    # last backup and its rotation (the backup's thread finishes before the process exits)
    assert len(made) in (2, 3), made
    stamp_line = next(line for line in metrics.splitlines() if line.startswith("kubetally_ledger_backup_timestamp"))
    assert float(stamp_line.split()[1]) > time.time() - 60
    assert "kubetally_ledger_damaged 0.0" in metrics
    for path in made:
        checked = kubetally("ledger", "verify", "--ledger", str(path))
        assert checked.returncode == 0, checked.stdout
        assert " 3 hours read in " in checked.stdout
    extra = ("--backup-dir", str(backups), "--backup-every", "3600", "--backup-keep", "1")
    with serving(tiny, tmp_path / "ledger.duckdb", tmp_path, hours=3, extra=extra):
        assert sorted(backups.glob("kubetally-ledger-*.duckdb")) == made[-1:]  # rotated at start, none taken yet


def built_rollups(path: Path) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return int((con.execute("SELECT count(*) FROM rollup_hours").fetchone() or (0,))[0])
    finally:
        con.close()


def facts(path: Path) -> dict[str, list[str]]:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return {table: sorted(map(repr, con.execute(f"SELECT * FROM {table}").fetchall())) for table in TABLES}
    finally:
        con.close()


@pytest.mark.parametrize("damage", ["facts of an hour deleted", "flipped byte"])
def test_repair_within_retention_equals_an_uninterrupted_ingest(tiny: Served, ingested: Path, tmp_path: Path,
                                                                damage: str) -> None:
    spec = tiny.cluster.spec
    path = tmp_path / "ledger.duckdb"
    shutil.copyfile(ingested, path)
    second, old = spec.start + 3600, spec.start - 2 * 86400  # `old`: two days before Prometheus' first sample
    if damage == "flipped byte":
        flip(path, block_of(path, "container_facts") + 100)
        again, lost = [spec.start, second, spec.start + 7200], []
    else:
        con = duckdb.connect(str(path))
        for table in ("container_facts", "node_facts"):
            con.execute(f"DELETE FROM {table} WHERE segment_start >= ? AND segment_start < ?", [second, second + 3600])
        con.execute("INSERT INTO hours VALUES (?, ?, 1.0, 0, 5)", [spec.name, old])  # facts gone with the retention
        con.close()
        again, lost = [second], [old]
    result = kubetally("ledger", "repair", "--ledger", str(path), "--prometheus-url", tiny.url, "--cluster", spec.name,
                       "--resolution", str(spec.scrape_seconds), "--now", str(spec.end + 600))
    print(result.stdout)
    assert result.returncode == (1 if lost else 0), result.stdout + result.stderr
    for hour in again:
        assert f"ingested {stamp(hour)[:16]}Z again from Prometheus: " in result.stdout
    if lost:
        assert (f"1 hours are beyond Prometheus' retention (or of another cluster) and are missing: "
                f"{stamp(old)[:16]}Z ({spec.name}); restore them from a backup") in result.stdout
    assert facts(path) == facts(ingested)
    assert kubetally("ledger", "verify", "--ledger", str(path)).returncode == 0
    assert list(path.parent.glob("ledger.duckdb.damaged-*"))  # the damaged file is kept
