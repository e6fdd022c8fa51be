"""docker-compose.yml has no default admin password and runs Elasticsearch with security on.

Static: the compose file is parsed (no Docker needed). Every secret is a required variable
(``${VAR:?message}``: compose refuses to start without it) listed in
``deploy/compose.env.example``; no literal password, default (``${VAR:-x}``) or credential in a
URL or a ``curl -u`` is left; the interpolation compose applies is emulated here to show that
the file does not resolve without the secrets and resolves completely with them. The
Elasticsearch role the setup service creates is the one newsflow's API keys get
(``streams.infra.elastic.api_key_role``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from streams.infra.elastic import api_key_role
from streams.settings import ElasticSettings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
EXAMPLE = ROOT / "deploy" / "compose.env.example"
SECRET_NAME = re.compile(r"PASSWORD|SECRET|API_KEY|TOKEN|ENCRYPTION_?KEY|CREDENTIAL", re.I)
# ${NAME}, ${NAME:-default}, ${NAME-default}, ${NAME:?err}, ${NAME?err}; $$ escapes a dollar.
INTERPOLATION = re.compile(r"\$\{(?P<name>\w+)(?:(?P<op>:?[-?+])(?P<arg>[^}]*))?\}")
REQUIRED_ONLY = re.compile(r"\$\{\w+:\?[^}]*\}")
# Known defaults of the images and of old versions of this file.
KNOWN_DEFAULTS = ("changeme", "admin", "elastic", "password", "secret", "kibana")


def _raw() -> str:
    return COMPOSE.read_text(encoding="utf-8")


def _compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load(_raw())
    return loaded


def _environments(compose: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(where, key, value) of every environment entry: services and x- anchors."""
    for name, block in compose.items():
        if name.startswith("x-") and isinstance(block, dict):
            for key, value in block.items():
                if isinstance(value, str | int | float | bool):
                    yield name, str(key), str(value)
    for name, service in compose["services"].items():
        env = service.get("environment") or {}
        if isinstance(env, list):
            env = dict(item.split("=", 1) for item in env)
        for key, value in env.items():
            yield name, str(key), str(value)


def _strings(node: Any) -> Iterator[str]:
    if isinstance(node, str):
        yield node
    elif isinstance(node, dict):
        for key, value in node.items():
            yield str(key)
            yield from _strings(value)
    elif isinstance(node, list):
        for item in node:
            yield from _strings(item)


def interpolate(text: str, env: dict[str, str]) -> str:
    """Compose's variable interpolation (the subset this file may use); raises ValueError
    where compose refuses: a required variable (``:?``) unset or empty."""

    def one(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"] or ""
        value = env.get(name)
        if (op == ":?" and not value) or (op == "?" and value is None):
            raise ValueError(f"required variable {name} is missing a value: {arg}")
        if (op == ":-" and not value) or (op == "-" and value is None):
            return arg
        return value or ""

    escaped = text.replace("$$", "\0")
    return INTERPOLATION.sub(one, escaped).replace("\0", "$")


def _example_vars() -> dict[str, str]:
    out = {}
    for line in EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            out[key.strip()] = value
    return out


def _required_vars() -> set[str]:
    return {m["name"] for m in INTERPOLATION.finditer(_raw().replace("$$", "")) if m["op"] == ":?"}


# --- no default, no literal ------------------------------------------------------------------


def test_every_secret_in_an_environment_is_a_required_variable() -> None:
    secrets = [(w, k, v) for w, k, v in _environments(_compose()) if SECRET_NAME.search(k)]
    assert secrets, "no secret in the compose file at all?"
    for where, key, value in secrets:
        assert REQUIRED_ONLY.fullmatch(value), f"{where}: {key}={value!r} is not ${{VAR:?...}}"


def test_no_secret_variable_has_a_default_anywhere() -> None:
    for match in INTERPOLATION.finditer(_raw().replace("$$", "")):
        if SECRET_NAME.search(match["name"]):
            assert match["op"] in (":?", "?"), f"{match[0]}: a secret with a default"


def test_no_literal_credential_in_commands_urls_or_values() -> None:
    for text in _strings(_compose()):
        # curl -u user:password / "user = \"user:password\"" / scheme://user:password@host
        curl_user = re.findall(r"-u\s+[\"']?[\w.-]+:([^\s\"']+)", text)
        curl_config = re.findall(r"user\s*=\s*\\?\"[\w.-]+:([^\"\\\s]+)", text)
        for literal in curl_user + curl_config:
            assert literal.startswith("$"), f"literal credential in {text!r}"
        for literal in re.findall(r"://[^/\s:@]+:([^@\s/]+)@", text):
            assert literal.startswith("$"), f"credential in a URL: {text!r}"
    for where, key, value in _environments(_compose()):
        if SECRET_NAME.search(key):
            assert value.lower() not in KNOWN_DEFAULTS, (where, key)


def test_compose_refuses_to_start_without_each_secret() -> None:
    required = _required_vars()
    assert {
        "ELASTIC_PASSWORD",
        "KIBANA_SYSTEM_PASSWORD",
        "ES_NEWSFLOW_PASSWORD",
        "GRAFANA_ADMIN_PASSWORD",
    } <= required
    filled = {name: f"x-{name.lower()}-0123456789" for name in required}
    resolved = interpolate(_raw(), filled)
    assert "${" not in resolved
    yaml.safe_load(resolved)  # still a valid file
    for name in sorted(required):
        with pytest.raises(ValueError, match=name):
            interpolate(_raw(), {**filled, name: ""})
        with pytest.raises(ValueError, match=name):
            interpolate(_raw(), {k: v for k, v in filled.items() if k != name})


def test_the_env_example_lists_every_secret_without_a_value() -> None:
    example = _example_vars()
    assert set(example) == _required_vars()
    assert all(value == "" for value in example.values()), "the example must not carry values"


def test_the_env_file_is_never_committed_nor_built_into_the_image() -> None:
    ignored = (ROOT / ".gitignore").read_text().splitlines()
    assert "/.env" in ignored or ".env" in ignored
    assert ".env" in (ROOT / ".dockerignore").read_text().splitlines()


# --- security on ------------------------------------------------------------------------------


def test_elasticsearch_security_is_on_and_everyone_logs_in() -> None:
    services = _compose()["services"]
    es_env = {k: str(v) for k, v in services["elasticsearch"]["environment"].items()}
    assert es_env["xpack.security.enabled"] == "true"
    assert REQUIRED_ONLY.fullmatch(es_env["ELASTIC_PASSWORD"])
    assert "$$ELASTIC_PASSWORD" in str(services["elasticsearch"]["healthcheck"]["test"])
    kibana = {k: str(v) for k, v in services["kibana"]["environment"].items()}
    assert kibana["ELASTICSEARCH_USERNAME"] == "kibana_system"  # Kibana refuses `elastic`
    newsflow_env = _compose()["x-newsflow-env"]
    assert newsflow_env["NEWSFLOW_ELASTIC__USERNAME"] == "newsflow"  # not the superuser
    for name in ("bootstrap", "connector", "extract-worker", "enrich-worker", "index-worker"):
        env = services[name]["environment"]
        assert env["NEWSFLOW_ELASTIC__PASSWORD"] == newsflow_env["NEWSFLOW_ELASTIC__PASSWORD"]
    for name in ("kibana", "bootstrap"):
        condition = services[name]["depends_on"]["elasticsearch-setup"]["condition"]
        assert condition == "service_completed_successfully", name


def test_setup_creates_the_newsflow_role_of_the_api_keys() -> None:
    script = _compose()["services"]["elasticsearch-setup"]["command"][0]
    body = re.search(r"<<'ROLE'\n(.*?)\nROLE\n", script, re.S)
    assert body is not None, script
    assert json.loads(body[1]) == api_key_role(ElasticSettings())
    # Passwords reach curl on stdin / a file descriptor, never as arguments.
    for name in ("ELASTIC_PASSWORD", "KIBANA_SYSTEM_PASSWORD", "ES_NEWSFLOW_PASSWORD"):
        for line in script.splitlines():
            if f"$${name}" in line and "curl" in line:
                assert "<<<" in line, line


def test_kafka_stays_inside_the_compose_network() -> None:
    kafka = _compose()["services"]["kafka"]
    assert not kafka.get("ports"), "the PLAINTEXT broker must not be published"
    assert "PLAINTEXT://kafka:9092" in kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"]
