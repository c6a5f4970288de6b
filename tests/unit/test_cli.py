"""`kubetally ingest` answers bad input and an unreachable store with one clear line, exit code 2."""

from __future__ import annotations

from pathlib import Path

import pytest

from kubetally.__main__ import main
from kubetally.processes import free_port


def test_an_unreachable_store_is_one_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    port = free_port()  # nothing listens there
    code = main(["ingest", "--prometheus-url", f"http://127.0.0.1:{port}", "--ledger", str(tmp_path / "l.duckdb"),
                 "--start", "2025-06-01T00:00:00Z", "--end", "2025-06-01T01:00:00Z", "--retries", "0"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("kubetally: ")
    assert f"127.0.0.1:{port}" in err
    assert "Traceback" not in err


def test_a_bad_time_is_refused_by_the_parser(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["ingest", "--prometheus-url", "http://127.0.0.1:1", "--ledger", str(tmp_path / "l"),
              "--start", "yesterday-ish", "--end", "1"])
    assert exit_info.value.code == 2
    assert "--start" in capsys.readouterr().err
