"""Taking over feeds from another connector replica: their seen sets from the raw topic.

When the replica count changes, a feed can move to a replica that has no state for it (each
replica's state file holds only its own feeds, usually on a volume of its own). Polled from
scratch, every item of the feed would be produced again. Instead, at start, a replica with more
than one sibling reads the raw topic from its beginning (what retention kept) and takes every
record of its state-less feeds back into their seen sets: ``article_id -> (content hash,
first_seen_at)``, exactly what the previous owner remembered. The first poll then produces only
items that are really new or changed, and an update keeps its original ``first_seen_at`` (so
the same monthly index).

Only the headers are read for other feeds' records; a record is decoded when its feed id is
one being adopted. Validators (ETag, Last-Modified) are not in the topic: the first poll of an
adopted feed is unconditional.
"""

from __future__ import annotations

from collections.abc import Mapping

from kafka import KafkaConsumer

from connectors.feed_state import FeedState
from connectors.producer import FEED_HEADER
from streams.kafka_clients import client_options
from streams.schema.models import RawArticle, decode
from streams.settings import Settings
from streams.topic_range import assign_all, batches_until


def adopt(
    settings: Settings, topic: str, states: Mapping[str, FeedState], feed_ids: set[str]
) -> dict[str, int]:
    """Remember in ``states[feed]`` every record of ``topic`` of each feed in ``feed_ids``;
    returns records taken per feed (feeds with none are left out)."""
    if not feed_ids:
        return {}
    wanted = {f.encode(): f for f in feed_ids}
    taken: dict[str, int] = {}
    consumer = KafkaConsumer(
        **client_options(settings.kafka),
        client_id=f"{settings.kafka.client_id}-connector-handoff",
        group_id=None,
        enable_auto_commit=False,
        request_timeout_ms=int(settings.kafka.request_timeout_s * 1000) + 5000,
    )
    try:
        parts, end = assign_all(consumer, topic)
        if not parts:
            return {}
        # From the first offset retention kept (not 0: a trimmed partition would be out of
        # range, and the reset policy would jump to the end and read nothing).
        consumer.seek_to_beginning(*parts)
        for batch in batches_until(consumer, parts, end):
            for messages in batch.values():
                for message in messages:
                    feed_id = wanted.get(dict(message.headers or []).get(FEED_HEADER, b""))
                    if feed_id is None or message.value is None:
                        continue
                    try:
                        article = decode(RawArticle, message.value)
                    except ValueError:
                        continue  # not ours to judge: the enrich stage dead-letters it
                    # One key, one partition: offsets order an article's versions, so the
                    # last one read is the one the previous owner last produced.
                    states[feed_id].remember(
                        {
                            article.article_id: (
                                article.source.content_hash or "",
                                article.source.first_seen_at.timestamp(),
                            )
                        },
                        None,
                    )
                    taken[feed_id] = taken.get(feed_id, 0) + 1
        return taken
    finally:
        consumer.close()
