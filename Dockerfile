# syntax=docker/dockerfile:1
# aliyun-rds-backup-exporter: Prometheus exporter for Alibaba Cloud RDS backup status.
#
#   docker build -t aliyun-rds-backup-exporter .
#   docker run --rm -p 9877:9877 aliyun-rds-backup-exporter --demo
#   docker run --rm -p 9877:9877 -v "$PWD/config.yaml:/etc/aliyun-rds-backup-exporter/config.yaml:ro" \
#       -e ALIBABA_CLOUD_ACCESS_KEY_ID -e ALIBABA_CLOUD_ACCESS_KEY_SECRET aliyun-rds-backup-exporter
#
# tests/integration/test_docker.py lints this file with hadolint and replays the install steps
# (wheel, fresh virtual environment, console script, health check) without a Docker engine.

ARG PYTHON_IMAGE=python:3.12-slim-bookworm

# ---- build: the project's wheel, installed with its dependencies into /opt/venv -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
WORKDIR /src
# .dockerignore lets in only what the wheel needs: pyproject.toml, README.md, LICENSE, exporter/.
COPY . .
# Every dependency ships binary wheels, so no compiler is needed, here or in the final image.
# The virtual environment has no pip of its own: the image's pip installs into it.
RUN pip wheel --no-deps --wheel-dir /wheels . \
    && python -m venv --without-pip /opt/venv \
    && pip --python /opt/venv/bin/python install /wheels/*.whl

# ---- runtime: the virtual environment and nothing else --------------------------------------
FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="aliyun-rds-backup-exporter" \
      org.opencontainers.image.description="Prometheus exporter for Alibaba Cloud RDS backup status" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1
RUN groupadd --system --gid 10001 exporter \
    && useradd --system --uid 10001 --gid exporter --no-log-init --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin exporter
COPY --from=build /opt/venv /opt/venv
# Mount config.yaml here (a file, a ConfigMap or a Secret); secrets can stay in the environment
# through ${VAR} references in the file.
VOLUME ["/etc/aliyun-rds-backup-exporter"]
USER 10001:10001
EXPOSE 9877
# The image has no curl or wget: Python itself asks the exporter. Adjust the port if you change
# --web.listen-address.
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 \
    CMD ["python", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:9877/-/healthy', timeout=4)"]
ENTRYPOINT ["aliyun-rds-backup-exporter"]
CMD ["--config.file=/etc/aliyun-rds-backup-exporter/config.yaml"]
