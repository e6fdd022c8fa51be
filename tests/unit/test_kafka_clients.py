"""Every Kafka client is built from one settings section: PLAINTEXT, SSL and SASL_SSL."""

from __future__ import annotations

import ssl
from pathlib import Path

import pytest

from streams.app import faust_credentials
from streams.kafka_clients import KafkaConfigError, client_options
from streams.settings import ElasticSettings, KafkaSettings
from streams.sinks.elastic import client_options as es_options


def test_plaintext_options_are_the_brokers_only() -> None:
    opts = client_options(KafkaSettings(bootstrap_servers="a:1, b:2"))
    assert opts == {"bootstrap_servers": ["a:1", "b:2"], "security_protocol": "PLAINTEXT"}
    assert faust_credentials(KafkaSettings()) is None


def test_sasl_ssl_carries_user_password_and_a_verifying_context() -> None:
    kafka = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_username="newsflow",
        sasl_password="s3cret",  # type: ignore[arg-type]
    )
    opts = client_options(kafka)
    assert opts["sasl_mechanism"] == "SCRAM-SHA-512"
    assert opts["sasl_plain_username"] == "newsflow"
    assert opts["sasl_plain_password"] == "s3cret"
    ctx = opts["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    creds = faust_credentials(kafka)
    assert creds.username == "newsflow" and creds.mechanism.value == "SCRAM-SHA-512"
    assert creds.protocol.value == "SASL_SSL"
    assert "s3cret" not in repr(kafka)  # a secret never lands in logs via the settings


def test_sasl_without_password_names_the_missing_setting() -> None:
    with pytest.raises(KafkaConfigError, match="NEWSFLOW_KAFKA__SASL_PASSWORD"):
        client_options(KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="u"))


def test_missing_ca_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(KafkaConfigError, match="ssl_cafile"):
        client_options(KafkaSettings(security_protocol="SSL", ssl_cafile=tmp_path / "nope.pem"))


def test_elastic_api_key_wins_over_basic_auth_and_ca_is_passed(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("x")
    opts = es_options(
        ElasticSettings(
            url="https://127.0.0.1:9200",
            username="u",
            password="p",  # type: ignore[arg-type]
            api_key="k",  # type: ignore[arg-type]
            ca_certs=ca,
        )
    )
    assert opts["api_key"] == "k" and "basic_auth" not in opts
    assert opts["ca_certs"] == str(ca) and opts["verify_certs"] is True
    plain = es_options(ElasticSettings())
    assert "ca_certs" not in plain and "api_key" not in plain
