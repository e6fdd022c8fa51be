"""Session fixture ``secure_stack``: the secure three-broker local stack, started for real.

Stack ``secure`` (``<home>/run-secure``): three Kafka brokers in one KRaft cluster (client
ports 19092/19102/19112, controllers 19093/19103/19113), SASL_SSL with SCRAM-SHA-512 and the
stack's own CA, and an Elasticsearch with security on (HTTPS, file-realm user) on 19200/19300.
The fixture runs the real `newsflow infra up` with those options (idempotent: a running stack is
only checked) and yields ``Settings`` pointed at it through ``secrets.client_env``: brokers,
credentials, CA, replication factor 3 and ``min.insync.replicas`` 2.

The stack is left running at the end of the session: a cold start costs about a minute of both
cores (four JVMs), and the broker-fault tests of several sessions reuse it. It is a separate
stack from the default one: stop it with ``newsflow infra down --stack secure``.

Outside CI a start failure skips the tests with the reason; with CI=true it fails them.

Broker faults: ``streams.infra.kafka.stop_broker(settings.infra, node_id)`` stops one broker
(by its pid, as `infra down` would); ``ensure_up(settings.infra)`` runs the real `infra up`,
which starts just the brokers that are down and waits until all three are in the metadata.
"""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

from streams.infra import elastic, kafka, secrets
from streams.settings import InfraSettings, Settings
from tests.conftest import IN_CI

STACK_ENV = {
    "NEWSFLOW_INFRA__STACK": "secure",
    "NEWSFLOW_INFRA__BROKERS": "3",
    "NEWSFLOW_INFRA__SECURE": "true",
    "NEWSFLOW_INFRA__KAFKA_PORT": "19092",
    "NEWSFLOW_INFRA__KAFKA_CONTROLLER_PORT": "19093",
    "NEWSFLOW_INFRA__ES_PORT": "19200",
    "NEWSFLOW_INFRA__ES_TRANSPORT_PORT": "19300",
    "NEWSFLOW_INFRA__KAFKA_HEAP": "384m",  # three broker JVMs beside the default stack
    "NEWSFLOW_INFRA__ES_HEAP": "512m",
    # A cold start of the secure Elasticsearch beside three brokers took over 180 s (the
    # default) at a load average of 20 on two cores; the readiness wait still fails early when
    # a process dies.
    "NEWSFLOW_INFRA__START_TIMEOUT_S": "600",
}


def secure_infra() -> InfraSettings:
    """The secure stack's InfraSettings (home, JDKs, versions from this process's settings)."""
    base = Settings().infra
    fields = base.model_dump(include=base.model_fields_set)
    fields.update({k.removeprefix("NEWSFLOW_INFRA__").lower(): v for k, v in STACK_ENV.items()})
    return InfraSettings.model_validate(fields)


def is_up(infra: InfraSettings) -> bool:
    """Every broker in the cluster metadata and Elasticsearch healthy (with the credentials)."""
    try:
        return kafka.is_ready(infra) and elastic.is_ready(infra)
    except Exception:
        return False


def ensure_up(infra: InfraSettings | None = None, timeout_s: float = 900) -> InfraSettings:
    """Start (or complete: a stopped broker is started again) the secure stack with the real
    CLI; raises RuntimeError with the command's output when it fails."""
    infra = infra or secure_infra()
    if is_up(infra):
        return infra
    res = subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "infra", "up"],
        env={**os.environ, **STACK_ENV},
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if res.returncode != 0:
        raise RuntimeError(f"`newsflow infra up` (stack secure) failed:\n{res.stderr[-3000:]}")
    return infra


def stack_settings(infra: InfraSettings) -> Settings:
    """Settings of a client of the stack (what `eval "$(newsflow infra env --stack secure)"`
    gives a shell), with ``infra`` describing the stack itself."""
    sections: dict[str, Any] = {**secrets.client_sections(infra), "infra": infra.model_dump()}
    return Settings(**sections)


@pytest.fixture(scope="session")
def secure_stack() -> Settings:
    try:
        infra = ensure_up()
    except Exception as exc:
        message = f"the secure three-broker stack could not start ({type(exc).__name__}: {exc})"
        if IN_CI:
            pytest.fail("CI=true: " + message, pytrace=False)
        pytest.skip(message)
    return stack_settings(infra)
