#!/usr/bin/env bash
# Static checks: ruff, mypy --strict and the import-layering contracts. Run scripts/test.sh first (it installs).
set -euo pipefail
cd "$(dirname "$0")/.."
echo "==> ruff"
.venv/bin/ruff check operator tests
echo "==> mypy --strict"
.venv/bin/mypy --strict
echo "==> lint-imports"
PYTHONPATH=operator .venv/bin/lint-imports
