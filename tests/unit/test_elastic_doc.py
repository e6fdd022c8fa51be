"""The Elasticsearch document shape and index routing (pure parts of the sink)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from streams.schema import Article, Entity, EntityMention, LanguageInfo
from streams.settings import ElasticSettings
from streams.sinks.elastic import LABEL_LANGS, derive, index_for, index_template, to_document
from tests.conftest import make_raw


def _article() -> Article:
    raw = make_raw(7, now=datetime(2026, 3, 31, 23, 59, tzinfo=UTC))
    mention = EntityMention(field="summary", start=16, end=22)
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
                mentions=(EntityMention(field="summary", start=27, end=35),),
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
        "location": ["Ankara", "Damascus"],  # 1.2 entities: name = text (as written)
        "misc": [],
    }
    assert doc["entity_keys"] == ["ankara", "damascus"] and doc["entity_ids"] == []
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


TITLE = "وزير الخارجية التركي في دمشق وسوريا ترحب"
BODY = "قالت سورية إن تركيا وسوريا ستوقعان اتفاقا. ونقلت الأمم المتحدة ترحيبها."
LABELS = {
    "country:SY": {"en": "Syria", "ar": "سوريا", "fr": "Syrie", "ru": "Сирия", "tr": "Suriye"},
    "country:TR": {"en": "Türkiye", "ar": "تركيا", "de": "Türkei"},
    "geonames:170654": {"en": "Damascus", "ar": "دمشق"},
}


def _resolved() -> Article:
    """A 1.3 article: names as written, keys, link ids, per-mention text, one non-facet entity."""
    raw = make_raw(21, title=TITLE, now=datetime(2026, 3, 1, tzinfo=UTC))
    raw = raw.model_copy(update={"source": raw.source.model_copy(update={"summary": BODY})})
    syria = [(TITLE.index("وسوريا"), "وسوريا", "title")]
    syria += [
        (BODY.index("سورية"), "سورية", "summary"),
        (BODY.index("وسوريا"), "وسوريا", "summary"),
    ]
    return Article(
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(code="ar", confidence=0.99, method="both", script="Arab"),
        entities=(
            Entity(
                text="وسوريا",
                type="LOC",
                normalized="سوريا",
                key="سوريا",
                name="سوريا",
                id="country:SY",
                link_confidence=0.97,
                mentions=tuple(
                    EntityMention(field=f, start=i, end=i + len(t), text=t) for i, t, f in syria
                ),
                confidence=0.95,
                count=3,
            ),
            Entity(
                text="دمشق",
                type="LOC",
                normalized="دمشق",
                id="geonames:170654",
                mentions=(
                    EntityMention(
                        field="title", start=TITLE.index("دمشق"), end=TITLE.index("دمشق") + 4
                    ),
                ),
                confidence=0.9,
                count=1,
            ),
            Entity(
                text="الأمم المتحدة",
                type="ORG",
                normalized="امم متحده",
                name="الأمم المتحدة",
                key="امم متحده",
                mentions=(
                    EntityMention(
                        field="summary",
                        start=BODY.index("الأمم"),
                        end=BODY.index("الأمم") + len("الأمم المتحدة"),
                        text="الأمم المتحدة",
                    ),
                ),
                confidence=0.4,
                count=1,
                facet=False,
            ),
        ),
    )


def test_summary_fields_hold_display_names_ids_and_keys_of_facet_entities_only() -> None:
    doc = to_document(_resolved(), datetime(2026, 3, 2, tzinfo=UTC), LABELS.__getitem__)
    assert doc["entities"]["location"] == ["سوريا", "دمشق"]  # names, not keys or first surfaces
    assert doc["entities"]["org"] == []  # below the facet threshold
    assert doc["entity_ids"] == ["country:SY", "geonames:170654"]
    assert doc["entity_keys"] == ["سوريا", "دمشق"]
    assert doc["entity_labels"]["en"] == ["Syria", "Damascus"]
    assert doc["entity_labels"]["tr"] == ["Suriye"] and doc["entity_labels"]["ru"] == ["Сирия"]
    assert set(doc["entity_labels"]) <= set(LABEL_LANGS)


def test_every_mention_keeps_its_own_text_and_the_entity_name_key_id() -> None:
    doc = to_document(_resolved(), datetime(2026, 3, 2, tzinfo=UTC))
    syria = [m for m in doc["entity_mentions"] if m["id"] == "country:SY"]
    assert [m["text"] for m in syria] == ["وسوريا", "سورية", "وسوريا"]
    assert {(m["name"], m["key"], m["facet"]) for m in syria} == {("سوريا", "سوريا", True)}
    # A 1.2-style mention without text: its own surface is read from the field by offsets.
    (damascus,) = [m for m in doc["entity_mentions"] if m["id"] == "geonames:170654"]
    assert damascus["text"] == "دمشق" and damascus["name"] == "دمشق"
    (un,) = [m for m in doc["entity_mentions"] if m["type"] == "ORG"]
    assert un["facet"] is False and un["name"] == "الأمم المتحدة"
    assert doc["entity_labels"] == {}  # no labels function: no labels


def test_derive_recomputes_labels_from_ids_for_reindex() -> None:
    doc = to_document(_resolved(), datetime(2026, 3, 2, tzinfo=UTC))
    again = derive(json.loads(json.dumps(doc, ensure_ascii=False)), LABELS.__getitem__)
    assert again["entity_labels"]["fr"] == ["Syrie"]
    assert derive({"title": "", "entity_ids": []})["entity_labels"] == {}


def _keyword_fields(node: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, spec in node.get("properties", {}).items():
        out += _keyword_fields(spec, f"{path}{name}.")
        if spec.get("type") in ("keyword", "flattened"):
            out.append((path + name, spec))
        for sub, sub_spec in spec.get("fields", {}).items():
            if sub_spec.get("type") == "keyword":
                out.append((f"{path}{name}.{sub}", sub_spec))
    return out


def test_every_keyword_field_is_bounded() -> None:
    """Issue 14.14: an unbounded keyword (e.g. a 17,000-character entity name) fails the whole
    article at Elasticsearch's 32,766-byte term limit; ignore_above keeps it out of the index."""
    mappings = index_template(ElasticSettings())["template"]["mappings"]
    fields = _keyword_fields(mappings)
    assert len(fields) > 40
    unbounded = [name for name, spec in fields if "ignore_above" not in spec]
    assert unbounded == []
    # 4 bytes per character at most: every bound stays under Lucene's term limit.
    assert max(spec["ignore_above"] for _, spec in fields) * 4 <= 32766


def test_template_defines_its_arabic_analyzer_and_can_drop_it() -> None:
    full = index_template(ElasticSettings())["template"]
    analyzer = full["settings"]["analysis"]["analyzer"]["arabic"]
    assert "newsflow_arabic_clitics" in analyzer["filter"]
    plain = index_template(ElasticSettings(), analysis=False)["template"]
    assert "analysis" not in plain["settings"] and plain["mappings"] == full["mappings"]
