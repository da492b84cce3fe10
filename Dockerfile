# FinOps Dashboard image: one image for every role (web, worker, beat, migrations).
#
#   docker build -t finops-dashboard:0.1.0 .
#   docker run --read-only --tmpfs /tmp -v finops-instance:/var/lib/finops --env-file .env \
#       finops-dashboard:0.1.0                                   # web (gunicorn on 8050)
#   ... finops-dashboard:0.1.0 finops-dashboard worker           # Celery worker
#   ... finops-dashboard:0.1.0 finops-dashboard beat             # Celery beat (exactly one)
#   ... finops-dashboard:0.1.0 finops-dashboard db upgrade       # migrations, once per release
#
# Runs as uid 10001 on a read-only root file system: the only writable paths are /tmp and the
# INSTANCE_DIR volume. No secret is baked in: every setting comes from the environment.

ARG PYTHON_IMAGE=python:3.11-slim

# --- builder: the application and its dependencies in a virtualenv ---------------------------
FROM ${PYTHON_IMAGE} AS builder

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH

RUN python -m venv /opt/venv

WORKDIR /src

# Dependencies first, read from setup.cfg, so that a code change does not reinstall them.
COPY setup.cfg pyproject.toml ./
RUN python -c "import configparser; c = configparser.ConfigParser(); c.read('setup.cfg'); print(c['options']['install_requires'].strip())" > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt

# Then the project itself, as a regular (non-editable) install; pip compiles the bytecode here,
# since the runtime file system is read-only.
COPY . .
RUN pip install --no-deps . \
    && pip check

# --- tools: the programs the CLI runner may start, each in its own virtualenv -----------------
# Kept apart from the application's virtualenv so that their pins never clash with the app's.
FROM ${PYTHON_IMAGE} AS tools

ARG AWS_FINOPS_VERSION=2.3.0
ARG AWSCLI_VERSION=1.46.2

ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN python -m venv /opt/tools/aws-finops \
    && /opt/tools/aws-finops/bin/pip install "aws-finops-dashboard==${AWS_FINOPS_VERSION}" \
    && python -m venv /opt/tools/awscli \
    && /opt/tools/awscli/bin/pip install "awscli==${AWSCLI_VERSION}"

# --- runtime ----------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime

ARG APP_UID=10001

LABEL org.opencontainers.image.title="finops-dashboard" \
      org.opencontainers.image.description="Self-hosted, audited browser access to AWS cost and optimisation data" \
      org.opencontainers.image.version="0.1.0" \
      org.opencontainers.image.licenses="Apache-2.0"

# tini is PID 1: it forwards signals to gunicorn / Celery and reaps the CLI runner's orphans.
RUN apt-get update \
    && apt-get install -y --no-install-recommends tini \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid "${APP_UID}" finops \
    && useradd --system --uid "${APP_UID}" --gid "${APP_UID}" --no-create-home \
        --home-dir /nonexistent --shell /usr/sbin/nologin finops \
    && install -d -o "${APP_UID}" -g "${APP_UID}" -m 0750 /var/lib/finops

# Owned by root and not writable by the app user.
COPY --from=builder /opt/venv /opt/venv
COPY --from=tools /opt/tools /opt/tools
RUN ln -s /opt/tools/aws-finops/bin/aws-finops /usr/local/bin/aws-finops \
    && ln -s /opt/tools/awscli/bin/aws /usr/local/bin/aws

# HOME points at the writable /tmp for libraries that keep caches there; the CLI runner still
# gives every run its own scratch HOME.
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    INSTANCE_DIR=/var/lib/finops

# The working directory is the writable instance directory, so that a relative path (such as
# Celery beat's default schedule file) never lands on the read-only root.
WORKDIR /var/lib/finops

USER ${APP_UID}:${APP_UID}

EXPOSE 8050

# Liveness of the web process only; worker, beat and migrate containers disable it.
# -I: isolated mode, so nothing in the working directory can shadow the standard library.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-I", "-c", "import urllib.request; urllib.request.urlopen('http://127.0.0.1:8050/health/live/', timeout=4)"]

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["finops-dashboard", "serve", "--bind", "0.0.0.0:8050"]
