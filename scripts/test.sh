#!/usr/bin/env bash
# The one test command (README): installs what the tests need into .venv and runs every test tier.
# Usage: scripts/test.sh [pytest args...]
#
# The tests run with an empty cache, as on a fresh machine (issue 12, bug 6: a folder that only
# existed in developers' caches hid a crash): KUBETALLY_CACHE is a new folder under mktemp, removed
# afterwards, holding nothing but `bin/`, a link to the persistent cache's `bin/` (default
# ~/.cache/kubetally/bin), so the kube-apiserver binary (a 7-minute build) is reused, and built
# there, once, if it is missing.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/setup.sh "[dev]"
persistent="${KUBETALLY_CACHE:-$HOME/.cache/kubetally}"
mkdir -p "$persistent/bin"
KUBETALLY_CACHE="$(mktemp -d "${TMPDIR:-/tmp}/kubetally-cache.XXXXXX")"
export KUBETALLY_CACHE
trap 'rm -rf "$KUBETALLY_CACHE"' EXIT
ln -s "$(cd "$persistent/bin" && pwd)" "$KUBETALLY_CACHE/bin"
echo "==> running the tests (empty cache $KUBETALLY_CACHE; kube-apiserver from $persistent/bin)"
.venv/bin/python -m pytest "$@"
