"""Credentials of a secure local stack (`newsflow infra up --secure`), and what a client needs.

Generated once per stack (``secrets.token_urlsafe``), kept in ``<run>/secrets.json`` (0600, by
rename) and never printed unless asked (`newsflow infra env`). Nothing here has a default
password: a stack without this file has none until ``ensure`` makes one.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass
from pathlib import Path

from streams.infra import safefs
from streams.settings import InfraSettings


def stack_run_dir(infra: InfraSettings) -> Path:
    """Where this stack keeps its data, logs, pid files and secrets."""
    return infra.home / ("run" if infra.stack == "default" else f"run-{infra.stack}")


def tls_dir(infra: InfraSettings) -> Path:
    return stack_run_dir(infra) / "tls"


@dataclass(frozen=True)
class LocalSecrets:
    kafka_user: str  # SCRAM-SHA-512 user the newsflow clients use
    kafka_password: str
    kafka_admin_password: str  # inter-broker user `admin`
    es_user: str  # file-realm superuser of the local Elasticsearch
    es_password: str


def _path(infra: InfraSettings) -> Path:
    return stack_run_dir(infra) / "secrets.json"


def load(infra: InfraSettings) -> LocalSecrets | None:
    path = _path(infra)
    if not path.is_file():
        return None
    return LocalSecrets(**json.loads(path.read_text(encoding="utf-8")))


def ensure(infra: InfraSettings) -> LocalSecrets:
    """This stack's secrets, generated on first use."""
    found = load(infra)
    if found is not None:
        return found
    made = LocalSecrets(
        kafka_user="newsflow",
        kafka_password=secrets.token_urlsafe(24),
        kafka_admin_password=secrets.token_urlsafe(24),
        es_user="newsflow",
        es_password=secrets.token_urlsafe(24),
    )
    safefs.own_dir(stack_run_dir(infra))
    safefs.write_file(_path(infra), json.dumps(asdict(made), indent=2), mode=0o600)
    return made


def client_env(infra: InfraSettings) -> dict[str, str]:
    """NEWSFLOW_* variables that point every newsflow client at this stack (with credentials
    and the CA when it is secure)."""
    brokers = ",".join(f"{infra.host}:{port}" for port in broker_ports(infra))
    env = {"NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS": brokers}
    scheme = "https" if infra.secure else "http"
    env["NEWSFLOW_ELASTIC__URL"] = f"{scheme}://{infra.host}:{infra.es_port}"
    if infra.brokers > 1:
        env["NEWSFLOW_TOPICS__REPLICATION_FACTOR"] = str(min(3, infra.brokers))
        env["NEWSFLOW_TOPICS__MIN_INSYNC_REPLICAS"] = str(min(2, infra.brokers - 1))
    if infra.secure:
        creds = ensure(infra)
        ca = str(tls_dir(infra) / "ca.pem")
        env.update(
            {
                "NEWSFLOW_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
                "NEWSFLOW_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
                "NEWSFLOW_KAFKA__SASL_USERNAME": creds.kafka_user,
                "NEWSFLOW_KAFKA__SASL_PASSWORD": creds.kafka_password,
                "NEWSFLOW_KAFKA__SSL_CAFILE": ca,
                "NEWSFLOW_ELASTIC__USERNAME": creds.es_user,
                "NEWSFLOW_ELASTIC__PASSWORD": creds.es_password,
                "NEWSFLOW_ELASTIC__CA_CERTS": ca,
            }
        )
    return env


def client_sections(infra: InfraSettings) -> dict[str, dict[str, str]]:
    """``client_env`` as ``Settings`` keyword arguments (``{"kafka": {"bootstrap_servers":
    ...}, "elastic": {...}}``), for code that builds settings for this stack in process."""
    sections: dict[str, dict[str, str]] = {}
    for key, value in client_env(infra).items():
        section, _, field = key.removeprefix("NEWSFLOW_").partition("__")
        sections.setdefault(section.lower(), {})[field.lower()] = value
    return sections


def broker_ports(infra: InfraSettings) -> list[int]:
    """Client ports of the stack's brokers: ``kafka_port`` for one broker; with more, broker i
    (from 0) listens on ``kafka_port + 10 * i`` so the controller port beside each stays free."""
    return [infra.kafka_port + 10 * i for i in range(infra.brokers)]
