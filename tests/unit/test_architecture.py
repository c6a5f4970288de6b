"""The layering contracts of pyproject.toml ([tool.importlinter]) hold, run as a test too."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_import_contracts_hold() -> None:
    lint_imports = Path(sys.executable).parent / "lint-imports"
    env = {**os.environ, "PYTHONPATH": str(ROOT / "operator")}
    result = subprocess.run([str(lint_imports)], cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_engine_and_domain_modules_stay_small() -> None:
    for path in (ROOT / "operator" / "kubetally").rglob("*.py"):
        lines = path.read_text().count("\n")
        assert lines <= 420, f"{path.relative_to(ROOT)} has {lines} lines; split it by concept"


def test_domain_and_engine_read_no_clock_and_no_environment() -> None:
    forbidden = ("datetime.now(", "datetime.utcnow(", "date.today(", "time.time(", "time.monotonic(",
                 "os.environ", "os.getenv(", "open(")
    for layer in ("domain", "engine"):
        for path in (ROOT / "operator" / "kubetally" / layer).rglob("*.py"):
            text = path.read_text()
            for needle in forbidden:
                assert needle not in text, f"{path.relative_to(ROOT)} uses {needle}"
