"""The Elasticsearch document shape and index routing (pure parts of the sink)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from streams.schema import Article, Entity, EntityMention, LanguageInfo
from streams.settings import ElasticSettings
from streams.sinks.elastic import index_for, index_template, to_document
from tests.conftest import make_raw


def _article() -> Article:
    raw = make_raw(7, now=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    mention = EntityMention(field="summary", start=21, end=27)
    return Article(
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(code="en", confidence=0.97, method="both", script="Latn"),
        entities=(
            Entity(
                text="Ankara",
                type="LOC",
                normalized="ankara",
                mentions=(mention,),
                confidence=0.9,
                count=1,
            ),
            Entity(
                text="Damascus",
                type="LOC",
                normalized="damascus",
                mentions=(EntityMention(field="summary", start=32, end=40),),
                confidence=0.8,
                count=1,
            ),
        ),
    )


def test_index_is_fixed_by_first_seen_month() -> None:
    settings = ElasticSettings()
    art = _article()
    assert index_for(settings, art.source.first_seen_at) == "news-articles-v1-2026.03"


def test_document_groups_entities_by_type() -> None:
    doc = to_document(_article(), indexed_at=datetime(2026, 4, 1, tzinfo=UTC))
    assert doc["entities"] == {
        "person": [],
        "org": [],
        "location": ["ankara", "damascus"],
        "misc": [],
    }
    assert [m["text"] for m in doc["entity_mentions"]] == ["Ankara", "Damascus"]
    assert doc["language"]["code"] == "en"
    assert doc["indexed_at"].startswith("2026-04-01")


def test_document_fields_are_all_mapped() -> None:
    props = index_template(ElasticSettings())["template"]["mappings"]["properties"]
    doc = to_document(_article(), indexed_at=datetime.now(UTC))
    assert set(doc) <= set(props), set(doc) - set(props)
    for section in ("feed", "language", "entities"):
        assert set(doc[section]) <= set(props[section]["properties"])


def test_template_follows_settings() -> None:
    body = index_template(ElasticSettings(alias="a1", index_prefix="p1"))
    assert body["index_patterns"] == ["p1-*"]
    assert body["template"]["aliases"] == {"a1": {}}
    assert body["template"]["mappings"]["dynamic"] == "strict"


def test_lifecycle_is_added_only_on_request() -> None:
    from streams.sinks.elastic import ilm_policy, with_lifecycle

    base = index_template(ElasticSettings())
    assert "index.lifecycle.name" not in base["template"]["settings"]  # local ES has no ILM
    with_ilm = with_lifecycle(base, "news-articles-v1")
    assert with_ilm["template"]["settings"]["index.lifecycle.name"] == "news-articles-v1"
    assert "index.lifecycle.name" not in base["template"]["settings"]  # no mutation
    phases = ilm_policy()["policy"]["phases"]
    assert "rollover" not in json.dumps(phases)  # monthly indices, never rolled over
    assert phases["delete"]["actions"] == {"delete": {}}
