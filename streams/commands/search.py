"""`newsflow search`: ranked hits with highlights and facets, from the terminal.

The query is pure (``build_query``) and runs against the read alias. Right-to-left snippets are
wrapped in Unicode directional isolates so Arabic/Persian/Hebrew lines render in order next to
left-to-right metadata in a terminal.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Any

from streams.settings import ElasticSettings

SEARCH_FIELDS = ["title^2", "title_lang.*^2", "body", "body_lang.*", "summary"]
ENTITY_FIELDS = ("entities.person", "entities.org", "entities.location", "entities.misc")
_SINCE = re.compile(r"^(\d+)([mhdwMy])$")
RLI, PDI = "\u2067", "\u2069"


def since_expr(since: str) -> str:
    """'7d' -> 'now-7d' (units m h d w M y); an ISO date passes through."""
    match = _SINCE.match(since.strip())
    if match:
        return f"now-{match.group(1)}{match.group(2)}"
    if re.match(r"^\d{4}-\d{2}-\d{2}", since.strip()):
        return since.strip()
    raise ValueError(f"--since {since!r}: use a span like 30m, 12h, 7d, 2w, 6M, 1y or a date")


def build_query(
    text: str | None,
    *,
    lang: str | None = None,
    entity_keys: list[str] | None = None,
    since: str | None = None,
    feed: str | None = None,
) -> dict[str, Any]:
    must: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    if text and text.strip():
        must.append(
            {
                "multi_match": {
                    "query": text,
                    "fields": SEARCH_FIELDS,
                    "type": "most_fields",
                    "operator": "and",
                }
            }
        )
    if lang:
        filters.append({"term": {"language.code": lang}})
    if entity_keys:
        filters.append(
            {
                "bool": {
                    "should": [{"terms": {field: entity_keys}} for field in ENTITY_FIELDS],
                    "minimum_should_match": 1,
                }
            }
        )
    if since:
        filters.append({"range": {"first_seen_at": {"gte": since_expr(since)}}})
    if feed:
        filters.append({"term": {"feed.id": feed}})
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


def aggregations(size: int = 8) -> dict[str, Any]:
    return {
        "language": {"terms": {"field": "language.code", "size": size}},
        "feed": {"terms": {"field": "feed.id", "size": size}},
        "person": {"terms": {"field": "entities.person", "size": size}},
        "org": {"terms": {"field": "entities.org", "size": size}},
        "location": {"terms": {"field": "entities.location", "size": size}},
    }


def highlight() -> dict[str, Any]:
    return {
        "fields": {"title": {}, "title_lang.*": {}, "body": {}, "body_lang.*": {}, "summary": {}},
        "pre_tags": ["\u00bb"],
        "post_tags": ["\u00ab"],
        "fragment_size": 160,
        "number_of_fragments": 2,
    }


def is_rtl(text: str) -> bool:
    strong = [unicodedata.bidirectional(c) for c in text if c.isalpha()]
    rtl = sum(1 for b in strong if b in ("R", "AL"))
    return bool(strong) and rtl > len(strong) / 2


def readable(text: str) -> str:
    """Collapse whitespace; isolate right-to-left text so it displays in reading order."""
    flat = " ".join(text.split())
    return f"{RLI}{flat}{PDI}" if is_rtl(flat) else flat


def search(
    client: Any, settings: ElasticSettings, text: str | None, *, size: int = 10, **filters: Any
) -> dict[str, Any]:
    resp = client.search(
        index=settings.alias,
        query=build_query(text, **filters),
        size=size,
        highlight=highlight(),
        aggs=aggregations(),
        source_includes=[
            "title",
            "url",
            "language",
            "feed.id",
            "published_at",
            "first_seen_at",
            "entities",
        ],
    )
    return dict(resp.body if hasattr(resp, "body") else resp)


def render(resp: dict[str, Any]) -> str:
    """Plain-text hits (score, date, language, feed, title, snippets) and facet counts."""
    hits = resp["hits"]["hits"]
    lines = [f"{resp['hits']['total']['value']} hit(s)"]
    for rank, hit in enumerate(hits, start=1):
        src = hit["_source"]
        when = (src.get("published_at") or src.get("first_seen_at") or "")[:16]
        lang = (src.get("language") or {}).get("code") or "?"
        feed = (src.get("feed") or {}).get("id") or "?"
        lines.append(f"{rank:>2}. [{hit['_score'] or 0:.2f}] {when} {lang} {feed}")
        lines.append(f"    {readable(src.get('title') or '(no title)')}")
        snippets = [s for field in hit.get("highlight", {}).values() for s in field]
        for snippet in dict.fromkeys(snippets[:2]):
            lines.append(f"    … {readable(snippet)} …")
        ents = src.get("entities") or {}
        named = [e for kind in ("person", "org", "location") for e in ents.get(kind, [])[:3]]
        if named:
            lines.append(f"    entities: {', '.join(readable(e) for e in named)}")
    for name, agg in (resp.get("aggregations") or {}).items():
        buckets = agg.get("buckets", [])
        if buckets:
            counts = ", ".join(f"{readable(str(b['key']))} {b['doc_count']}" for b in buckets)
            lines.append(f"{name}: {counts}")
    return "\n".join(lines)
