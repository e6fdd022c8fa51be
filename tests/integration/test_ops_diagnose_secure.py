"""Readiness and the cluster gauges on the secure three-broker stack (SASL_SSL, RF 3, min ISR 2).

Marker ``cluster`` (fixture ``secure_stack``): a wrong SCRAM password is reported as what it is
and counted, a missing CA names the CA setting, the lag sampler sees three brokers and no
under-replicated partition; with one broker stopped it sees the partitions under-replicated and
names the broker, and after `newsflow infra up` started it again, the count goes back to 0.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from pydantic import SecretStr

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.infra import kafka as cluster
from streams.metrics import AUTH_FAILURES, KAFKA_BROKERS, UNDER_REPLICATED
from streams.ops import Health, LagSampler
from streams.settings import Settings
from tests.integration.secure_stack import ensure_up

pytestmark = pytest.mark.cluster


def _isolated(secure_stack: Settings, unique: str) -> Settings:
    settings = secure_stack.model_copy(
        update={
            "topics": secure_stack.topics.model_copy(
                update={"namespace": f"test.{unique}.", "partitions": 3}
            )
        }
    )
    ensure_topics(settings, lambda _m: None)
    return settings


def _sample(settings: Settings) -> tuple[bool, dict[str, object], Health]:
    health = Health("enrich", 60)
    topic = topics.RAW.topic_name(settings.topics)
    LagSampler(settings, "enrich", f"test-group-{topic}", topic, health, 1.0).sample()
    ok, report = health.report()
    return ok, report, health


def _wait(what: str, check: Callable[[], bool], timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(1)
    raise AssertionError(f"timed out waiting for {what}")


def test_wrong_sasl_password_names_the_user_and_is_counted(secure_stack: Settings) -> None:
    wrong = "not-the-password-0000"
    settings = secure_stack.model_copy(
        update={"kafka": secure_stack.kafka.model_copy(update={"sasl_password": SecretStr(wrong)})}
    )
    counter = AUTH_FAILURES.labels("kafka", "authentication")
    before = counter._value.get()
    ok, report, _health = _sample(settings)
    assert not ok
    user = secure_stack.kafka.sasl_username
    assert report["problems"] == {
        "kafka": f"kafka: SASL authentication failed for user '{user}' (SCRAM-SHA-512; check "
        "NEWSFLOW_KAFKA__SASL_USERNAME/SASL_PASSWORD)"
    }
    assert counter._value.get() == before + 1
    assert wrong not in str(report)


def test_missing_ca_names_the_ca_setting(secure_stack: Settings) -> None:
    settings = secure_stack.model_copy(
        update={"kafka": secure_stack.kafka.model_copy(update={"ssl_cafile": None})}
    )
    ok, report, _health = _sample(settings)
    assert not ok
    problem = str(report["problems"]["kafka"])  # type: ignore[index]
    assert "not trusted (NEWSFLOW_KAFKA__SSL_CAFILE not set)" in problem, problem
    assert "(0 of 3 brokers up)" in problem


def test_sampler_sees_three_brokers_and_no_under_replicated_partition(
    secure_stack: Settings, unique: str
) -> None:
    settings = _isolated(secure_stack, unique)
    ok, report, _health = _sample(settings)
    assert ok, report
    kafka_view = report["kafka"]
    assert isinstance(kafka_view, dict)
    assert len(kafka_view["brokers"]) == 3 and kafka_view["brokers_missing"] == []
    assert kafka_view["under_replicated_partitions"] == 0
    assert KAFKA_BROKERS._value.get() == 3
    raw = topics.RAW.topic_name(settings.topics)
    assert UNDER_REPLICATED.labels(raw)._value.get() == 0


def test_a_stopped_broker_shows_as_under_replicated_and_is_named(
    secure_stack: Settings, unique: str
) -> None:
    """Stops broker 3 (SIGTERM) and starts it again with the real `newsflow infra up`."""
    settings = _isolated(secure_stack, unique)
    infra = secure_stack.infra
    health = Health("enrich", 60)
    raw = topics.RAW.topic_name(settings.topics)
    sampler = LagSampler(settings, "enrich", f"test-group-{raw}", raw, health, 1.0)
    sampler.sample()
    assert health.kafka["under_replicated_partitions"] == 0, health.report()
    victim = cluster.brokers(infra)[2]
    address = f"127.0.0.1:{victim.port}"
    try:
        assert cluster.stop_broker(infra, 3), "broker 3 was not running"

        def degraded() -> bool:
            sampler.sample()
            return bool(health.kafka.get("under_replicated_partitions"))

        _wait("under-replicated partitions", degraded, 90)
        ok, report = health.report()
        assert ok, report  # two of three brokers: still ready, with a warning
        assert UNDER_REPLICATED.labels(raw)._value.get() == 3  # every partition had a copy there
        warning = report["warnings"]["kafka-brokers"]
        assert warning.startswith(f"kafka: broker {address} (id 3) ") and warning.endswith(
            "(2 of 3 brokers up)"
        ), warning
    finally:
        ensure_up(infra, timeout_s=300)

    def recovered() -> bool:
        sampler.sample()
        return health.kafka.get("under_replicated_partitions") == 0 and not health.warnings

    _wait("the ISR to fill again", recovered, 180)
    assert UNDER_REPLICATED.labels(raw)._value.get() == 0
