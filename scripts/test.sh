#!/usr/bin/env bash
# The one test command (README): installs what the tests need into .venv and runs every test tier.
# Usage: scripts/test.sh [pytest args...]
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    echo "==> installing Debian's prometheus (real Prometheus and promtool for the integration tier)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
echo "==> installing kubetally and its test dependencies"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "==> running the tests"
exec .venv/bin/python -m pytest "$@"
