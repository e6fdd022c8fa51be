"""Sends normalised articles to ``news.articles.raw.v1`` with kafka-python, at-least-once.

Key = ``article_id`` (one article, one partition, one Elasticsearch ``_id``), ``acks=all``,
idempotent producer, compression, headers with the feed id and schema version. A record over
the size limit is trimmed (content first, then summary) and flagged ``source.truncated``;
nothing is dropped silently. The poller keeps the returned futures and saves a feed's state
only once all of its poll's futures succeeded; it re-sends what fails (``rss.poller``), so the
producer gives up on a record after ``connector.delivery_timeout_s`` and never blocks a send
for long (``max_block_ms``): the poller's event loop must keep polling while Kafka is away.
"""

from __future__ import annotations

from typing import Any

from kafka import KafkaProducer

from connectors.records import WireRecord, wire_record
from connectors.records import fit_record as fit_record  # re-exported: its old home
from streams import topics
from streams.kafka_clients import client_options
from streams.schema.models import SCHEMA_VERSION, RawArticle
from streams.settings import Settings

FEED_HEADER = "newsflow-feed-id"
SCHEMA_HEADER = "newsflow-schema-version"
_SCHEMA = SCHEMA_VERSION.encode()


class ArticleProducer:
    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        conf = settings.connector
        self.settings = settings
        self.topic = topic or topics.RAW.topic_name(settings.topics)
        self.limit = min(conf.max_record_bytes, topics.MAX_RECORD_BYTES)
        # (kafka-python producer, generation): swapped as one by ``reset``.
        self._current: tuple[KafkaProducer, int] = (self._make(), 0)

    def _make(self) -> KafkaProducer:
        settings, conf = self.settings, self.settings.connector
        return KafkaProducer(
            **client_options(settings.kafka),
            client_id=f"{settings.kafka.client_id}-connector",
            acks="all" if settings.kafka.acks == "all" else int(settings.kafka.acks),
            enable_idempotence=settings.kafka.acks == "all",
            compression_type=None if conf.compression == "none" else conf.compression,
            # Bigger, fuller batches: kafka-python builds records in Python, and its cost per
            # batch (framing, compression call, request) is what a small batch multiplies.
            linger_ms=50,
            batch_size=256 * 1024,
            max_request_size=self.limit + 64 * 1024,
            request_timeout_ms=int(settings.kafka.request_timeout_s * 1000),
            # Retry a record through a Kafka outage instead of expiring it: after an expired
            # batch, kafka-python's idempotent producer sent nothing more (measured: nothing
            # acknowledged after the broker came back), so a failure means ``reset``.
            delivery_timeout_ms=int(
                max(conf.delivery_timeout_s, settings.kafka.request_timeout_s + 1) * 1000
            ),
            # send() runs on the poller's event loop: it must not block there for a minute
            # waiting for metadata of an unreachable cluster; a refused send is re-sent later.
            max_block_ms=5000,
            # Back within seconds once Kafka is reachable again (default: up to 30 s).
            reconnect_backoff_max_ms=2000,
            bootstrap_timeout_ms=10_000,
        )

    @property
    def generation(self) -> int:
        """How many times the kafka-python producer was replaced (``reset``)."""
        return self._current[1]

    def send(self, article: RawArticle) -> tuple[Any, bool]:
        """Queue one article; returns (kafka-python future, trimmed?)."""
        record = wire_record(article, self.limit)
        return self.send_record(record), record.trimmed

    def send_record(self, record: WireRecord) -> Any:
        """Queue one already encoded article; returns the kafka-python future."""
        return self.send_held(record)[0]

    def send_held(self, record: WireRecord) -> tuple[Any, int]:
        """Queue one encoded article; returns (future, generation of the producer used)."""
        producer, generation = self._current
        headers = [(FEED_HEADER, record.feed_id.encode()), (SCHEMA_HEADER, _SCHEMA)]
        future = producer.send(
            self.topic, key=record.article_id.encode(), value=record.value, headers=headers
        )
        return future, generation

    def reset(self) -> None:
        """Replace the kafka-python producer by a new one (blocking; raises while Kafka is
        unreachable). Records still with the old one are abandoned: the poller re-sends
        every record of an older generation that was not acknowledged."""
        fresh = self._make()
        try:
            fresh.partitions_for(self.topic)  # metadata now, not in the next send() on the loop
        except BaseException:
            _close_hard(fresh)
            raise
        old, generation = self._current
        self._current = (fresh, generation + 1)
        _close_hard(old)

    def flush(self, timeout_s: float | None = None) -> None:
        self._current[0].flush(timeout=timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        _close_hard(self._current[0], timeout_s)


def _close_hard(producer: KafkaProducer, timeout_s: float = 0.0) -> None:
    """Close, and when records are still pending after ``timeout_s`` (Kafka unreachable: a
    plain close raises there and leaves the sender thread running), stop the sender anyway."""
    try:
        producer.close(timeout=timeout_s)
    except Exception:  # noqa: BLE001 - KafkaTimeoutError from the flush inside close()
        sender = getattr(producer, "_sender", None)
        if sender is not None:
            sender.force_close()
