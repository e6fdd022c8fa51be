# syntax=docker/dockerfile:1
# newsflow image: one image, many roles. The compose file picks the role with `command`
# (bootstrap, connect, worker enrich, worker index); the entrypoint is the `newsflow` CLI.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: install the project and its dependencies into a self-contained venv -------------
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore keeps .venv, .git, caches and tests out of the context.
COPY . .
# Non-editable install: the runtime stage needs only /opt/venv, not the sources.
# If a dependency ever ships without a wheel, install build tools here, not in the runtime stage.
RUN pip install .

# --- runtime ---------------------------------------------------------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    NEWSFLOW_FAUST__DATADIR=/data/faust

# A fixed numeric uid/gid so volume ownership and `runAsNonRoot`-style checks are predictable.
# /data is created here, owned by that user, so a named volume mounted on it inherits the owner.
RUN groupadd --system --gid 10001 newsflow \
    && useradd --system --uid 10001 --gid newsflow --create-home --home-dir /home/newsflow \
        --shell /usr/sbin/nologin newsflow \
    && mkdir -p /data/faust \
    && chown -R newsflow:newsflow /data

COPY --from=build /opt/venv /opt/venv

WORKDIR /app
# The CLI reads deploy/ (Elasticsearch templates, policies, feed lists) at run time, relative to
# the working directory. Owned by root: the app reads it, never writes it.
COPY deploy/ /app/deploy/

USER 10001:10001

ENTRYPOINT ["newsflow"]
CMD ["--help"]
