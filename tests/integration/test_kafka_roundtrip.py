"""Contract records through the real broker with kafka-python; bootstrap idempotency."""

from __future__ import annotations

from kafka import KafkaConsumer, KafkaProducer

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.kafka_clients import client_options
from streams.schema import RawArticle, decode, encode
from streams.settings import Settings
from tests.conftest import make_raw


def _spec(name: str) -> topics.TopicSpec:
    return topics.TopicSpec(name, "test topic", RawArticle)


def test_bootstrap_topics_is_idempotent(kafka: Settings, unique: str) -> None:
    spec = _spec(f"test.bootstrap.{unique}")
    first = ensure_topics(kafka, lambda _m: None, specs=(spec,))
    second = ensure_topics(kafka, lambda _m: None, specs=(spec,))
    assert first[spec.name].startswith("created")
    assert second[spec.name] == f"exists ({kafka.topics.partitions} partitions)"


def test_raw_articles_round_trip_keyed_by_article_id(kafka: Settings, unique: str) -> None:
    spec = _spec(f"test.raw.{unique}")
    ensure_topics(kafka, lambda _m: None, specs=(spec,))
    sent = [make_raw(i, title="خبر عاجل عن سوريا") for i in range(20)]
    producer = KafkaProducer(**client_options(kafka.kafka), acks="all")
    partitions = {}
    for raw in sent:
        meta = producer.send(spec.name, key=raw.article_id.encode(), value=encode(raw)).get(30)
        partitions[raw.article_id] = meta.partition
    producer.close()

    consumer = KafkaConsumer(
        spec.name,
        **client_options(kafka.kafka),
        group_id=f"test-{unique}",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        consumer_timeout_ms=20000,
    )
    received = {}
    for message in consumer:
        record = decode(RawArticle, message.value)
        assert message.key.decode() == record.article_id
        assert partitions[record.article_id] == message.partition  # one key, one partition
        received[record.article_id] = record
        if len(received) == len(sent):
            break
    consumer.close()
    assert received == {r.article_id: r for r in sent}
    assert len({p for p in partitions.values()}) > 1  # keys really spread over partitions
