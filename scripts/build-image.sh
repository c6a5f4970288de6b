#!/usr/bin/env bash
# Build the kubetally image from the repository's Dockerfile without a container registry.
#
# No registry is reachable here, so the Dockerfile's base (python:3.11-slim) is replaced by a local
# Debian bookworm made with debootstrap (minbase + python3, python3-venv, ca-certificates), and that
# is the only difference: `--build-arg BASE=<the local base>`. Debian's buildah builds it as root
# with chroot isolation and the runc runtime (crun fails on this machine's cgroup setup), ulimits
# nofile=1024:1024 and nproc=4096:4096, and the host's CA bundle mounted over /etc/ssl/certs so
# that pip inside the build reaches PyPI through the host's TLS setup.
#
# Steps, each with a deadline, each timed:
#   1. apt-get install buildah podman debootstrap runc, if any is missing;
#   2. the base's root filesystem as a tarball, made once and cached in
#      $KUBETALLY_CACHE/image/bookworm-python3-<key>.tar (key: suite, mirror, package list);
#   3. `podman import` of that tarball as $KUBETALLY_BASE_IMAGE, unless the store has it already;
#   4. `buildah bud` of the Dockerfile as $KUBETALLY_IMAGE.
#
# Usage:  scripts/build-image.sh          # last line of stdout: the image name; progress on stderr
# Env:    KUBETALLY_CACHE       cache root (default ~/.cache/kubetally)
#         KUBETALLY_IMAGE       the image to build (default localhost/kubetally:latest)
#         KUBETALLY_BASE_IMAGE  the local base's name (default localhost/kubetally-base:bookworm-<key>)
#         DEBIAN_MIRROR         debootstrap's mirror (default http://deb.debian.org/debian)
# Needs:  root, Debian (apt-get, chroot), deb.debian.org and PyPI. Cold: about 1 min for the base,
#         half a minute for the build (the wheels are downloaded every time: no pip cache is kept).
set -euo pipefail
export DEBIAN_FRONTEND=noninteractive
cd "$(dirname "$0")/.."
ROOT="$(pwd)"

SUITE=bookworm
MIRROR="${DEBIAN_MIRROR:-http://deb.debian.org/debian}"
# passwd (groupadd, useradd) is Priority: required, so minbase has it already.
BASE_PACKAGES=python3,python3-venv,ca-certificates
CACHE_DIR="${KUBETALLY_CACHE:-$HOME/.cache/kubetally}/image"
KEY="$(printf '%s\n' "$SUITE" "$MIRROR" "$BASE_PACKAGES" minbase-v1 | sha256sum | cut -c1-12)"
TARBALL="$CACHE_DIR/$SUITE-python3-$KEY.tar"
BASE_IMAGE="${KUBETALLY_BASE_IMAGE:-localhost/kubetally-base:$SUITE-$KEY}"
IMAGE="${KUBETALLY_IMAGE:-localhost/kubetally:latest}"

# Deadlines in seconds. The build downloads ~100 MB of wheels (duckdb, numpy, cryptography...).
APT_TIMEOUT=600
DEBOOTSTRAP_TIMEOUT=900
TAR_TIMEOUT=300
IMPORT_TIMEOUT=300
BUILD_TIMEOUT=1500

step() { echo "==> $*" >&2; }
die() { echo "error: build-image: $*" >&2; exit 1; }
# run SECONDS WHAT COMMAND...: COMMAND with a deadline; a one-line error naming WHAT if it fails.
run() {
  local seconds=$1 what=$2 rc=0
  shift 2
  timeout --kill-after=15 "$seconds" "$@" || rc=$?
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    die "$what did not finish within ${seconds}s"
  elif [[ $rc -ne 0 ]]; then
    die "$what failed (exit $rc; its output is above)"
  fi
}
# quiet LOG SECONDS WHAT COMMAND...: `run` with the output in LOG, whose tail is shown if it fails.
quiet() {
  local log=$1 seconds=$2 what=$3 rc=0
  shift 3
  timeout --kill-after=15 "$seconds" "$@" >"$log" 2>&1 || rc=$?
  [[ $rc -eq 0 ]] && return 0
  tail -n 20 "$log" >&2
  if [[ $rc -eq 124 || $rc -eq 137 ]]; then
    die "$what did not finish within ${seconds}s (log: $log)"
  fi
  die "$what failed (exit $rc; log: $log)"
}
# timed NAME COMMAND...: run COMMAND and record how long it took, printed at the end.
TIMINGS=()
timed() {
  local name=$1 start=$SECONDS
  shift
  "$@"
  TIMINGS+=("$name $((SECONDS - start))s")
}

[[ "$(id -u)" == 0 ]] || die "must run as root (apt-get, debootstrap, and buildah with chroot isolation)"
command -v apt-get >/dev/null 2>&1 || die "needs Debian's apt-get to install buildah, podman, debootstrap and runc"

# 1. The tools.
install_tools() {
  local missing=()
  local tool
  for tool in buildah podman debootstrap runc; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
  done
  [[ ${#missing[@]} -eq 0 ]] && return 0
  step "installing ${missing[*]} (apt-get)"
  # runc is named explicitly: it satisfies podman's "crun | runc" so that crun is not installed.
  if ! timeout "$APT_TIMEOUT" apt-get install -y -q --no-install-recommends buildah podman debootstrap runc >&2; then
    run "$APT_TIMEOUT" "apt-get update" apt-get update -q >&2
    run "$APT_TIMEOUT" "apt-get install buildah podman debootstrap runc" \
      apt-get install -y -q --no-install-recommends buildah podman debootstrap runc >&2
  fi
}

# 2. The base's root filesystem, cached as a tarball.
WORK=""
cleanup_rootfs() {
  [[ -n "$WORK" && -d "$WORK" ]] || return 0
  # debootstrap mounts /proc and /sys in the target; never delete through a mount.
  local mount
  while read -r mount; do
    umount -l "$mount" 2>/dev/null || true
  done < <(findmnt -rn -o TARGET | grep -F "$WORK/" | sort -r)
  rm -rf --one-file-system "$WORK"
}
make_base_tarball() {
  if [[ -s "$TARBALL" ]]; then
    step "base $SUITE root filesystem: cached ($TARBALL)"
    return 0
  fi
  step "base $SUITE root filesystem: debootstrap --variant=minbase --include=$BASE_PACKAGES (cold: about 1 min)"
  WORK="$(mktemp -d "$CACHE_DIR/rootfs.XXXXXX")"
  trap cleanup_rootfs EXIT
  quiet "$CACHE_DIR/debootstrap.log" "$DEBOOTSTRAP_TIMEOUT" "debootstrap $SUITE from $MIRROR" \
    debootstrap --variant=minbase --include="$BASE_PACKAGES" "$SUITE" "$WORK/rootfs" "$MIRROR"
  # Smaller and reproducible: no package lists, downloaded .debs, logs or documentation.
  rm -rf "$WORK"/rootfs/var/lib/apt/lists/* "$WORK"/rootfs/var/cache/apt/* "$WORK"/rootfs/var/log/* \
    "$WORK"/rootfs/usr/share/doc/* "$WORK"/rootfs/usr/share/man/* "$WORK"/rootfs/usr/share/info/*
  run "$DEBOOTSTRAP_TIMEOUT" "python3 -m venv in the new root filesystem" \
    chroot "$WORK/rootfs" /bin/sh -c 'python3 -m venv /tmp/probe && rm -rf /tmp/probe'
  run "$TAR_TIMEOUT" "tar of the root filesystem" \
    tar --numeric-owner -C "$WORK/rootfs" -cf "$WORK/base.tar" .
  mv "$WORK/base.tar" "$TARBALL"
  cleanup_rootfs
  trap - EXIT
  step "base $SUITE root filesystem: $(du -h "$TARBALL" | cut -f1) cached in $TARBALL"
}

# 3. The base image, imported from the tarball.
import_base() {
  if podman image exists "$BASE_IMAGE"; then
    step "base image $BASE_IMAGE: in the store"
    return 0
  fi
  step "base image $BASE_IMAGE: podman import"
  run "$IMPORT_TIMEOUT" "podman import of $TARBALL" \
    podman import --change 'CMD ["/bin/bash"]' "$TARBALL" "$BASE_IMAGE" >/dev/null
}

# 4. The image, from the real Dockerfile with only its base replaced.
remove_build_containers() {
  local id image
  buildah containers --format '{{.ContainerID}} {{.ImageName}}' 2>/dev/null | while read -r id image; do
    [[ "$image" == "$BASE_IMAGE" ]] && buildah rm "$id" >/dev/null 2>&1
  done
  return 0
}
build_image() {
  step "image $IMAGE: buildah bud --build-arg BASE=$BASE_IMAGE (pip downloads the dependencies)"
  # A failed build removes its containers itself; one killed at the deadline may not.
  trap remove_build_containers EXIT
  run "$BUILD_TIMEOUT" "buildah bud of $ROOT/Dockerfile" \
    buildah bud --isolation chroot --runtime runc \
      --ulimit nofile=1024:1024 --ulimit nproc=4096:4096 \
      --volume /etc/ssl/certs:/etc/ssl/certs:ro \
      --pull=never --build-arg "BASE=$BASE_IMAGE" \
      --file "$ROOT/Dockerfile" --tag "$IMAGE" "$ROOT" >&2
  trap - EXIT
}

mkdir -p "$CACHE_DIR"
timed tools install_tools
# Concurrent callers share the cache: one makes the tarball, the others wait and reuse it.
exec 9>"$CACHE_DIR/.lock"
flock 9
timed base-rootfs make_base_tarball
timed base-import import_base
flock -u 9
timed build build_image
step "built $IMAGE ($(podman image inspect --format '{{.Size}}' "$IMAGE" | numfmt --to=iec) uncompressed); timings: ${TIMINGS[*]}"
echo "$IMAGE"
