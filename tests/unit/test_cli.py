"""`kubetally ingest` and `serve` answer bad input, an unreachable store and unsafe exposure with one clear line, exit 2."""

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


@pytest.mark.parametrize("host", ["0.0.0.0", "192.0.2.10", "kubetally.example"])
def test_serve_refuses_an_open_api_beyond_loopback(host: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    """Without `--auth kubernetes`, anyone reaching a non-loopback address would read every namespace."""
    code = main(["serve", "--prometheus-url", "http://127.0.0.1:1", "--ledger", str(tmp_path / "l.duckdb"),
                 "--host", host])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("kubetally: ")
    assert "Traceback" not in err
    assert f"{host} is not a loopback address" in err
    assert "--auth kubernetes" in err
    assert "--host 127.0.0.1" in err
    assert not (tmp_path / "l.duckdb").exists()  # refused before anything was opened


def test_serve_wants_both_certificate_files(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["serve", "--prometheus-url", "http://127.0.0.1:1", "--ledger", str(tmp_path / "l.duckdb"),
                 "--tls-cert-file", str(tmp_path / "tls.crt")])
    assert code == 2
    assert "give both --tls-cert-file and --tls-private-key-file" in capsys.readouterr().err
