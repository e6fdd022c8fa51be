"""`newsflow reindex`: an index built under an older template is rebuilt under the current one
(old documents re-derived, newer copies from the topic), aliases swapped, nothing duplicated."""

from __future__ import annotations

import copy
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.commands.reindex import reindex
from streams.schema import Article, LanguageInfo, encode
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink, index_template, to_document
from tests.conftest import make_raw
from tests.integration import stage_helpers as h

MARCH = datetime(2026, 3, 10, tzinfo=UTC)


def _article(n: int, lang: str, title: str, body: str) -> Article:
    raw = make_raw(n, title=title, hint=lang, now=MARCH)
    return Article(
        article_id=raw.article_id,
        source=raw.source.model_copy(update={"title": title, "content": body}),
        language=LanguageInfo(code=lang, confidence=0.99, method="text"),
    )


@pytest.fixture
def isolated(
    kafka: Settings,
    isolated_es: tuple[Settings, Elasticsearch],
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> tuple[Settings, Elasticsearch]:
    """isolated_es's alias and prefix (and its clean-up) plus a topic namespace of our own."""
    settings = h.settings_for(h.isolated_env(kafka, unique, tmp_path), monkeypatch)
    assert settings.elastic == isolated_es[0].elastic
    ensure_topics(settings, lambda _m: None)
    return settings, isolated_es[1]


def test_reindex_rebuilds_under_the_new_template(
    isolated: tuple[Settings, Elasticsearch],
) -> None:
    settings, client = isolated
    prefix, alias = settings.elastic.index_prefix, settings.elastic.alias
    # An index as an older template made it: no per-language sub-fields.
    old_body = copy.deepcopy(index_template(settings.elastic)["template"])
    for field in ("title_lang", "body_lang"):
        del old_body["mappings"]["properties"][field]
    old_index = f"{prefix}-2026.03"
    client.indices.create(index=old_index, mappings=old_body["mappings"], aliases={alias: {}})
    a = _article(1, "ar", "خبر", "وصل الوفد إلى سوريا أمس")
    b_old = _article(2, "en", "Old title", "Parliament elections")
    for art in (a, b_old):
        doc = to_document(art, MARCH)
        doc.pop("title_lang")
        doc.pop("body_lang")
        client.index(index=old_index, id=art.article_id, document=doc)
    client.indices.refresh(index=old_index)
    # The topic holds a newer version of b and an article the old index never got.
    b_new = _article(2, "en", "New title", "Parliament elections")
    d = _article(3, "fr", "Élections", "Les électeurs votent")
    h.produce(
        settings,
        topics.ENRICHED.topic_name(settings.topics),
        [(x.article_id.encode(), encode(x)) for x in (b_new, d)],
    )

    said: list[str] = []
    plans = reindex(settings, said.append)
    assert len(plans) == 1 and plans[0].old == old_index
    client.indices.refresh(index=alias)

    ids = sorted(hit["_id"] for hit in client.search(index=alias, size=50)["hits"]["hits"])
    assert ids == sorted([a.article_id, b_new.article_id, d.article_id])  # no duplicates
    found = client.search(index=alias, query={"match": {"body_lang.arabic": "وسوريا"}})
    assert [x["_id"] for x in found["hits"]["hits"]] == [a.article_id]  # re-derived
    title = client.get(index=alias, id=b_new.article_id)["_source"]["title"]
    assert title == "New title"  # the topic's copy won
    # The month's write name now routes to the new index: the sink keeps working unchanged.
    resolved = client.indices.resolve_index(name=old_index)
    assert resolved["aliases"][0]["indices"] == [plans[0].new]
    e = _article(4, "en", "After", "written after the swap")
    assert ElasticSink(settings.elastic, client=client).write([e], MARCH, refresh=True)[0].ok
    assert client.count(index=alias)["count"] == 4

    # A second reindex starts from an alias-backed month and removes the previous build.
    second = reindex(settings, said.append)
    assert second[0].old == plans[0].new and second[0].new != plans[0].new
    client.indices.refresh(index=alias)
    assert client.count(index=alias)["count"] == 4
    assert not client.indices.exists(index=plans[0].new)
