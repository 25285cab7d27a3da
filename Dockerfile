# One image for every role: web receiver, worker, beat. The role is the command.
FROM python:3.11-slim AS base

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LXHUB_CONFIG=/etc/lxhub \
    LXHUB_DATA_DIR=/var/lib/lxhub \
    PROMETHEUS_MULTIPROC_DIR=/var/lib/lxhub/metrics

WORKDIR /app
COPY pyproject.toml README.md ./
COPY hub ./hub
COPY connectors ./connectors
COPY workers ./workers
RUN pip install . \
 && useradd --system --uid 10001 --home-dir /var/lib/lxhub --create-home lxhub \
 && mkdir -p /var/lib/lxhub/metrics /etc/lxhub \
 && chown -R lxhub:lxhub /var/lib/lxhub

USER lxhub
VOLUME ["/var/lib/lxhub"]
EXPOSE 8080

# `lxhub healthcheck` exits 0 when this role is alive (web: /healthz; worker: broker ping).
HEALTHCHECK --interval=30s --timeout=5s --start-period=20s --retries=3 \
  CMD ["lxhub", "healthcheck", "--role", "web"]

ENTRYPOINT ["lxhub"]
CMD ["serve", "--host", "0.0.0.0", "--port", "8080"]
