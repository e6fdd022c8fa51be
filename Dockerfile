# syntax=docker/dockerfile:1
# newsflow image: one image, many roles. The compose file picks the role with `command`
# (bootstrap, connect, worker enrich, worker index); the entrypoint is the `newsflow` CLI.

ARG PYTHON_IMAGE=python:3.11-slim

# --- build: the wheel, installed with its dependencies into a self-contained venv -----------
# The same path as tests/e2e/test_wheel.py, which CI runs: build the wheel, install it, run the
# entry points with no source tree around. Templates, Kibana objects, feed lists, models and
# the local-stack files are package data inside the wheel (streams/resources.py).
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# .dockerignore keeps .venv, .git, caches and tests out of the context.
COPY . .
# The runtime stage needs only /opt/venv, not the sources.
# If a dependency ever ships without a wheel, install build tools here, not in the runtime stage.
RUN pip wheel --no-deps --wheel-dir /tmp/wheels . \
    && pip install /tmp/wheels/newsflow-*.whl \
    && rm -rf /tmp/wheels

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
# Nothing from the source tree is needed at run time. This one file is configuration, not code:
# the connector's default feed list (docker-compose.yml points NEWSFLOW_CONNECTOR__FEEDS_FILE
# at it; mount your own list over it). Owned by root: the app reads it, never writes it.
COPY deploy/feeds/starter.yaml /app/deploy/feeds/starter.yaml

USER 10001:10001

ENTRYPOINT ["newsflow"]
CMD ["--help"]
