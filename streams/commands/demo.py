"""`newsflow demo`: the smoke round trip of the local stack.

Seed article -> ``news.articles.raw.v1`` (kafka-python, acks=all) -> read back by exact offset
-> enriched by the enrich stage's pure function (language + entities) ->
``news.articles.enriched.v1`` -> read back -> Elasticsearch (``_id`` = article_id) -> search
for an Arabic word through the read alias, and one cross-language entity search
(``--entity Turkey`` finds the Arabic article through its link id). Entities are shown by their
names as written in the article, with their link ids. The workers (``newsflow worker
enrich|index``) are not needed for this smoke test; ``newsflow run`` drives the whole pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from importlib.resources.abc import Traversable
from typing import Any

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from streams import resources, topics
from streams.commands import search
from streams.commands.bootstrap import bootstrap
from streams.commands.search import build_query
from streams.enrich import linking, pipeline
from streams.kafka_clients import client_options
from streams.schema import (
    Article,
    ContractModel,
    FeedRef,
    PipelineInfo,
    RawArticle,
    Source,
    StageStamp,
    decode,
    encode,
)
from streams.schema.ids import article_id
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink
from streams.version import VERSION

SEED = resources.deploy_file("demo/seed-article-ar.txt")
SEED_URL = "http://127.0.0.1:8765/pages/ar/turkey-syria-defence-cooperation.html"
Say = Callable[[str], None]


def seed_raw_article(now: datetime, path: Traversable = SEED) -> RawArticle:
    lines = [line.strip() for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    title = lines[0].split("،")[0][:300]
    return RawArticle(
        article_id=article_id(SEED_URL),
        source=Source(
            feed=FeedRef(
                feed_id="demo-ar",
                url="http://127.0.0.1:8765/ar.xml",
                name="newsflow demo (Arabic)",
                country="TR",
                tags=("demo",),
            ),
            url=SEED_URL,
            title=title,
            summary=lines[0],
            content="\n".join(lines),
            language_hint="ar",
            fetched_at=now,
            first_seen_at=now,
        ),
        pipeline=PipelineInfo(stages=(StageStamp(stage="connector", at=now, version=VERSION),)),
    )


def _send(producer: KafkaProducer, topic: str, record: ContractModel, key: str) -> tuple[int, int]:
    meta = producer.send(topic, key=key.encode(), value=encode(record)).get(timeout=30)
    return meta.partition, meta.offset


def _read_back(settings: Settings, topic: str, partition: int, offset: int) -> bytes:
    consumer = KafkaConsumer(
        **client_options(settings.kafka),
        enable_auto_commit=False,
        consumer_timeout_ms=30000,
    )
    try:
        tp = TopicPartition(topic, partition)
        consumer.assign([tp])
        consumer.seek(tp, offset)
        for message in consumer:
            if message.offset == offset:
                return bytes(message.value)
        raise RuntimeError(f"record {topic}[{partition}]@{offset} not read back within 30s")
    finally:
        consumer.close()


ENTITY_QUERY = "Turkey"  # English name, Arabic article: found through the link id country:TR


def run(
    settings: Settings, say: Say, query: str = "سوريا", entity_query: str = ENTITY_QUERY
) -> dict[str, Any]:
    bootstrap(settings, say)
    now = datetime.now(UTC)
    raw = seed_raw_article(now)
    producer = KafkaProducer(
        **client_options(settings.kafka),
        acks="all",
        client_id=f"{settings.kafka.client_id}-demo",
    )
    raw_topic = topics.RAW.topic_name(settings.topics)
    enriched_topic = topics.ENRICHED.topic_name(settings.topics)
    try:
        part, off = _send(producer, raw_topic, raw, raw.article_id)
        say(f"produced seed article {raw.article_id} to {raw_topic}[{part}]@{off}")
        raw_back = decode(RawArticle, _read_back(settings, raw_topic, part, off))
        assert raw_back == raw, "raw record changed in transit"
        # The enrich stage's own pure function (the worker runs the same code on batches).
        stamp = pipeline.stamp(datetime.now(UTC), VERSION)
        article = pipeline.enrich_one(raw_back, stamp, settings.enrich.max_chars)
        say(
            f"enriched: language {article.language.code} ({article.language.method}), "
            f"{len(article.entities)} entities"
        )
        part, off = _send(producer, enriched_topic, article, article.article_id)
        say(f"produced Article to {enriched_topic}[{part}]@{off}")
        article_back = decode(Article, _read_back(settings, enriched_topic, part, off))
    finally:
        producer.close()
    sink = ElasticSink(settings.elastic, labels=linking.labels)
    sink.start()
    try:
        results = sink.write([article_back], indexed_at=datetime.now(UTC), refresh=True)
        if not all(r.ok for r in results):
            raise RuntimeError(f"indexing failed: {results}")
        say(f"indexed into {results[0].index} (alias {settings.elastic.alias})")
        resp = sink.client.search(
            index=settings.elastic.alias,
            query=build_query(query),
            size=5,
            source_includes=["title", "url", "language.code"],
        )
        by_entity = search.search(
            sink.client, settings.elastic, None, size=5, entity=[entity_query]
        )
    finally:
        sink.close()
    found = [h["_id"] for h in by_entity["hits"]["hits"]]
    say(
        f"search --entity {entity_query!r}: {by_entity['hits']['total']['value']} hit(s)"
        + (", the Arabic seed article among them" if article.article_id in found else "")
    )
    hits = resp["hits"]["hits"]
    return {
        # names as written (contract 1.3), with the link id when there is one
        "entities": [
            (e.type, e.name or e.text if e.id is None else f"{e.name or e.text}  [{e.id}]")
            for e in article_back.entities
            if e.facet
        ],
        "entity_search": {"query": entity_query, "ids": found},
        "query": query,
        "total": resp["hits"]["total"]["value"],
        "hits": [{"id": h["_id"], **h["_source"]} for h in hits],
        "article_id": article.article_id,
    }
