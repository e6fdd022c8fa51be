"""Sends normalised articles to ``news.articles.raw.v1`` with kafka-python, at-least-once.

Key = ``article_id`` (one article, one partition, one Elasticsearch ``_id``), ``acks=all``,
idempotent producer, compression, headers with the feed id and schema version. A record over
the size limit is trimmed (content first, then summary) and flagged ``source.truncated``;
nothing is dropped silently. The poller keeps the returned futures and saves a feed's state
only once all of its poll's futures succeeded.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
from kafka import KafkaProducer

from streams import topics
from streams.schema.models import SCHEMA_VERSION, RawArticle, encode
from streams.settings import Settings

FEED_HEADER = "newsflow-feed-id"
SCHEMA_HEADER = "newsflow-schema-version"
_OVERHEAD = 512  # key, headers and record framing, generously
_SCHEMA = SCHEMA_VERSION.encode()


def fit_record(article: RawArticle, limit: int) -> tuple[RawArticle, bytes]:
    """The article and its wire bytes, trimmed to ``limit`` bytes when it does not fit.

    Cuts content (to nothing if need be), then summary, then title; each cut is computed from
    the measured excess in UTF-8 bytes, so a few passes suffice even for multi-byte scripts.
    """
    value = encode(article)
    if len(value) + _OVERHEAD <= limit:
        return article, value
    src = article.source
    fields = {"content": src.content or "", "summary": src.summary, "title": src.title}
    for name in ("content", "summary", "title"):
        for _ in range(8):
            excess = len(value) + _OVERHEAD - limit
            text = fields[name]
            if excess <= 0 or not text:
                break
            data = text.encode("utf-8")
            # JSON escaping makes some characters cost more on the wire than in UTF-8:
            # scale the cut by this text's own wire/raw ratio, with a little slack.
            wire = len(orjson.dumps(text))
            keep = int(len(data) * max(0, wire - excess - 64) / wire)
            keep = min(keep, len(data) - 1)
            fields[name] = data[:keep].decode("utf-8", "ignore").rstrip()
            changed = {
                "content": fields["content"] or None,
                "summary": fields["summary"],
                "title": fields["title"],
                "truncated": True,
            }
            article = article.model_copy(update={"source": src.model_copy(update=changed)})
            value = encode(article)
        if len(value) + _OVERHEAD <= limit:
            return article, value
    raise ValueError(
        f"article {article.article_id} does not fit in {limit} bytes even without text"
    )


@dataclass(frozen=True, slots=True)
class WireRecord:
    """One article as it goes to Kafka: key, encoded value, and whether it was trimmed.

    Built where the article is (a parser process, see ``rss.poller``), so only bytes cross
    the process boundary: unpickling 50 pydantic articles in the polling process cost about
    as much as producing them.
    """

    article_id: str
    feed_id: str
    value: bytes
    trimmed: bool


def wire_record(article: RawArticle, limit: int) -> WireRecord:
    fitted, value = fit_record(article, limit)
    return WireRecord(article.article_id, article.source.feed.feed_id, value, fitted is not article)


class ArticleProducer:
    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        conf = settings.connector
        self.topic = topic or topics.RAW.topic_name(settings.topics)
        self.limit = min(conf.max_record_bytes, topics.MAX_RECORD_BYTES)
        self._producer = KafkaProducer(
            bootstrap_servers=settings.kafka.bootstrap_servers,
            client_id=f"{settings.kafka.client_id}-connector",
            acks="all",
            enable_idempotence=True,
            compression_type=None if conf.compression == "none" else conf.compression,
            # Bigger, fuller batches: kafka-python builds records in Python, and its cost per
            # batch (framing, compression call, request) is what a small batch multiplies.
            linger_ms=50,
            batch_size=256 * 1024,
            max_request_size=self.limit + 64 * 1024,
            request_timeout_ms=int(settings.kafka.request_timeout_s * 1000),
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
