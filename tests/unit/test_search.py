"""The pure parts of `newsflow search`: query building, time spans, right-to-left display."""

from __future__ import annotations

import pytest

from streams.commands.search import PDI, RLI, build_query, is_rtl, readable, render, since_expr


def test_since_spans_and_dates() -> None:
    assert since_expr("7d") == "now-7d" and since_expr("12h") == "now-12h"
    assert since_expr("2026-11-01") == "2026-11-01"
    with pytest.raises(ValueError, match="--since"):
        since_expr("last week")


def test_query_combines_text_and_filters() -> None:
    q = build_query("سوريا", lang="ar", entity_keys=["سوريا"], since="7d", feed="f1")["bool"]
    match = q["must"][0]["multi_match"]
    assert match["query"] == "سوريا" and "body_lang.*" in match["fields"]
    filters = {next(iter(f)) for f in q["filter"]}
    assert filters == {"term", "bool", "range"}
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
