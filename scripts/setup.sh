#!/usr/bin/env bash
# Shared by scripts/test.sh and scripts/demo.sh: .venv, Debian's prometheus (and chromium for the
# tests), the console's charting library, and kubetally itself.
# Usage: source scripts/setup.sh EXTRAS   (EXTRAS: "" for the demo, "[dev]" for the tests)
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
if ! command -v promtool >/dev/null 2>&1 || ! command -v prometheus >/dev/null 2>&1; then
    echo "==> installing Debian's prometheus (the real Prometheus and promtool)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends prometheus >/dev/null
fi
if [ "${1:-}" = "[dev]" ] && ! command -v chromium >/dev/null 2>&1; then
    echo "==> installing Debian's chromium (the browser tests drive it headless with Playwright)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium >/dev/null
fi
# The web console's charting library (ECharts), from the npm registry as pinned, checked by its
# integrity; installed before kubetally so that a non-editable install carries it too.
"$PYTHON" scripts/console-assets.py
echo "==> installing kubetally${1:-} into .venv"
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e ".${1:-}"
