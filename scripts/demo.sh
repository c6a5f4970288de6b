#!/usr/bin/env bash
# The demo command (README): installs what it needs into .venv and runs `kubetally demo`.
# Usage: scripts/demo.sh [kubetally demo args...], e.g. --port 18080. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh ""
exec .venv/bin/python -m kubetally demo "$@"
