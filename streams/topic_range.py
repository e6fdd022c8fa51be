"""Reading a topic from where a consumer stands up to the end offsets seen when it started.

Shared by `newsflow replay` (dead letters) and `newsflow reindex` (the enriched topic): both must
stop at a fixed mark, so records produced meanwhile (a replayed record failing again, the index
worker's own traffic) are not chased forever.
"""

from __future__ import annotations

from collections.abc import Iterator

from kafka import KafkaConsumer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord


def assign_all(
    consumer: KafkaConsumer, topic: str
) -> tuple[list[TopicPartition], dict[TopicPartition, int]]:
    """Assign every partition of ``topic`` (none if it does not exist); return them and their
    end offsets now."""
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or []]
    consumer.assign(parts)
    return parts, consumer.end_offsets(parts)


def batches_until(
    consumer: KafkaConsumer,
    parts: list[TopicPartition],
    end: dict[TopicPartition, int],
    max_records: int = 500,
) -> Iterator[dict[TopicPartition, list[ConsumerRecord]]]:
    """Polled batches, records at or beyond ``end`` left out, until every partition reached it."""
    todo = {tp for tp in parts if consumer.position(tp) < end[tp]}
    while todo:
        batch = consumer.poll(timeout_ms=2000, max_records=max_records)
        yield {tp: [m for m in messages if m.offset < end[tp]] for tp, messages in batch.items()}
        todo = {tp for tp in todo if consumer.position(tp) < end[tp]}
