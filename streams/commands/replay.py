"""`newsflow replay --stage S`: re-feed a stage's dead letters into its input topic.

Reads ``news.dlq.<stage>`` with the consumer group ``<app_id>-replay-<stage>`` up to the end
offsets seen at start (records that fail again land behind that mark and wait for the next
replay), re-produces each record's original key and bytes to the stage's input topic with a
``newsflow-replayed-from`` header, and commits the group's offsets only after Kafka confirmed
the re-produced records: at-least-once, and idempotent downstream because ids are stable.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaConsumer, KafkaProducer, OffsetAndMetadata, TopicPartition

from streams import topics
from streams.kafka_clients import client_options
from streams.settings import Settings
from streams.topic_range import assign_all, batches_until

Say = Callable[[str], None]


@dataclass(frozen=True)
class ReplayResult:
    replayed: int
    source: str
    target: str


def replay(
    settings: Settings, stage: str, say: Say, limit: int | None = None, dry_run: bool = False
) -> ReplayResult:
    if stage not in topics.STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(topics.STAGES)}")
    wiring = topics.STAGES[stage]
    source = wiring["dead_letter"].topic_name(settings.topics)
    target = wiring["input"].topic_name(settings.topics)
    consumer = KafkaConsumer(
        **client_options(settings.kafka),
        group_id=f"{settings.faust.app_id}-replay-{stage}",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        consumer_timeout_ms=2000,
    )
    producer = (
        None
        if dry_run
        else KafkaProducer(
            **client_options(settings.kafka),
            acks="all",
            client_id=f"{settings.kafka.client_id}-replay",
        )
    )
    replayed = 0
    try:
        partitions, end = assign_all(consumer, source)
        if not partitions:
            raise ValueError(f"topic {source} does not exist; run `newsflow bootstrap`")
        for tp in partitions:
            if consumer.committed(tp) is None:
                consumer.seek_to_beginning(tp)
        total = sum(max(0, end[tp] - consumer.position(tp)) for tp in partitions)
        say(f"{total} dead letter(s) waiting in {source}" + (" (dry run)" if dry_run else ""))
        started = time.monotonic()
        for batch in batches_until(consumer, partitions, end):
            offsets: dict[TopicPartition, OffsetAndMetadata] = {}
            futures = []
            for tp, messages in batch.items():
                for message in messages[: None if limit is None else max(0, limit - replayed)]:
                    if producer is not None:
                        where = f"{source}[{tp.partition}]@{message.offset}".encode()
                        futures.append(
                            producer.send(
                                target,
                                key=message.key,
                                value=message.value,
                                headers=[("newsflow-replayed-from", where)],
                            )
                        )
                    offsets[tp] = OffsetAndMetadata(message.offset + 1, "", -1)
                    replayed += 1
            for future in futures:
                future.get(timeout=settings.kafka.request_timeout_s)
            if offsets and not dry_run:
                consumer.commit(offsets)
            say(f"  {replayed}/{total} replayed ({time.monotonic() - started:.1f}s)")
            if limit is not None and replayed >= limit:
                break
    finally:
        consumer.close()
        if producer is not None:
            producer.close()
    verb = "would replay" if dry_run else "replayed"
    say(f"{verb} {replayed} record(s) from {source} to {target}")
    return ReplayResult(replayed, source, target)
