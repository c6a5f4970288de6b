# The kubetally image: `kubetally run` (the operator), `serve` and `ingest`.
#   docker build -t kubetally:latest .
# Not built or tested here: the development machine has no container engine. manifests/manager
# expects this image as `kubetally:latest` (a placeholder; set the real name in an overlay).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY operator/ ./operator/
RUN pip install . && rm -rf /src

# The same non-root uid/gid as the Deployment's securityContext (distroless "nonroot").
RUN groupadd --gid 65532 kubetally \
    && useradd --uid 65532 --gid 65532 --no-create-home --home-dir /tmp --shell /usr/sbin/nologin kubetally \
    && mkdir -p /data && chown 65532:65532 /data
USER 65532:65532
WORKDIR /tmp
ENV HOME=/tmp

EXPOSE 8443
ENTRYPOINT ["kubetally"]
CMD ["run"]
