"""Connection options every Kafka client of newsflow shares: brokers, TLS and SASL.

kafka-python clients (producers, admin and lag consumers) take ``**client_options(...)``; the
faust workers take ``streams.app.faust_credentials(...)``, built from the same checks. Both read
the one ``KafkaSettings`` section, so a secured cluster is configured once
(``NEWSFLOW_KAFKA__SECURITY_PROTOCOL=SASL_SSL`` plus the user, password and CA) and every
process speaks to it the same way.
"""

from __future__ import annotations

import ssl
from typing import Any

from streams.settings import KafkaSettings


class KafkaConfigError(ValueError):
    """The Kafka security settings contradict each other or name a missing file."""


def _uses_sasl(kafka: KafkaSettings) -> bool:
    return kafka.security_protocol.startswith("SASL_")


def _uses_tls(kafka: KafkaSettings) -> bool:
    return kafka.security_protocol in ("SSL", "SASL_SSL")


def check(kafka: KafkaSettings) -> None:
    """Raise ``KafkaConfigError`` naming the setting to fix; a client would only time out."""
    if _uses_sasl(kafka) and not (kafka.sasl_username and kafka.sasl_password):
        raise KafkaConfigError(
            f"kafka.security_protocol={kafka.security_protocol} needs kafka.sasl_username and "
            "kafka.sasl_password (NEWSFLOW_KAFKA__SASL_USERNAME / NEWSFLOW_KAFKA__SASL_PASSWORD)"
        )
    if not _uses_tls(kafka):
        return
    for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
        path = getattr(kafka, name)
        if path is not None and not path.is_file():
            raise KafkaConfigError(f"kafka.{name}: {path} is not a readable file")
    if (kafka.ssl_certfile is None) != (kafka.ssl_keyfile is None):
        raise KafkaConfigError("kafka.ssl_certfile and kafka.ssl_keyfile go together")


def ssl_context(kafka: KafkaSettings) -> ssl.SSLContext | None:
    """The TLS context of SSL/SASL_SSL (CA from the settings, else the system's), else None."""
    if not _uses_tls(kafka):
        return None
    check(kafka)
    ctx = ssl.create_default_context(cafile=str(kafka.ssl_cafile) if kafka.ssl_cafile else None)
    ctx.check_hostname = kafka.ssl_check_hostname
    if kafka.ssl_certfile and kafka.ssl_keyfile:
        ctx.load_cert_chain(str(kafka.ssl_certfile), str(kafka.ssl_keyfile))
    return ctx


def client_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for any kafka-python client (KafkaProducer/Consumer/AdminClient)."""
    check(kafka)
    options: dict[str, Any] = {
        "bootstrap_servers": [b.strip() for b in kafka.bootstrap_servers.split(",") if b.strip()],
        "security_protocol": kafka.security_protocol,
    }
    if _uses_sasl(kafka):
        assert kafka.sasl_password is not None  # check() above
        options.update(
            sasl_mechanism=kafka.sasl_mechanism,
            sasl_plain_username=kafka.sasl_username,
            sasl_plain_password=kafka.sasl_password.get_secret_value(),
        )
    if _uses_tls(kafka):
        options["ssl_context"] = ssl_context(kafka)
    return options
