# The kubetally image: `kubetally run` (the operator), `serve` and `ingest`.
#   docker build -t kubetally:latest .          (or: podman build / buildah bud, same arguments)
# manifests/manager expects this image as `kubetally:latest` (a placeholder; set the real name in an
# overlay). tests/image builds it with scripts/build-image.sh and checks it in every `make test`.
#
# BASE is the only knob: any Debian-like image with Python 3.11+ and its `venv` module, `groupadd`
# and `useradd`, and a CA bundle at /etc/ssl/certs/ca-certificates.crt. The default is the official
# image; the test, which cannot reach a registry, uses a debootstrapped Debian bookworm (python3,
# python3-venv, ca-certificates) in its place. Debian's own python is "externally managed" (PEP
# 668), so kubetally goes into a venv, /opt/kubetally, on both bases.
ARG BASE=python:3.11-slim

# --- build: the venv. Nothing here reaches the final image but /opt/kubetally. ---------------------
FROM ${BASE} AS build
# PIP_CERT: pip trusts the system CA bundle rather than its own copy, so that a build behind a
# TLS-intercepting proxy works when the host's bundle is mounted over /etc/ssl/certs at build time.
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_CERT=/etc/ssl/certs/ca-certificates.crt
WORKDIR /src
COPY pyproject.toml README.md ./
COPY scripts/console-assets.py ./scripts/
COPY operator/ ./operator/
# The web console's charting library from the npm registry, checked against its pinned integrity
# (a no-op when the build context already holds it, as after scripts/setup.sh).
RUN python3 scripts/console-assets.py
# --no-compile: no .pyc in the image (smaller; the root filesystem is read-only at run time, so
# Python compiles in memory at each start). pip and setuptools are removed from the venv: nothing
# runs them at run time.
RUN python3 -m venv /opt/kubetally \
    && /opt/kubetally/bin/pip install --no-compile . \
    && /opt/kubetally/bin/pip uninstall --yes pip setuptools \
    && find /opt/kubetally -name __pycache__ -prune -exec rm -rf {} +

# --- the image: the base, the venv and a non-root user. ---------------------------------------------
FROM ${BASE}
ENV PATH=/opt/kubetally/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp
COPY --from=build /opt/kubetally /opt/kubetally

# The same non-root uid/gid as the Deployment's securityContext (runAsUser/runAsGroup/fsGroup 65532,
# distroless's "nonroot"). /data holds the DuckDB ledger (KUBETALLY_LEDGER=/data/kubetally.duckdb):
# writable by that user only; in a cluster a volume is mounted there (fsGroup makes it writable).
RUN groupadd --gid 65532 kubetally \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kubetally \
    && mkdir -p /data && chown 65532:65532 /data && chmod 0750 /data
USER 65532:65532
WORKDIR /tmp

EXPOSE 8443
ENTRYPOINT ["kubetally"]
CMD ["run"]
