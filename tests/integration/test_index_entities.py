"""Entities in the real index (contract 1.3): names, ids, keys, labels, bounded keywords."""

from __future__ import annotations

from datetime import UTC, datetime

from elasticsearch import Elasticsearch

from streams.commands.bootstrap import ensure_elastic
from streams.enrich import linking
from streams.schema import Article, Entity, EntityMention, LanguageInfo
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink
from tests.conftest import make_raw


def _article(n: int, summary: str, entities: tuple[Entity, ...]) -> Article:
    raw = make_raw(n, now=datetime.now(UTC))
    return Article(
        article_id=raw.article_id,
        source=raw.source.model_copy(update={"summary": summary}),
        language=LanguageInfo(code="ar", confidence=0.99, method="both", script="Arab"),
        entities=entities,
    )


def _entity(summary: str, surface: str, **fields: object) -> Entity:
    start = summary.index(surface)
    values: dict[str, object] = {
        "text": surface,
        "type": "LOC",
        "normalized": surface,
        "mentions": (
            EntityMention(field="summary", start=start, end=start + len(surface), text=surface),
        ),
        "confidence": 0.9,
        "count": 1,
        **fields,
    }
    return Entity.model_validate(values)


def test_a_17000_character_name_does_not_reject_the_article(
    isolated_es: tuple[Settings, Elasticsearch],
) -> None:
    """Issue 14.14: a 17,000-character token as an entity name (34 KB in UTF-8 Arabic) was over
    Lucene's 32,766-byte term limit and failed the whole article."""
    settings, client = isolated_es
    ensure_elastic(settings, lambda _m: None, client=client)
    token = "ب" * 17_000
    text = f"خبر {token} عاجل"
    huge = _entity(text, token, type="PER", name=token, key=token)
    syria = "سوريا ترحب"
    articles = [
        _article(1, text, (huge,)),
        _article(2, syria, (_entity(syria, "سوريا", id="country:SY"),)),
    ]
    # The labels the index stage writes: the linker's own data.
    sink = ElasticSink(settings.elastic, client=client, labels=linking.labels)
    results = sink.write(articles, indexed_at=datetime.now(UTC), refresh=True)
    assert [r.ok for r in results] == [True, True], results
    got = client.get(index=settings.elastic.alias, id=articles[0].article_id)
    assert got["_source"]["entities"]["person"] == [token]  # kept in _source, not indexed
    hits = client.search(
        index=settings.elastic.alias, query={"exists": {"field": "entities.person"}}
    )
    assert hits["hits"]["total"]["value"] == 0

    by_label = client.search(
        index=settings.elastic.alias, query={"term": {"entity_labels.tr": "Suriye"}}
    )
    assert [h["_id"] for h in by_label["hits"]["hits"]] == [articles[1].article_id]
    labels = client.get(index=settings.elastic.alias, id=articles[1].article_id)["_source"]
    assert labels["entity_labels"]["ru"] == ["Сирия"] and labels["entity_labels"]["zh"] == [
        "叙利亚"
    ]
    aggs = client.search(
        index=settings.elastic.alias,
        size=0,
        aggs={"ids": {"terms": {"field": "entity_ids"}}},
    )["aggregations"]["ids"]["buckets"]
    assert aggs == [{"key": "country:SY", "doc_count": 1}]
    nested = client.search(
        index=settings.elastic.alias,
        query={
            "nested": {
                "path": "entity_mentions",
                "query": {"term": {"entity_mentions.id": "country:SY"}},
            }
        },
    )
    assert nested["hits"]["total"]["value"] == 1
