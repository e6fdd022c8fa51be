"""One document per article across the monthly indices, listing every feed that carried it
(issue 14.1, 14.2), on the real Elasticsearch (and Kafka for the worker and reindex)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from streams import topics
from streams.commands.bootstrap import ensure_elastic
from streams.commands.reindex import reindex
from streams.schema import Article, FeedRef, LanguageInfo, encode
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink, index_for, to_document
from tests.conftest import make_raw
from tests.integration import stage_helpers as h

NOV = datetime(2026, 11, 30, 23, 58, tzinfo=UTC)
DEC = datetime(2026, 12, 1, 0, 3, tzinfo=UTC)
FEEDS = {
    "wire-ar": "وكالة الأنباء",
    "wire-en": "Wire (English)",
    "blog-tr": "Haber Günlüğü",
}


def carried(feed_id: str, when: datetime, n: int = 1, title: str = "Talks in Ankara") -> Article:
    """Article ``n`` as the record of feed ``feed_id`` that first saw it at ``when``."""
    raw = make_raw(n, title=title, now=when)
    feed = FeedRef(feed_id=feed_id, url=f"https://{feed_id}.example/rss", name=FEEDS[feed_id])
    return Article(
        article_id=raw.article_id,
        source=raw.source.model_copy(update={"feed": feed}),
        language=LanguageInfo(code="en", confidence=0.9, method="text", script="Latn"),
    )


def docs(client: Elasticsearch, alias: str) -> list[dict[str, Any]]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, size=100, query={"match_all": {}})["hits"]["hits"]
    return [{"_index": hit["_index"], **hit["_source"]} for hit in hits]


@pytest.fixture
def isolated(isolated_es: tuple[Settings, Elasticsearch]) -> tuple[Settings, Elasticsearch]:
    settings, client = isolated_es
    ensure_elastic(settings, lambda _m: None, client=client)
    return settings, client


def test_same_article_either_side_of_a_month_boundary_is_one_document(
    isolated: tuple[Settings, Elasticsearch],
) -> None:
    settings, client = isolated
    alias = settings.elastic.alias
    november = carried("wire-ar", NOV)
    ElasticSink(settings.elastic, client=client).write([november], DEC, refresh=True)
    # Another feed sees it after midnight: its record says December. A fresh sink (another
    # worker after a rebalance) finds the November document on the alias.
    december = carried("wire-en", DEC, title="Talks in Ankara (updated)")
    assert index_for(settings.elastic, DEC) != index_for(settings.elastic, NOV)
    (result,) = ElasticSink(settings.elastic, client=client).write([december], DEC)
    assert result.ok and result.index == index_for(settings.elastic, NOV)
    (doc,) = docs(client, alias)
    assert doc["_index"] == index_for(settings.elastic, NOV)
    assert doc["title"] == "Talks in Ankara (updated) #1"  # the last record's text
    assert doc["feed"]["id"] == "wire-en"  # `feed`: the last writer
    assert doc["feed_ids"] == ["wire-ar", "wire-en"]
    assert doc["first_seen_at"] == NOV.isoformat()  # the earliest feed's
    assert [f["first_seen_at"] for f in doc["feeds"]] == [NOV.isoformat(), DEC.isoformat()]


def test_three_feeds_one_document_and_redelivery_adds_nothing(
    isolated: tuple[Settings, Elasticsearch],
) -> None:
    settings, client = isolated
    alias = settings.elastic.alias
    sink = ElasticSink(settings.elastic, client=client)
    records = [carried("wire-ar", NOV), carried("blog-tr", DEC), carried("wire-en", DEC)]
    # One batch holding two feeds' records, then the third right after it, without a refresh
    # in between (what the index worker does), then everything again (redelivery).
    assert all(r.ok for r in sink.write(records[:2], DEC))
    assert all(r.ok for r in sink.write(records[2:], DEC))
    (doc,) = docs(client, alias)
    assert sorted(doc["feed_ids"]) == sorted(FEEDS)
    assert {f["id"]: f["name"] for f in doc["feeds"]} == FEEDS
    assert all(r.ok for r in ElasticSink(settings.elastic, client=client).write(records, DEC))
    (again,) = docs(client, alias)
    assert again["feeds"] == doc["feeds"] and len(again["feeds"]) == 3
    # Searchable and faceted.
    found = client.search(
        index=alias,
        size=0,
        query={"term": {"feed_ids": "blog-tr"}},
        aggs={"feeds": {"terms": {"field": "feed_ids"}}},
    )
    assert found["hits"]["total"]["value"] == 1
    assert {b["key"] for b in found["aggregations"]["feeds"]["buckets"]} == set(FEEDS)


@pytest.fixture
def worker_env(
    kafka: Settings,
    isolated_es: tuple[Settings, Elasticsearch],
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[dict[str, str], Settings, Elasticsearch]:
    env = h.isolated_env(kafka, unique, tmp_path)
    settings = h.settings_for(env, monkeypatch)
    assert settings.elastic == isolated_es[0].elastic
    h.bootstrap_isolated(settings)
    return env, settings, isolated_es[1]


def test_index_worker_and_reindex_keep_one_document_with_every_feed(
    worker_env: tuple[dict[str, str], Settings, Elasticsearch], tmp_path: Path
) -> None:
    env, settings, client = worker_env
    alias = settings.elastic.alias
    others = [carried("wire-en", NOV, n) for n in range(2, 12)]
    records = [carried("wire-ar", NOV), *others, carried("blog-tr", DEC), carried("wire-en", DEC)]
    records.append(records[-1])  # a redelivered record
    topic = topics.ENRICHED.topic_name(settings.topics)
    h.produce(settings, topic, [(a.article_id.encode(), encode(a)) for a in records])
    log = tmp_path / "index.log"
    with h.worker("index", env, log) as proc:

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        def settled() -> bool:
            client.indices.refresh(index=alias)
            hit = client.search(index=alias, query={"ids": {"values": [records[0].article_id]}})
            held = hit["hits"]["hits"]
            return (
                int(client.count(index=alias)["count"]) >= 11
                and bool(held)
                and len(held[0]["_source"]["feeds"]) == 3
            )

        assert h.wait_for(settled, 120, alive), log.read_text()[-4000:]
        time.sleep(2)  # anything still to come would be a duplicate
    first = [d for d in docs(client, alias) if d["article_id"] == records[0].article_id]
    assert len(first) == 1 and first[0]["_index"] == index_for(settings.elastic, NOV)
    assert first[0]["feed_ids"] == ["wire-ar", "blog-tr", "wire-en"]
    assert len(docs(client, alias)) == 11

    # A December duplicate as code before the placement left them (written around the sink).
    legacy = carried("blog-tr", DEC, 2)
    december = index_for(settings.elastic, DEC)
    client.index(index=december, id=legacy.article_id, document=to_document(legacy, DEC))
    assert len(docs(client, alias)) == 12

    # Reindex rebuilds from the indices and the topic: the December records must not make a
    # December copy, and the old duplicate is merged into the November document.
    reindex(settings, lambda _m: None)
    after = docs(client, alias)
    assert len(after) == 11
    (again,) = [d for d in after if d["article_id"] == records[0].article_id]
    assert again["feed_ids"] == ["wire-ar", "blog-tr", "wire-en"]
    (merged,) = [d for d in after if d["article_id"] == legacy.article_id]
    assert merged["feed_ids"] == ["wire-en", "blog-tr"]
    assert merged["first_seen_at"] == NOV.isoformat()
