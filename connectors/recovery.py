"""Start-up recovery: read back what a previous run delivered but did not get to save.

The connector saves feed state only after Kafka acknowledged a poll's records, so a crash
between the two repeats the poll. To keep that repeat from producing the same unchanged
articles again, the state store also keeps a checkpoint (per partition of the raw topic, the
offset after the last record covered by saved state). At start-up everything after the
checkpoint that carries one of our feed ids goes back into those feeds' seen sets.
"""

from __future__ import annotations

from collections.abc import Callable

from kafka import KafkaConsumer

from connectors.producer import FEED_HEADER
from streams.kafka_clients import client_options
from streams.schema.models import RawArticle, decode
from streams.settings import Settings
from streams.topic_range import assign_all, batches_until

OnRecord = Callable[[str, RawArticle], None]


def read_tail(
    settings: Settings, topic: str, checkpoint: dict[int, int], on_record: OnRecord
) -> tuple[int, dict[int, int]]:
    """Feed every record after ``checkpoint`` to ``on_record``; return (count, end offsets).

    With no checkpoint at all (first run) nothing is read: the end offsets become the
    checkpoint, so records of any earlier producer are not taken for ours.
    """
    consumer = KafkaConsumer(
        **client_options(settings.kafka),
        client_id=f"{settings.kafka.client_id}-connector-recovery",
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(settings.kafka.request_timeout_s * 1000) + 5000,
    )
    count = 0
    try:
        parts, end = assign_all(consumer, topic)
        ends = {tp.partition: offset for tp, offset in end.items()}
        if not checkpoint:
            return 0, ends
        for tp in parts:
            consumer.seek(tp, min(checkpoint.get(tp.partition, 0), end[tp]))
        for batch in batches_until(consumer, parts, end):
            for messages in batch.values():
                for message in messages:
                    headers = dict(message.headers or [])
                    feed_id = headers.get(FEED_HEADER)
                    if feed_id is None or message.value is None:
                        continue
                    try:
                        article = decode(RawArticle, message.value)
                    except ValueError:
                        continue  # not ours to judge: the enrich stage dead-letters it
                    on_record(feed_id.decode("utf-8", "replace"), article)
                    count += 1
        return count, ends
    finally:
        consumer.close()
