# syntax=docker/dockerfile:1

FROM openpolicyagent/opa:1.4.2-static AS opa

FROM python:3.11-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends gcc libc6-dev \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml ./
COPY service/ service/
RUN pip install --no-cache-dir --prefix=/install .

FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
COPY --from=build /install /usr/local
COPY --from=opa /opa /usr/local/bin/opa
WORKDIR /app
COPY rules/ rules/
COPY rego/ rego/
RUN useradd --system --uid 10001 --no-create-home --shell /usr/sbin/nologin opsgate \
 && mkdir -p /data && chown opsgate:opsgate /data
USER 10001
ENV OPSGATE_OPA_BIN=/usr/local/bin/opa OPSGATE_DB=/data/decisions.db
VOLUME /data
EXPOSE 8080
HEALTHCHECK --interval=30s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8080/health', timeout=2)"]
CMD ["opsgate", "serve", "--host", "0.0.0.0", "--port", "8080"]
