# syntax=docker/dockerfile:1
#
# `docker build -t opsgate .` (or `podman build --format docker -t opsgate .`) builds on the official
# images.  The base images and the pip options are build arguments so that the image also builds
# offline: tests/image/ builds it on a local Debian root file system, with the opa binary of
# scripts/get-opa.sh and a wheelhouse made on the host (see docs/production.md#container).
ARG PYTHON_IMAGE=python:3.11-slim
ARG OPA_IMAGE=openpolicyagent/opa:1.4.2-static

FROM ${OPA_IMAGE} AS opa

FROM ${PYTHON_IMAGE} AS build
# A compiler for durable_rules' C extension; empty when PIP_OPTIONS points at prebuilt wheels.
ARG BUILD_PACKAGES="gcc libc6-dev"
# e.g. "--no-index --find-links /wheels" with the wheelhouse mounted there (`podman build --volume`)
ARG PIP_OPTIONS=""
RUN if [ -n "$BUILD_PACKAGES" ]; then \
      apt-get update \
      && apt-get install -y --no-install-recommends $BUILD_PACKAGES \
      && rm -rf /var/lib/apt/lists/*; \
    fi
RUN python3 -m venv /opt/opsgate
WORKDIR /src
COPY pyproject.toml ./
COPY service/ service/
RUN /opt/opsgate/bin/pip install --no-cache-dir --disable-pip-version-check $PIP_OPTIONS .

FROM ${PYTHON_IMAGE}
# PATH in full: a base image imported from a root file system carries no environment.
ENV PATH=/opt/opsgate/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /opt/opsgate /opt/opsgate
COPY --from=opa /opa /usr/local/bin/opa
WORKDIR /app
COPY rules/ rules/
COPY rego/ rego/
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin opsgate \
 && mkdir -p /data && chown opsgate:opsgate /data
USER 10001
# OPA's runtime directory and bundle go to TMPDIR (/tmp): with a read-only root, mount a tmpfs there.
ENV OPSGATE_OPA_BIN=/usr/local/bin/opa OPSGATE_DB=/data/decisions.db \
    OPSGATE_HOST=0.0.0.0 OPSGATE_PORT=8080
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('OPSGATE_PORT', '8080'), timeout=2)"]
CMD ["opsgate", "serve"]
