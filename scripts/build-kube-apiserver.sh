#!/usr/bin/env bash
# Produce a working kube-apiserver (v1.20.2) for kubetally's integration tests and cache it.
#
# Built from Debian bookworm's `kubernetes` source package (1.20.5+really1.20.2), the way Debian's
# debian/rules builds it, with one fix: the vendored github.com/modern-go/reflect2 v1.0.1 is
# replaced by Debian's 1.0.2 (golang-github-modern-go-reflect2-dev), without which the server
# crashes at run time when built with Go 1.19. Also installs etcd-server (etcd 3.4) for the tests.
#
# Usage:  scripts/build-kube-apiserver.sh      # last line of stdout: absolute path of the binary
# Env:    KUBETALLY_CACHE     cache root (default ~/.cache/kubetally); binary in $KUBETALLY_CACHE/bin
#         KUBE_APISERVER_BIN  an existing kube-apiserver to use instead (printed as is, no build)
# Needs:  root (apt-get), Debian bookworm. About 6 minutes on 2 cores; a cache hit is instant.
# See scripts/README-controlplane.md for how to run the control plane with this binary.
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive

CACHE_DIR="${KUBETALLY_CACHE:-$HOME/.cache/kubetally}"
BIN_DIR="$CACHE_DIR/bin"
BIN="$BIN_DIR/kube-apiserver"
STAMP="$BIN_DIR/kube-apiserver.version"
WORK="$CACHE_DIR/work"
LOG="$CACHE_DIR/build-kube-apiserver.log"
LOCK="$CACHE_DIR/.build-kube-apiserver.lock"
REFLECT2_SRC=/usr/share/gocode/src/github.com/modern-go/reflect2
DEB_SRC_FILE=/etc/apt/sources.list.d/kubetally-deb-src.sources
# golang-go, rsync and jq are Build-Depends of the source package (debhelper is not needed: no dh run);
# dpkg-dev unpacks `apt-get source`. No C compiler: the build is CGO_ENABLED=0.
BUILD_PKGS=(golang-go rsync jq make dpkg-dev golang-github-modern-go-reflect2-dev etcd-server)

step() { echo "==> $*" >&2; }
die() { echo "error: $*" >&2; exit 1; }

# 1. An explicit binary wins.
if [[ -n "${KUBE_APISERVER_BIN:-}" ]]; then
  [[ -f "$KUBE_APISERVER_BIN" && -x "$KUBE_APISERVER_BIN" ]] \
    || die "KUBE_APISERVER_BIN=$KUBE_APISERVER_BIN is not an executable file"
  echo "$KUBE_APISERVER_BIN"
  exit 0
fi

# The cache is valid when the binary runs and prints the version recorded in the stamp.
cache_valid() {
  [[ -x "$BIN" && -s "$STAMP" ]] || return 1
  local have want
  have="$("$BIN" --version 2>/dev/null)" || return 1
  want="$(head -n1 "$STAMP")"
  [[ -n "$have" && "$have" == "$want" ]]
}

ensure_etcd() {
  command -v etcd >/dev/null 2>&1 && return 0
  step "installing etcd-server"
  apt-get install -y --no-install-recommends etcd-server >&2 \
    || { apt-get update >&2 && apt-get install -y --no-install-recommends etcd-server >&2; }
}

# 2. Cache hit: instant.
if cache_valid; then
  ensure_etcd
  echo "$BIN"
  exit 0
fi

mkdir -p "$BIN_DIR"
# Serialise concurrent callers (e.g. parallel test workers); the winner builds, the rest reuse.
exec 9>"$LOCK"
flock 9
if cache_valid; then
  ensure_etcd
  echo "$BIN"
  exit 0
fi

[[ "$(id -u)" == 0 ]] || die "must run as root (installs Debian packages with apt-get)"

: >"$LOG"
on_exit() {
  local rc=$?
  if [[ $rc -ne 0 ]]; then
    echo "error: kube-apiserver build failed (exit $rc); log: $LOG" >&2
    echo "----- last 40 lines of $LOG -----" >&2
    tail -n 40 "$LOG" >&2 || true
  fi
}
trap on_exit EXIT

# Add deb-src entries mirroring the enabled Debian deb entries (deb822 and one-line formats).
# (Output is captured before grepping: `cmd | grep -q` can fail with SIGPIPE under pipefail.)
have_kubernetes_src() {
  local out
  out="$(apt-cache showsrc kubernetes 2>/dev/null)" || return 1
  grep -qx 'Package: kubernetes' <<<"$out"
}
installed() {
  [[ "$(dpkg-query -W -f='${Status}' "$1" 2>/dev/null || true)" == "install ok installed" ]]
}
ensure_deb_src() {
  have_kubernetes_src && return 0
  local codename f
  # shellcheck disable=SC1091
  codename="$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")"
  : >"$DEB_SRC_FILE.tmp"
  for f in /etc/apt/sources.list.d/*.sources; do
    [[ -f "$f" && "$f" != "$DEB_SRC_FILE" ]] || continue
    awk -v RS= -v ORS='\n\n' -v cn="$codename" '
      /(^|\n)Types:[^\n]*(^|[ \t])deb([ \t]|$|\n)/ && /(^|\n)URIs:[^\n]*debian/ &&
      $0 ~ ("(^|\\n)Suites:[^\\n]*" cn) && !/(^|\n)Enabled:[ \t]*no/ {
        gsub(/(^|\n)Types:[^\n]*/, "\nTypes: deb-src"); sub(/^\n/, ""); print
      }' "$f" >>"$DEB_SRC_FILE.tmp"
  done
  # One-line format (/etc/apt/sources.list): the same line with deb-src, options kept.
  local list_lines
  list_lines="$(cat /etc/apt/sources.list /etc/apt/sources.list.d/*.list 2>/dev/null \
    | grep -E '^[[:space:]]*deb[[:space:]]' | grep -E "/debian.*[[:space:]]$codename" \
    | sed -E 's/^[[:space:]]*deb[[:space:]]/deb-src /' || true)"
  if [[ -n "$list_lines" ]]; then
    printf '%s\n' "$list_lines" >"${DEB_SRC_FILE%.sources}.list"
  fi
  if [[ -s "$DEB_SRC_FILE.tmp" ]]; then
    mv "$DEB_SRC_FILE.tmp" "$DEB_SRC_FILE"
  else
    rm -f "$DEB_SRC_FILE.tmp"
  fi
  [[ -s "$DEB_SRC_FILE" || -n "$list_lines" ]] \
    || die "found no Debian '$codename' apt source to mirror as deb-src"
  echo "added deb-src entries: $DEB_SRC_FILE" >>"$LOG"
  apt-get update >>"$LOG" 2>&1
  have_kubernetes_src || die "apt-cache showsrc kubernetes finds nothing even after adding deb-src"
}

step "installing build dependencies"
missing=()
for p in "${BUILD_PKGS[@]}"; do
  installed "$p" || missing+=("$p")
done
ensure_deb_src
if ((${#missing[@]})); then
  echo "installing: ${missing[*]}" >>"$LOG"
  apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1 \
    || { apt-get update >>"$LOG" 2>&1 \
         && apt-get install -y --no-install-recommends "${missing[@]}" >>"$LOG" 2>&1; }
fi
[[ -d "$REFLECT2_SRC" ]] || die "$REFLECT2_SRC missing (golang-github-modern-go-reflect2-dev)"
reflect2_version="$(dpkg-query -W -f='${Version}' golang-github-modern-go-reflect2-dev)"
echo "go: $(/usr/lib/go/bin/go version 2>/dev/null || go version); reflect2: $reflect2_version" >>"$LOG"

step "fetching source"
rm -rf "$WORK"
mkdir -p "$WORK"
chmod 755 "$WORK"
(cd "$WORK" && apt-get source kubernetes) >>"$LOG" 2>&1
SRC="$(find "$WORK" -mindepth 1 -maxdepth 1 -type d -name 'kubernetes-*' | head -n1)"
[[ -n "$SRC" && -f "$SRC/debian/rules" ]] || die "apt-get source kubernetes produced no source tree"
deb_version="$(head -n1 "$SRC/debian/changelog" | sed -E 's/^[^(]*\(([^)]*)\).*/\1/')"
echo "source: kubernetes $deb_version in $SRC" >>"$LOG"

# Go 1.19 needs reflect2 >= 1.0.2 (1.0.1 reads runtime internals that changed in Go 1.18).
# The build runs in GOPATH mode (hack/lib/init.sh sets GO111MODULE=off), so swapping the
# vendored files is enough; vendor/modules.txt is not consulted.
rm -rf "$SRC/vendor/github.com/modern-go/reflect2"
mkdir -p "$SRC/vendor/github.com/modern-go/reflect2"
rsync -a --exclude go.mod "$REFLECT2_SRC/" "$SRC/vendor/github.com/modern-go/reflect2/"

step "building kube-apiserver (about 6 minutes on 2 cores)"
started=$SECONDS
# Mirror debian/rules: GOPATH=$(CURDIR)/.go with .go/src/k8s.io/kubernetes -> ../../..,
# PATH with /usr/lib/go/bin first, CGO_ENABLED=0, `make WHAT=...` (version v1.20.2 comes from the
# git-archive values baked into hack/lib/version.sh, no KUBE_GIT_* needed). HOME/GOCACHE live in
# the work dir instead of debian/rules' HOME=/home/user so nothing is left outside the cache.
mkdir -p "$SRC/.go/src/k8s.io" "$WORK/home"
[[ -L "$SRC/.go/src/k8s.io/kubernetes" ]] || ln -s ../../.. "$SRC/.go/src/k8s.io/kubernetes"
(
  cd "$SRC"
  env -u GOFLAGS -u GOROOT -u GO111MODULE \
    GOPATH="$SRC/.go" PATH="/usr/lib/go/bin:$PATH" CGO_ENABLED=0 \
    HOME="$WORK/home" GOCACHE="$WORK/gocache" \
    make WHAT=cmd/kube-apiserver
) >>"$LOG" 2>&1
elapsed=$((SECONDS - started))
built="$SRC/_output/bin/kube-apiserver"
[[ -x "$built" ]] || die "build finished but $built is missing"

version="$("$built" --version)"
[[ "$version" == Kubernetes\ v* ]] || die "built binary prints an unexpected version: '$version'"
install -m 0755 "$built" "$BIN.tmp"
mv -f "$BIN.tmp" "$BIN"
{
  echo "$version"
  echo "debian-source: kubernetes $deb_version"
  echo "go: $(/usr/lib/go/bin/go version)"
  echo "reflect2: $reflect2_version (replaces vendored v1.0.1)"
  echo "built: $(date -u +%Y-%m-%dT%H:%M:%SZ) in ${elapsed}s"
} >"$STAMP"
rm -rf "$WORK"
echo "built $version in ${elapsed}s ($(du -h "$BIN" | cut -f1)); log: $LOG" >&2
echo "$BIN"
