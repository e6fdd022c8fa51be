"""The real template on the real Elasticsearch: write, search, strictness, idempotency."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from streams.commands.bootstrap import ensure_elastic
from streams.commands.search import build_query
from streams.schema import Article, Entity, EntityMention, LanguageInfo
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink, index_for, to_document
from tests.conftest import make_raw


@pytest.fixture
def isolated(isolated_es: tuple[Settings, Elasticsearch]) -> tuple[Settings, Elasticsearch]:
    return isolated_es


def _article(n: int, text: str, when: datetime) -> Article:
    raw = make_raw(n, title=text, now=when)
    return Article(
        article_id=raw.article_id,
        source=raw.source.model_copy(update={"content": text}),
        language=LanguageInfo(code="ar", confidence=0.99, method="both", script="Arab"),
        entities=(
            Entity(
                text="سوريا",
                type="LOC",
                normalized="سوريا",
                mentions=(EntityMention(field="content", start=0, end=5),),
                confidence=0.9,
                count=1,
            ),
        ),
    )


def test_bootstrap_template_write_and_search(isolated: tuple[Settings, Elasticsearch]) -> None:
    settings, client = isolated
    say: list[str] = []
    first_index = ensure_elastic(settings, say.append, client=client)
    ensure_elastic(settings, say.append, client=client)  # idempotent
    assert any("exists" in line for line in say)
    assert client.indices.get_alias(name=settings.elastic.alias)[first_index]

    march = datetime(2026, 3, 15, tzinfo=UTC)
    articles = [
        _article(1, "سوريا وتركيا توقعان اتفاقا", march),
        _article(2, "Elections in France", datetime.now(UTC)),
    ]
    sink = ElasticSink(settings.elastic, client=client)
    results = sink.write(articles, indexed_at=datetime.now(UTC), refresh=True)
    assert [r.ok for r in results] == [True, True], results
    assert results[0].index == index_for(settings.elastic, march)  # routed by first_seen month

    found = client.search(index=settings.elastic.alias, query={"match": {"body": "سوريا"}})
    assert [h["_id"] for h in found["hits"]["hits"]] == [articles[0].article_id]
    by_entity = client.search(
        index=settings.elastic.alias, query={"term": {"entities.location": "سوريا"}}
    )
    assert by_entity["hits"]["total"]["value"] == 2

    # Writing the same articles again overwrites in place: still exactly two documents.
    sink.write(articles, indexed_at=datetime.now(UTC), refresh=True)
    assert client.count(index=settings.elastic.alias)["count"] == 2


def test_strict_mapping_rejects_unknown_fields(isolated: tuple[Settings, Elasticsearch]) -> None:
    settings, client = isolated
    index = ensure_elastic(settings, lambda _m: None, client=client)
    doc = to_document(_article(3, "x", datetime.now(UTC)), indexed_at=datetime.now(UTC))
    doc["surprise"] = "field"
    with pytest.raises(BadRequestError, match="strict_dynamic_mapping_exception"):
        client.index(index=index, id="x", document=doc)


SEED = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "seed-article-ar.txt"


def _lang_article(n: int, lang: str, title: str, body: str) -> Article:
    raw = make_raw(n, title=title, hint=lang)
    return Article(
        article_id=raw.article_id,
        source=raw.source.model_copy(update={"title": title, "content": body}),
        language=LanguageInfo(code=lang, confidence=0.99, method="text"),
    )


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("سوريا", "ar"),
        ("وسوريا", "ar"),  # conjunction glued on
        ("سوريّا", "ar"),  # shadda
        ("سورية", "ar"),  # ta marbuta variant; the seed says السورية
        ("السورية", "ar"),
        ("election", "en"),  # the text says "elections"
        ("کتاب", "fa"),  # the text says کتاب‌ها
        ("新闻发布", "zh"),  # CJK phrase inside 新闻发布会
    ],
)
def test_language_analysis_finds_variants(
    isolated: tuple[Settings, Elasticsearch], query: str, expected: str
) -> None:
    settings, client = isolated
    ensure_elastic(settings, lambda _m: None, client=client)
    text = SEED.read_text(encoding="utf-8")
    docs = {
        "ar": _lang_article(10, "ar", text.splitlines()[0][:80], text),
        "en": _lang_article(11, "en", "Voters head to the polls", "National elections were held."),
        "fa": _lang_article(12, "fa", "کتابخانه ملی", "کتاب‌ها در کتابخانه ملی نگهداری می‌شوند"),
        "zh": _lang_article(13, "zh", "北京新闻", "外交部在北京举行新闻发布会"),
    }
    sink = ElasticSink(settings.elastic, client=client)
    assert all(r.ok for r in sink.write(list(docs.values()), datetime.now(UTC), refresh=True))
    hits = client.search(index=settings.elastic.alias, query=build_query(query))["hits"]["hits"]
    assert [h["_id"] for h in hits] == [docs[expected].article_id]


def test_standard_fields_alone_miss_the_variants(
    isolated: tuple[Settings, Elasticsearch],
) -> None:
    """The per-language sub-fields are what finds وسوريا: plain `body` does not (a control)."""
    settings, client = isolated
    ensure_elastic(settings, lambda _m: None, client=client)
    text = SEED.read_text(encoding="utf-8")
    art = _lang_article(20, "ar", "عنوان", text)
    ElasticSink(settings.elastic, client=client).write([art], datetime.now(UTC), refresh=True)
    plain = client.search(index=settings.elastic.alias, query={"match": {"body": "وسوريا"}})
    assert plain["hits"]["total"]["value"] == 0
    analysed = client.search(
        index=settings.elastic.alias, query={"match": {"body_lang.arabic": "وسوريا"}}
    )
    assert analysed["hits"]["total"]["value"] == 1
