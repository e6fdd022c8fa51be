"""`newsflow search` over entities on the real Elasticsearch (issue 13.5, 13.6).

Articles in Arabic, English, Turkish, Russian and French about one place, written by hand;
``--entity`` in any of its spellings finds all of them, ranked by mentions; a free-text search
for سوريا finds the article that only writes سورية; an unlinked Arabic name matches whatever its
spacing.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from streams.commands import search
from streams.commands.bootstrap import ensure_elastic
from streams.enrich import linking
from streams.enrich.entities import key_of
from streams.schema import Article, Entity, EntityMention, LanguageInfo
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink
from tests.conftest import make_raw

pytestmark = pytest.mark.elastic

# (language, title, summary, [(surface, type, name, id, facet)])
Doc = tuple[str, str, str, list[tuple[str, str, str, str | None, bool]]]
DOCS: list[Doc] = [
    (
        "ar",
        "تركيا وسوريا توقعان اتفاقا للتعاون الدفاعي",
        "قالت سوريا إن الاتفاق مع تركيا يشمل التدريب. ورحبت سوريا بالخطوة.",
        [
            ("تركيا", "LOC", "تركيا", "country:TR", True),
            ("سوريا", "LOC", "سوريا", "country:SY", True),
        ],
    ),
    (
        "en",
        "Talks resume in Geneva",
        "Delegations from Syria met on Monday.",
        [("Syria", "LOC", "Syria", "country:SY", True)],
    ),
    (
        "tr",
        "Cenevre'de görüşmeler",
        "Suriye heyeti Pazartesi günü bir araya geldi.",
        [("Suriye", "LOC", "Suriye", "country:SY", True)],
    ),
    (
        "ru",
        "Переговоры в Женеве",
        "Сирия направила делегацию в понедельник.",
        [("Сирия", "LOC", "Сирия", "country:SY", True)],
    ),
    (
        "fr",
        "Reprise des discussions",
        "La Syrie a envoyé une délégation lundi.",
        [("Syrie", "LOC", "Syrie", "country:SY", False)],  # below the facet threshold
    ),
    (
        "ar",
        "وفد يزور العاصمة",
        "قالت سورية إن الوفد وصل أمس.",
        [],  # the tagger found nothing: only the free text knows سورية
    ),
    (
        "ar",
        "خطاب الرئيس السابق",
        "ألقى علي عبد الله صالح خطابا أمام أنصاره.",
        [("علي عبد الله صالح", "PER", "علي عبد الله صالح", None, True)],
    ),
    ("en", "Football results", "The home team won on Sunday.", []),
]


def _entity(
    lang_text: dict[str, str], surface: str, kind: str, name: str, **more: object
) -> Entity:
    mentions = []
    for field, text in lang_text.items():
        start = text.find(surface)
        while start >= 0:
            mentions.append(
                EntityMention(field=field, start=start, end=start + len(surface), text=surface)
            )
            start = text.find(surface, start + 1)
    return Entity.model_validate(
        {
            "text": surface,
            "type": kind,
            "normalized": key_of(name),
            "key": key_of(name),
            "name": name,
            "mentions": tuple(mentions),
            "confidence": 0.9,
            "count": len(mentions),
            **more,
        }
    )


def _articles() -> list[Article]:
    now = datetime.now(UTC)
    out = []
    for n, (lang, title, summary, ents) in enumerate(DOCS, start=1):
        raw = make_raw(n, title=title, now=now, hint=lang)
        fields = {"title": title, "summary": summary}
        entities = tuple(
            _entity(fields, surface, kind, name, id=link, facet=facet)
            for surface, kind, name, link, facet in ents
        )
        out.append(
            Article(
                article_id=raw.article_id,
                source=raw.source.model_copy(update={"title": title, "summary": summary}),
                language=LanguageInfo(code=lang, confidence=0.99, method="both"),
                entities=entities,
            )
        )
    return out


@pytest.fixture
def indexed(
    isolated_es: tuple[Settings, Elasticsearch],
) -> Iterator[tuple[Settings, Elasticsearch, list[Article]]]:
    settings, client = isolated_es
    ensure_elastic(settings, lambda _m: None, client=client)
    articles = _articles()
    sink = ElasticSink(settings.elastic, client=client, labels=linking.labels)
    assert all(r.ok for r in sink.write(articles, datetime.now(UTC), refresh=True))
    yield settings, client, articles


def _hits(
    settings: Settings, client: Elasticsearch, text: str = "", **kw: Any
) -> list[dict[str, Any]]:
    resp = search.search(client, settings.elastic, text, size=20, **kw)
    return list(resp["hits"]["hits"])


@pytest.mark.parametrize("name", ["Syria", "Suriye", "Syrie", "Сирия", "سوريا", "سورية"])
def test_entity_search_finds_the_place_in_every_language(
    indexed: tuple[Settings, Elasticsearch, list[Article]], name: str
) -> None:
    settings, client, articles = indexed
    found = {h["_id"] for h in _hits(settings, client, entity=[name])}
    assert found == {a.article_id for a in articles[:5]}


def test_entity_search_is_ranked_by_mentions_and_prominence(
    indexed: tuple[Settings, Elasticsearch, list[Article]],
) -> None:
    settings, client, articles = indexed
    hits = _hits(settings, client, entity=["Syria"])
    scores = {h["_id"]: h["_score"] for h in hits}
    # the Arabic article: a title mention and two more in its summary
    assert hits[0]["_id"] == articles[0].article_id
    assert len(set(scores.values())) > 2, scores  # not every hit 1.00
    # one summary mention each; the French one is below the facet threshold: last
    assert hits[-1]["_id"] == articles[4].article_id
    assert scores[articles[0].article_id] > 3 * scores[articles[1].article_id]


def test_entity_search_across_languages_finds_the_arabic_article(
    indexed: tuple[Settings, Elasticsearch, list[Article]],
) -> None:
    settings, client, articles = indexed
    assert [h["_id"] for h in _hits(settings, client, entity=["Turkey"])] == [
        articles[0].article_id
    ]


def test_an_unlinked_arabic_name_matches_whatever_its_spacing(
    indexed: tuple[Settings, Elasticsearch, list[Article]],
) -> None:
    settings, client, articles = indexed
    for spelling in ("علي عبدالله صالح", "علي عبد الله صالح"):
        hits = _hits(settings, client, entity=[spelling])
        assert [h["_id"] for h in hits] == [articles[6].article_id], spelling


def test_free_text_of_a_linked_name_finds_its_other_spellings(
    indexed: tuple[Settings, Elasticsearch, list[Article]],
) -> None:
    settings, client, articles = indexed
    found = {h["_id"] for h in _hits(settings, client, "سوريا")}
    assert articles[5].article_id in found  # writes only سورية, no entity
    assert articles[7].article_id not in found
    assert {a.article_id for a in articles[:5]} <= found  # by spelling or by id


def test_results_show_names_and_each_snippet_once(
    indexed: tuple[Settings, Elasticsearch, list[Article]],
) -> None:
    settings, client, _articles = indexed
    resp = search.search(client, settings.elastic, "الاتفاق تركيا", size=5)
    text = search.render(resp)
    assert "entities: " in text and "تركيا" in text
    snippet_lines = [line for line in text.splitlines() if line.startswith("    … ")]
    assert snippet_lines and len(snippet_lines) == len(set(snippet_lines))


def test_the_linked_facet_counts_one_place_across_languages(
    indexed: tuple[Settings, Elasticsearch, list[Article]],
) -> None:
    settings, client, _articles = indexed
    resp = search.search(client, settings.elastic, "", size=0)
    linked = {b["key"]: b["doc_count"] for b in resp["aggregations"]["linked"]["buckets"]}
    # سوريا, Syria, Suriye, Сирия: one bucket (the French mention is below the facet threshold)
    assert linked["Syria"] == 4
    assert "linked: Syria 4" in search.render(resp)
