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
        self.topic = topic or topics.RAW.topic_name(settings.topics)
        self.limit = min(conf.max_record_bytes, topics.MAX_RECORD_BYTES)
        self._producer = KafkaProducer(
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
            # batch, kafka-python's idempotent producer stopped sending at all (measured:
            # nothing more acknowledged after the broker came back). The poller bounds what
            # is held and re-sends anything that fails all the same.
            delivery_timeout_ms=int(
                max(conf.delivery_timeout_s, settings.kafka.request_timeout_s + 1) * 1000
            ),
            # send() runs on the poller's event loop: it must not block there for a minute
            # waiting for metadata of an unreachable cluster; a refused send is re-sent later.
            max_block_ms=5000,
            # Back within seconds once Kafka is reachable again (default: up to 30 s).
            reconnect_backoff_max_ms=2000,
        )

    def send(self, article: RawArticle) -> tuple[Any, bool]:
        """Queue one article; returns (kafka-python future, trimmed?)."""
        record = wire_record(article, self.limit)
        return self.send_record(record), record.trimmed

    def send_record(self, record: WireRecord) -> Any:
        """Queue one already encoded article; returns the kafka-python future."""
        headers = [(FEED_HEADER, record.feed_id.encode()), (SCHEMA_HEADER, _SCHEMA)]
        return self._producer.send(
            self.topic, key=record.article_id.encode(), value=record.value, headers=headers
        )

    def flush(self, timeout_s: float | None = None) -> None:
        self._producer.flush(timeout=timeout_s)

    def close(self, timeout_s: float = 30.0) -> None:
        self._producer.close(timeout=timeout_s)
