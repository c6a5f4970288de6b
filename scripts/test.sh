#!/usr/bin/env bash
# The one test command (README): installs what the tests need into .venv and runs every test tier.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh "[dev]"
echo "==> running the tests"
exec .venv/bin/python -m pytest "$@"
