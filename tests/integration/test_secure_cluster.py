"""The secure three-broker local stack for real (fixture ``secure_stack``, marker ``cluster``).

Three KRaft brokers form one cluster; `newsflow bootstrap` against it makes topics with
replication factor 3 and ``min.insync.replicas`` 2; SASL_SSL with the generated SCRAM
credentials carries records both ways; a wrong password is refused as an authentication
failure; a PLAINTEXT client gets nothing from the SASL_SSL port.
"""

from __future__ import annotations

import os
import socket
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType, NewTopic
from kafka.errors import KafkaTimeoutError
from pydantic import SecretStr

from streams import diagnose, topics
from streams.infra import secrets
from streams.kafka_clients import client_options
from streams.ops import probe_broker
from streams.settings import KafkaSettings, Settings

pytestmark = pytest.mark.cluster

BROKER_PORTS = [19092, 19102, 19112]


@pytest.fixture
def admin(secure_stack: Settings) -> Iterator[KafkaAdminClient]:
    client = KafkaAdminClient(
        **client_options(secure_stack.kafka), request_timeout_ms=15000, client_id="test-cluster"
    )
    yield client
    client.close()


def _drop(admin: KafkaAdminClient, names: list[str]) -> None:
    present = set(admin.list_topics()) & set(names)
    if present:
        admin.delete_topics(sorted(present))


def test_three_brokers_form_one_cluster(secure_stack: Settings, admin: KafkaAdminClient) -> None:
    cluster = admin.describe_cluster()
    brokers = {b["broker_id"]: (b["host"], b["port"]) for b in cluster["brokers"]}
    assert brokers == {i + 1: ("127.0.0.1", port) for i, port in enumerate(BROKER_PORTS)}
    assert not any(b["is_fenced"] for b in cluster["brokers"])
    assert cluster["controller_id"] in brokers
    assert secure_stack.kafka.security_protocol == "SASL_SSL"
    # The CLI sees the same: one ready line per broker, found by the stack name alone.
    res = subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "infra", "status", "--stack", "secure"],
        env={k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_INFRA__")},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    lines = [ln.split() for ln in res.stdout.splitlines() if ln.startswith("kafka-")]
    assert [(ln[0], ln[1]) for ln in lines] == [(f"kafka-{i}", "ready") for i in (1, 2, 3)], (
        res.stdout + res.stderr
    )


def test_bootstrap_makes_topics_with_three_replicas_two_in_sync(
    secure_stack: Settings, admin: KafkaAdminClient
) -> None:
    namespace = f"test.{uuid.uuid4().hex[:10]}."
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("NEWSFLOW_")},
        **secrets.client_env(secure_stack.infra),  # what `eval "$(newsflow infra env)"` sets
        "NEWSFLOW_TOPICS__NAMESPACE": namespace,
    }
    names = [spec.name for spec in topics.ALL]
    real = [namespace + name for name in names]
    try:
        res = subprocess.run(
            [sys.executable, "-m", "streams.commands.cli", "bootstrap"],
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        assert res.returncode == 0, res.stderr[-3000:]
        described = {t["name"]: t for t in admin.describe_topics(real)}
        assert set(described) == set(real)
        for name, topic in described.items():
            assert topic["error_code"] == 0, name
            for partition in topic["partitions"]:
                assert len(partition["replica_nodes"]) == 3, (name, partition)
                assert len(partition["isr_nodes"]) == 3, (name, partition)
        configs = admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in real]
        )
        for name in real:
            entry = configs["topic"][name]["min.insync.replicas"]
            assert (entry["value"], entry["config_source"]) == ("2", "DYNAMIC_TOPIC_CONFIG")
    finally:
        _drop(admin, real)


def test_sasl_ssl_round_trip_with_generated_credentials(
    secure_stack: Settings, admin: KafkaAdminClient
) -> None:
    topic = f"test.{uuid.uuid4().hex[:10]}.roundtrip"
    admin.create_topics(
        [NewTopic(topic, 3, 3, topic_configs={"min.insync.replicas": "2"})], timeout_ms=30000
    )
    sent = {f"رسالة-{i}-message-{i}".encode(): str(i).encode() for i in range(30)}
    try:
        producer = KafkaProducer(**client_options(secure_stack.kafka), acks="all")
        for value, key in sent.items():
            producer.send(topic, key=key, value=value)
        producer.flush(timeout=60)
        producer.close()
        consumer = KafkaConsumer(
            topic,
            **client_options(secure_stack.kafka),
            group_id=f"test-{uuid.uuid4().hex[:8]}",
            auto_offset_reset="earliest",
            consumer_timeout_ms=2000,
        )
        got: dict[bytes, bytes] = {}
        deadline = time.monotonic() + 60
        while len(got) < len(sent) and time.monotonic() < deadline:
            for record in consumer:
                got[record.value] = record.key
        consumer.close()
        assert got == sent
    finally:
        _drop(admin, [topic])


def test_wrong_password_is_refused_as_an_authentication_failure(secure_stack: Settings) -> None:
    bad = secure_stack.kafka.model_copy(update={"sasl_password": SecretStr("not-the-password")})
    started = time.monotonic()
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(**client_options(bad), request_timeout_ms=5000, bootstrap_timeout_ms=6000)
    assert time.monotonic() - started < 30
    # One connection gives the broker's answer itself (the clients only log it and retry).
    for port in BROKER_PORTS:
        exc = probe_broker(bad, f"127.0.0.1:{port}")
        assert exc is not None and type(exc).__name__ == "SaslAuthenticationFailedError", exc
        problem = diagnose.kafka(exc, bad)
        assert problem.kind == "authentication"
        assert "SASL authentication failed for user 'newsflow'" in problem.message
        assert "not-the-password" not in problem.message
    assert probe_broker(secure_stack.kafka, f"127.0.0.1:{BROKER_PORTS[0]}") is None  # control


def _api_versions_request() -> bytes:
    """A Kafka ApiVersions v0 request, as a PLAINTEXT client sends it first."""
    client_id = b"plain-probe"
    body = struct.pack(">hhih", 18, 0, 4242, len(client_id)) + client_id
    return struct.pack(">i", len(body)) + body


def test_plaintext_client_cannot_talk_to_the_sasl_ssl_port(secure_stack: Settings) -> None:
    plain = KafkaSettings(bootstrap_servers=f"127.0.0.1:{BROKER_PORTS[0]}")
    with pytest.raises(KafkaTimeoutError, match="Unable to bootstrap"):
        KafkaAdminClient(
            **client_options(plain), request_timeout_ms=5000, bootstrap_timeout_ms=6000
        )
    # Byte level: the listener answers a plain Kafka request with no Kafka response (the TLS
    # layer closes the connection or sends an alert record, content type 21).
    with socket.create_connection(("127.0.0.1", BROKER_PORTS[0]), timeout=10) as sock:
        sock.sendall(_api_versions_request())
        answer = b""
        try:
            while chunk := sock.recv(4096):
                answer += chunk
        except (ConnectionResetError, TimeoutError):
            pass
    assert answer == b"" or answer[0] == 21, answer[:16]
    assert struct.pack(">i", 4242) not in answer[4:8]
