"""The Kibana assets' queries and aggregations on the real Elasticsearch (no Kibana needed).

An index ``test-kibana-<unique>`` gets the mappings and settings of the shipped template (not its
alias) and three documents built with ``to_document``. Every KQL query in the assets is translated
with ``kql_to_query`` (which refuses anything outside the supported subset), validated with
``_validate/query?explain`` and run; every Lens visualisation's aggregations are rebuilt from its
columns (terms, date_histogram, count) and run as a real search.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from streams.commands.kibana import (
    KIBANA_ASSETS,
    RECORDS_FIELD,
    LensColumn,
    kql_fields,
    kql_to_query,
    lens_columns,
    load_objects,
    queries,
)
from streams.enrich import linking
from streams.schema import Article, Entity, EntityMention, ExtractionInfo, LanguageInfo
from streams.settings import Settings
from streams.sinks.elastic import make_client, template_for, to_document
from tests.conftest import make_raw

pytestmark = pytest.mark.elastic

OBJECTS = load_objects(KIBANA_ASSETS)
QUERIES = [(o["id"], q["query"]) for o in OBJECTS for q in queries(o)]
LENSES = [o for o in OBJECTS if o["type"] == "lens"]


@dataclass(frozen=True)
class Indexed:
    client: Elasticsearch
    index: str
    docs: list[dict[str, Any]]


def _entity(text: str, kind: str, name: str, link: str | None = None) -> Entity:
    """An entity first mentioned as ``text`` whose display name (contract 1.3) is ``name``."""
    return Entity(
        text=text,
        type=kind,
        normalized=name.lower(),
        name=name,
        key=name.lower(),
        id=link,
        mentions=(EntityMention(field="title", start=0, end=len(text)),),
        confidence=0.9,
        count=1,
    )


def _article(
    n: int,
    code: str,
    title: str,
    feed_id: str,
    day: int,
    entities: tuple[Entity, ...],
    extraction: ExtractionInfo | None = None,
) -> Article:
    when = datetime(2026, 3, day, 12, tzinfo=UTC)
    raw = make_raw(n, title=title, hint=code, now=when)
    feed = raw.source.feed.model_copy(update={"feed_id": feed_id, "name": feed_id.upper()})
    body = f"{title}. " * 20 if extraction is not None and extraction.status == "ok" else None
    return Article(
        article_id=raw.article_id,
        source=raw.source.model_copy(update={"feed": feed, "content": title, "published_at": when}),
        language=LanguageInfo(code=code, confidence=0.99, method="both", script=None),
        entities=entities,
        body=body,
        extraction=extraction,
    )


ARTICLES = [
    _article(
        1,
        "ar",
        "الأسد في دمشق",
        "feed-ar",
        15,
        (_entity("الأسد", "PER", "بشار الأسد"), _entity("دمشق", "LOC", "دمشق", "geonames:170654")),
        ExtractionInfo(status="ok", method="trafilatura", chars=600, http_status=200),
    ),
    _article(
        2,
        "en",
        "Macron meets the UN in Paris",
        "feed-en",
        16,
        (
            _entity("Macron", "PER", "Emmanuel Macron"),
            _entity("UN", "ORG", "United Nations", "org:un"),
            _entity("Paris", "LOC", "Paris", "geonames:2988507"),
        ),
        ExtractionInfo(status="robots_denied", reason="robots.txt disallows the page"),
    ),
    _article(3, "fr", "Météo calme", "feed-fr", 17, ()),  # from before the extract stage
]


@pytest.fixture(scope="module")
def indexed(elastic: Settings) -> Iterator[Indexed]:
    # Module-scoped (one index for all the parametrised cases), so it makes its own unique
    # suffix instead of the function-scoped `unique` fixture.
    index = f"test-kibana-{uuid.uuid4().hex[:10]}"
    client = make_client(elastic.elastic)
    # mappings + settings, not aliases (as bootstrap would put them on this cluster)
    template = template_for(client, elastic.elastic)["template"]
    try:
        try:
            client.indices.create(
                index=index, mappings=template["mappings"], settings=template.get("settings", {})
            )
        except BadRequestError as exc:
            # e.g. language analyzers on an Elasticsearch without the analysis-common module
            pytest.fail(f"this Elasticsearch cannot create an index from the template: {exc}")
        now = datetime.now(UTC)
        docs = [to_document(a, now, linking.labels) for a in ARTICLES]  # as the index stage
        for doc in docs:
            client.index(index=index, id=doc["article_id"], document=doc)
        client.indices.refresh(index=index)
        yield Indexed(client, index, docs)
    finally:
        client.indices.delete(index=index, ignore_unavailable=True)
        client.close()


def test_the_index_is_a_test_index(indexed: Indexed) -> None:
    assert indexed.index.startswith("test-kibana-")
    assert indexed.client.count(index=indexed.index)["count"] == len(ARTICLES)


# --- KQL -------------------------------------------------------------------------------------


def _values(doc: dict[str, Any], field: str) -> list[Any]:
    value: Any = doc
    for part in field.split("."):
        if not isinstance(value, dict):
            return []
        value = value.get(part)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _matches(doc: dict[str, Any], query: dict[str, Any]) -> bool:
    """Evaluate kql_to_query's output on a document (exact for keyword fields only)."""
    (kind, body), *_ = query.items()
    if kind == "match_phrase":
        ((field, value),) = body.items()
        return value in _values(doc, field)
    if kind == "exists":
        return bool(_values(doc, body["field"]))
    assert kind == "bool", query
    if "filter" in body:
        return all(_matches(doc, q) for q in body["filter"])
    if "should" in body:
        return any(_matches(doc, q) for q in body["should"])
    return not any(_matches(doc, q) for q in body["must_not"])


@pytest.mark.parametrize(("object_id", "kql"), QUERIES, ids=[f"{o}:{q}" for o, q in QUERIES])
def test_kql_queries_are_valid_and_match(indexed: Indexed, object_id: str, kql: str) -> None:
    query = kql_to_query(kql)  # ValueError: a KQL construct outside the supported subset
    result = indexed.client.indices.validate_query(index=indexed.index, query=query, explain=True)
    assert result["valid"] is True, (object_id, result)
    for explanation in result["explanations"]:
        assert explanation["valid"] is True, explanation
        # An unmapped field turns into MatchNoDocsQuery, which is "valid" but never matches.
        assert "MatchNoDocsQuery" not in explanation["explanation"], (kql, explanation)

    hits = indexed.client.search(index=indexed.index, query=query, size=10)["hits"]["hits"]
    mapping = indexed.client.indices.get_field_mapping(
        index=indexed.index, fields=sorted(kql_fields(kql))
    )[indexed.index]["mappings"]
    if all(
        next(iter(mapping[f]["mapping"].values()))["type"] == "keyword" for f in kql_fields(kql)
    ):
        expected = {d["article_id"] for d in indexed.docs if _matches(d, query)}
        assert {h["_id"] for h in hits} == expected, kql


def test_kql_hits_spot_checks(indexed: Indexed) -> None:
    def count(kql: str) -> int:
        return int(indexed.client.count(index=indexed.index, query=kql_to_query(kql))["count"])

    assert count('language.code : "ar"') == 1
    assert count('language.code : "zh"') == 0
    assert count("entities.person : *") == 2
    assert count("entities.org : *") == 1
    assert count('not entities.person : * or language.code : "ar"') == 2
    assert count("extraction.status : *") == 2


def test_full_text_problems_finds_the_article_without_its_page(indexed: Indexed) -> None:
    (search,) = [o for o in OBJECTS if o["id"] == "newsflow-search-full-text-problems"]
    (kql,) = [q["query"] for q in queries(search)]
    hits = indexed.client.search(index=indexed.index, query=kql_to_query(kql))["hits"]["hits"]
    assert [h["_source"]["extraction"]["status"] for h in hits] == ["robots_denied"]


# --- Lens aggregations -----------------------------------------------------------------------

_FIXED = re.compile(r"^\d+(ms|s|m|h|d)$")


def _bucket_agg(col: LensColumn) -> dict[str, Any]:
    if col.operation == "terms":
        assert col.params.get("orderBy", {}).get("type", "column") in ("column", "alphabetical")
        return {
            "terms": {
                "field": col.source_field,
                "size": int(col.params.get("size", 5)),
                "order": {"_count": col.params.get("orderDirection", "desc")},
            }
        }
    if col.operation == "date_histogram":
        interval = str(col.params.get("interval", "auto"))
        if interval == "auto":
            return {"date_histogram": {"field": col.source_field, "fixed_interval": "1d"}}
        key = "fixed_interval" if _FIXED.match(interval) else "calendar_interval"
        return {"date_histogram": {"field": col.source_field, key: interval}}
    raise AssertionError(f"no aggregation for a bucketed {col.operation} column; add one here")


def lens_aggregations(obj: dict[str, Any]) -> dict[str, Any]:
    """The aggregation tree Lens asks for: bucket columns nested in columnOrder, count metric."""
    aggs: dict[str, Any] = {}
    cursor = aggs
    for col in lens_columns(obj):
        if not col.bucketed:
            assert col.operation == "count", f"metric {col.operation}: add it to this test"
            assert col.source_field == RECORDS_FIELD, f"count of {col.source_field}: add it"
            continue
        node = _bucket_agg(col)
        cursor[col.column_id] = node
        cursor = node.setdefault("aggs", {})
    return aggs


def _first_level(response: dict[str, Any], aggs: dict[str, Any]) -> list[dict[str, Any]]:
    (name,) = aggs
    buckets: list[dict[str, Any]] = response["aggregations"][name]["buckets"]
    return buckets


@pytest.mark.parametrize("obj", LENSES, ids=lambda o: o["id"])
def test_lens_aggregations_run(indexed: Indexed, obj: dict[str, Any]) -> None:
    aggs = lens_aggregations(obj)
    assert aggs, f"{obj['id']}: no bucket columns"
    state_query = obj["attributes"]["state"].get("query") or {}
    query = kql_to_query(state_query["query"]) if state_query.get("query") else None
    response = indexed.client.search(index=indexed.index, size=0, aggs=aggs, query=query)
    assert response["_shards"]["failed"] == 0, response["_shards"]
    buckets = _first_level(response, aggs)
    assert buckets, f"{obj['id']}: the first aggregation returned no buckets"

    (first, *_) = [c for c in lens_columns(obj) if c.bucketed]
    assert first.source_field
    if first.operation == "terms":
        present = {v for d in indexed.docs for v in _values(d, first.source_field)}
        assert {b["key"] for b in buckets} <= present
        assert len(buckets) == min(len(present), int(first.params.get("size", 5)))
    else:
        assert sum(b["doc_count"] for b in buckets) == len(indexed.docs)


def test_cooccurrence_table_pairs_people_with_places(indexed: Indexed) -> None:
    (table,) = [
        o
        for o in LENSES
        if [c.source_field for c in lens_columns(o) if c.bucketed]
        == ["entities.person", "entities.location"]
    ]
    aggs = lens_aggregations(table)
    response = indexed.client.search(index=indexed.index, size=0, aggs=aggs)
    person, location = (c.column_id for c in lens_columns(table) if c.bucketed)
    pairs = {
        (p["key"], loc["key"]): loc["doc_count"]
        for p in response["aggregations"][person]["buckets"]
        for loc in p[location]["buckets"]
    }
    assert pairs == {("بشار الأسد", "دمشق"): 1, ("Emmanuel Macron", "Paris"): 1}


def test_articles_over_time_by_language(indexed: Indexed) -> None:
    (chart,) = [o for o in LENSES if o["id"] == "newsflow-lens-articles-over-time"]
    aggs = lens_aggregations(chart)
    response = indexed.client.search(index=indexed.index, size=0, aggs=aggs)
    outer, inner = (c.column_id for c in lens_columns(chart) if c.bucketed)
    per_language = {
        b["key"]: [d["key_as_string"][:10] for d in b[inner]["buckets"] if d["doc_count"]]
        for b in response["aggregations"][outer]["buckets"]
    }
    assert per_language == {"ar": ["2026-03-15"], "en": ["2026-03-16"], "fr": ["2026-03-17"]}


def test_saved_search_sort_and_time_filter_run(indexed: Indexed) -> None:
    for obj in (o for o in OBJECTS if o["type"] == "search"):
        sort = [{field: {"order": order}} for field, order in obj["attributes"]["sort"]]
        response = indexed.client.search(
            index=indexed.index,
            sort=sort,
            query={"range": {"published_at": {"gte": "2026-03-01", "lt": "2026-04-01"}}},
            source_includes=obj["attributes"]["columns"],
        )
        assert response["_shards"]["failed"] == 0
        dates = [h["sort"][0] for h in response["hits"]["hits"]]
        assert dates == sorted(dates, reverse=True), obj["id"]
