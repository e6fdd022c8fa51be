"""The pure parts of `newsflow search`: query building, time spans, right-to-left display."""

from __future__ import annotations

import pytest

from streams.commands.search import (
    PDI,
    RLI,
    TITLE_WEIGHT,
    EntityTarget,
    Segment,
    build_query,
    entity_query,
    expand_text,
    is_rtl,
    readable,
    render,
    resolve_entity,
    since_expr,
    snippets,
)


def test_since_spans_and_dates() -> None:
    assert since_expr("7d") == "now-7d" and since_expr("12h") == "now-12h"
    assert since_expr("2026-11-01") == "2026-11-01"
    with pytest.raises(ValueError, match="--since"):
        since_expr("last week")


def test_query_combines_text_and_filters() -> None:
    q = build_query("سوريا", lang="ar", entity_keys=["سوريا"], since="7d", feed="f1")["bool"]
    match = q["must"][0]["multi_match"]
    assert match["query"] == "سوريا" and "body_lang.*" in match["fields"]
    assert "nested" in str(q["must"][1])  # entities are scored (ranked), not only filtered
    filters = {next(iter(f)) for f in q["filter"]}
    assert filters == {"term", "range"}
    assert {"term": {"language.code": "ar"}} in q["filter"]
    assert {"term": {"feed.id": "f1"}} in q["filter"]


def test_empty_query_matches_all() -> None:
    assert build_query("")["bool"]["must"] == [{"match_all": {}}]


def test_rtl_is_isolated_ltr_is_not() -> None:
    assert is_rtl("وزارة الدفاع التركية") and not is_rtl("Ministry of Defence")
    assert readable("  وزارة   الدفاع ") == f"{RLI}وزارة الدفاع{PDI}"
    assert readable("Ankara  talks") == "Ankara talks"


def test_render_lists_hits_and_facets() -> None:
    resp = {
        "hits": {
            "total": {"value": 1},
            "hits": [
                {
                    "_score": 3.2,
                    "_source": {
                        "title": "عنوان",
                        "published_at": "2026-11-29T10:00:00Z",
                        "language": {"code": "ar"},
                        "feed": {"id": "f1"},
                        "entities": {"location": ["سوريا"]},
                    },
                    "highlight": {"body_lang.arabic": ["... »سوريا« ..."]},
                }
            ],
        },
        "aggregations": {"language": {"buckets": [{"key": "ar", "doc_count": 1}]}},
    }
    text = render(resp)
    assert "1 hit(s)" in text and "2026-11-29T10:00 ar f1" in text
    assert f"{RLI}عنوان{PDI}" in text and "language: ar 1" in text


SYRIA = ["Syria", "Suriye", "Syrie", "Сирия", "سوريا", "سورية"]


@pytest.mark.parametrize("name", SYRIA)
def test_an_entity_in_any_language_resolves_to_its_link_id(name: str) -> None:
    target = resolve_entity(name)
    assert target.ids[:1] == ("country:SY",), target
    assert name in target.names


def test_unlinked_arabic_names_match_by_key_whatever_the_spacing() -> None:
    joined = resolve_entity("علي عبدالله صالح")
    spaced = resolve_entity("علي  عبد الله صالح")
    assert joined.ids == () and spaced.ids == ()
    assert set(joined.keys) & set(spaced.keys), (joined.keys, spaced.keys)


def test_entity_search_is_ranked_by_mentions() -> None:
    q = entity_query([EntityTarget("Syria", ids=("country:SY",), keys=("syria",))])
    nested = q["bool"]["should"][0]["nested"]
    assert nested["score_mode"] == "sum" and nested["path"] == "entity_mentions"
    scoring = nested["query"]["function_score"]
    weights = {f.get("weight") for f in scoring["functions"]}
    assert TITLE_WEIGHT in weights and scoring["boost_mode"] == "replace"
    match = scoring["query"]["constant_score"]["filter"]["bool"]["should"]
    assert {"terms": {"entity_mentions.id": ["country:SY"]}} in match


def test_an_entity_only_search_scores_instead_of_filtering() -> None:
    q = build_query(None, entities=[resolve_entity("Turkey")])["bool"]
    assert q["must"] != [{"match_all": {}}] and q["filter"] == []
    assert "country:TR" in str(q["must"])


def test_free_text_naming_a_linked_place_is_expanded_with_its_spellings() -> None:
    segments = expand_text("اتفاق سوريا")
    assert segments[0] == Segment("اتفاق")
    assert segments[1].ids[:1] == ("country:SY",)
    assert "سورية" in segments[1].variants
    # other scripts come in through the id, not as phrases ("Siri" is not Syria in a text)
    assert all(v[0] not in "ABCDEFGHIJKLMNOPQRSTUVWXYZ" for v in segments[1].variants)
    q = build_query("اتفاق سوريا", segments=segments)
    assert "سورية" in str(q) and "country:SY" in str(q)
    # Nothing linked: the plain query, unchanged.
    plain = expand_text("وزارة الصحة")
    assert build_query("وزارة الصحة", segments=plain) == build_query("وزارة الصحة")


def test_each_highlight_is_printed_once() -> None:
    """title and title_lang.arabic (and body/body_lang.*) highlight the same passage with
    different marks: it was printed twice."""
    title = "سوريا وتركيا توقعان اتفاقا"
    hit = {
        "highlight": {
            "title": ["»سوريا« وتركيا توقعان اتفاقا"],
            "title_lang.arabic": ["»سوريا« »وتركيا« توقعان اتفاقا"],
            "body": ["وقعت »سوريا« اتفاقا في أنقرة"],
            "body_lang.arabic": ["وقعت »سوريا« اتفاقا في أنقرة", "ثم زار الوفد »سوريا«"],
        }
    }
    assert snippets(hit, title) == ["وقعت »سوريا« اتفاقا في أنقرة", "ثم زار الوفد »سوريا«"]
    resp = {
        "hits": {
            "total": {"value": 1},
            "hits": [{"_score": 1.0, "_source": {"title": title}, **hit}],
        }
    }
    text = render(resp)
    assert text.count("وقعت »سوريا« اتفاقا") == 1 and text.count("»سوريا« »وتركيا«") == 0


def test_render_says_what_an_entity_and_linked_words_were_resolved_to() -> None:
    resp = {
        "hits": {"total": {"value": 0}, "hits": []},
        "newsflow": {
            "entities": [{"query": "Turkey", "ids": ["country:TR"], "keys": ["turkey"]}],
            "linked_words": [{"words": "سوريا", "ids": ["country:SY"], "spellings": 9}],
        },
    }
    text = render(resp)
    assert "entity Turkey: country:TR" in text
    assert "also country:SY and 9 other spelling(s)" in text


def test_the_linked_facet_counts_one_referent_across_languages() -> None:
    from streams.commands.search import aggregations

    assert aggregations()["linked"] == {"terms": {"field": "entity_labels.en", "size": 8}}
    assert aggregations(label_lang="ar")["linked"]["terms"]["field"] == "entity_labels.ar"
