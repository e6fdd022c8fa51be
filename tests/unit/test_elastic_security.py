"""The secure local Elasticsearch's configuration (no service needed): what elasticsearch.yml
turns on, the file-realm user and its files, the API key's privileges, the plain-http hint."""

from __future__ import annotations

import stat
from pathlib import Path

import bcrypt
import pytest

from streams.infra import elastic, safefs, secrets
from streams.infra.errors import InfraError
from streams.settings import ElasticSettings, InfraSettings
from streams.sinks.elastic import transport_hint


def _infra(home: Path, secure: bool) -> InfraSettings:
    return InfraSettings(
        home=home, stack="t", secure=secure, es_port=19200, es_transport_port=19300
    )


def _yml(infra: InfraSettings) -> dict[str, str]:
    lines = elastic.elasticsearch_yml(infra, Path("/run/x")).splitlines()
    return {k: v.strip().strip('"') for k, _, v in (line.partition(":") for line in lines)}


def test_security_is_off_unless_asked_and_then_https_everywhere(tmp_path: Path) -> None:
    plain = _yml(_infra(tmp_path, secure=False))
    assert plain["xpack.security.enabled"] == "false"
    assert not any(k.startswith("xpack.security.http") for k in plain)
    assert elastic.base_url(_infra(tmp_path, secure=False)) == "http://127.0.0.1:19200"

    secure = _yml(_infra(tmp_path, secure=True))
    assert secure["xpack.security.enabled"] == "true"
    assert secure["xpack.security.http.ssl.enabled"] == "true"
    assert secure["xpack.security.transport.ssl.enabled"] == "true"
    # Certificates relative to the config directory: the only place Elasticsearch reads them.
    assert secure["xpack.security.http.ssl.certificate"] == elastic.CERT
    assert not Path(secure["xpack.security.http.ssl.key"]).is_absolute()
    # No built-in users: `elastic` has no default or seed-derived bootstrap password.
    assert secure["xpack.security.authc.reserved_realm.enabled"] == "false"
    assert secure["discovery.type"] == "single-node"
    assert elastic.base_url(_infra(tmp_path, secure=True)) == "https://127.0.0.1:19200"


def test_file_realm_user_and_key_are_written_private(tmp_path: Path) -> None:
    infra = _infra(tmp_path / "home", secure=True)
    config = tmp_path / "config"
    safefs.own_dir(config, 0o750)
    elastic._write_security(infra, config, group=None)
    creds = secrets.ensure(infra)
    user, _, hashed = (config / "users").read_text().strip().partition(":")
    assert user == creds.es_user
    assert hashed.startswith("$2a$10$")  # the form Elasticsearch's own users tool writes
    assert bcrypt.checkpw(creds.es_password.encode(), hashed.encode())
    assert (config / "users_roles").read_text() == f"superuser:{creds.es_user}\n"
    for name in ("users", "users_roles", elastic.CERT_KEY):
        assert stat.S_IMODE((config / name).stat().st_mode) == 0o600, name
    assert (config / elastic.CERT_CA).read_bytes() == (
        secrets.tls_dir(infra) / "ca.pem"
    ).read_bytes()


def test_api_key_role_covers_exactly_newsflows_indices() -> None:
    settings = ElasticSettings(
        alias="arts", index_prefix="arts-v1", dead_letter_index="arts-dead-letters"
    )
    role = elastic.api_key_role(settings)
    assert role["cluster"] == ["manage_index_templates", "manage_ilm"]
    (indices,) = role["indices"]
    assert sorted(indices["names"]) == ["arts", "arts-dead-letters", "arts-v1-*", "arts-v1_r*"]
    assert {"create_index", "index", "write", "read", "manage"} == set(indices["privileges"])
    assert "all" not in indices["privileges"] and "*" not in indices["names"]


def test_api_keys_need_a_secure_stack(tmp_path: Path) -> None:
    with pytest.raises(InfraError, match="security on"):
        elastic.create_api_key(_infra(tmp_path, secure=False), ElasticSettings())


def test_plain_http_to_an_https_port_is_named() -> None:
    closed = "ProtocolError(('Connection aborted.', RemoteDisconnected('Remote end closed')))"
    assert "https://" in transport_hint(ElasticSettings(url="http://es:9200"), closed)
    assert transport_hint(ElasticSettings(url="https://es:9200"), closed) == ""
    assert transport_hint(ElasticSettings(url="http://es:9200"), "connection refused") == ""
