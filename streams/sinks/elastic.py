"""The Elasticsearch side of newsflow: client, index naming, document shape, bulk writes.

The document shape is the index stage's business; it is checked against the real template in
an integration test (the template is ``dynamic: strict``, so any drift fails loudly). An
article's concrete index is fixed by the month of its ``first_seen_at``, so re-writes of the
same ``article_id`` always land on the same document (idempotent ``_id``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from elasticsearch import Elasticsearch

from streams import resources
from streams.schema import Article
from streams.settings import ElasticSettings

TEMPLATE_FILE = resources.deploy_file("elasticsearch/news-articles.template.json")
ENTITY_FIELDS = {"PER": "person", "ORG": "org", "LOC": "location", "MISC": "misc"}
# Detected language -> the built-in analyzer of the per-language sub-fields (title_lang.*,
# body_lang.*). Other languages are searched through the standard-analysed title/body only.
LANG_ANALYZERS = {
    "ar": "arabic",
    "en": "english",
    "fr": "french",
    "de": "german",
    "es": "spanish",
    "ru": "russian",
    "tr": "turkish",
    "fa": "persian",
    "zh": "cjk",
    "ja": "cjk",
    "ko": "cjk",
}


def make_client(settings: ElasticSettings) -> Elasticsearch:
    auth = None
    if settings.username and settings.password:
        auth = (settings.username, settings.password.get_secret_value())
    return Elasticsearch(settings.url, basic_auth=auth, request_timeout=settings.request_timeout_s)


def template_name(settings: ElasticSettings) -> str:
    return settings.index_prefix


def index_template(settings: ElasticSettings) -> dict[str, Any]:
    """The shipped template with the index pattern and alias taken from the settings."""
    body: dict[str, Any] = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    body["index_patterns"] = [f"{settings.index_prefix}-*"]
    body["template"]["aliases"] = {settings.alias: {}}
    return body


ILM_POLICY_FILE = resources.deploy_file("elasticsearch/news-articles.ilm.json")


def ilm_policy() -> dict[str, Any]:
    body: dict[str, Any] = json.loads(ILM_POLICY_FILE.read_text(encoding="utf-8"))
    return body


def with_lifecycle(template: dict[str, Any], policy_name: str) -> dict[str, Any]:
    """The template plus the ILM policy setting (only for clusters that have ILM)."""
    out: dict[str, Any] = json.loads(json.dumps(template))
    out["template"]["settings"]["index.lifecycle.name"] = policy_name
    return out


def index_for(settings: ElasticSettings, first_seen_at: datetime) -> str:
    return f"{settings.index_prefix}-{first_seen_at:%Y.%m}"


def to_document(article: Article, indexed_at: datetime) -> dict[str, Any]:
    src = article.source
    grouped: dict[str, list[str]] = {field: [] for field in ENTITY_FIELDS.values()}
    for ent in article.entities:
        bucket = grouped[ENTITY_FIELDS[ent.type]]
        if ent.normalized not in bucket:
            bucket.append(ent.normalized)
    body = src.content or src.summary
    return derive(
        {
            "article_id": article.article_id,
            "schema_version": article.schema_version,
            "url": src.url,
            "guid": src.guid,
            "title": src.title,
            "summary": src.summary,
            "body": body,
            "authors": list(src.authors),
            "categories": list(src.categories),
            "published_at": src.published_at.isoformat() if src.published_at else None,
            "published_at_note": src.published_at_note,
            "first_seen_at": src.first_seen_at.isoformat(),
            "fetched_at": src.fetched_at.isoformat(),
            "indexed_at": indexed_at.isoformat(),
            "content_hash": src.content_hash,
            "feed": {
                "id": src.feed.feed_id,
                "url": src.feed.url,
                "name": src.feed.name,
                "country": src.feed.country,
                "tags": list(src.feed.tags),
                "language_hint": src.language_hint,
            },
            "language": article.language.model_dump(),
            "entities": grouped,
            "entity_mentions": [
                {
                    "text": ent.text,
                    "type": ent.type,
                    "normalized": ent.normalized,
                    "field": m.field,
                    "start": m.start,
                    "end": m.end,
                    "confidence": ent.confidence,
                    "count": ent.count,
                }
                for ent in article.entities
                for m in ent.mentions
            ],
            "pipeline": {
                "stages": [s.stage for s in article.pipeline.stages],
                "models": dict(article.pipeline.models),
            },
        }
    )


def derive(doc: dict[str, Any]) -> dict[str, Any]:
    """Add the fields computed from others at index time (per-language analysed copies).

    Kept apart from ``to_document`` so ``newsflow reindex`` can recompute them on documents
    copied from an older index.
    """
    analyzer = LANG_ANALYZERS.get((doc.get("language") or {}).get("code") or "")
    body = doc.get("body")
    doc["title_lang"] = {analyzer: doc["title"]} if analyzer and doc.get("title") else {}
    doc["body_lang"] = {analyzer: body} if analyzer and body else {}
    return doc


@dataclass(frozen=True)
class PreparedBulk:
    ids: tuple[str, ...]  # article ids, in request order
    body: bytes  # NDJSON: action line + document line per article (orjson: 4x json's speed)


@dataclass(frozen=True)
class WriteResult:
    article_id: str
    index: str
    ok: bool
    status: int
    error: str | None = None


class ElasticSink:
    """Bulk writer with ``_id = article_id``: start / write / close, one result per article."""

    def __init__(self, settings: ElasticSettings, client: Elasticsearch | None = None) -> None:
        self.settings = settings
        self._client = client

    def start(self) -> None:
        if self._client is None:
            self._client = make_client(self.settings)

    @property
    def client(self) -> Elasticsearch:
        if self._client is None:
            raise RuntimeError("ElasticSink.start() was not called")
        return self._client

    def prepare(self, articles: Sequence[Article], indexed_at: datetime) -> PreparedBulk:
        """Build the NDJSON bulk body (CPU work, done apart from the network call)."""
        lines: list[bytes] = []
        ids: list[str] = []
        for article in articles:
            index = index_for(self.settings, article.source.first_seen_at)
            lines.append(orjson.dumps({"index": {"_index": index, "_id": article.article_id}}))
            lines.append(orjson.dumps(to_document(article, indexed_at)))
            ids.append(article.article_id)
        return PreparedBulk(tuple(ids), (b"\n".join(lines) + b"\n") if lines else b"")

    def send(self, bulk: PreparedBulk, refresh: bool = False) -> list[WriteResult]:
        """One bulk request; one result per article, in order."""
        if not bulk.ids:
            return []
        # A pre-serialised NDJSON body is accepted at run time; the stubs only list sequences.
        resp = self.client.bulk(operations=bulk.body, refresh=refresh)  # type: ignore[arg-type]
        return list(_results(bulk.ids, resp["items"]))

    def write(
        self, articles: Sequence[Article], indexed_at: datetime, refresh: bool = False
    ) -> list[WriteResult]:
        return self.send(self.prepare(articles, indexed_at), refresh=refresh)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


def _results(ids: Iterable[str], items: list[dict[str, Any]]) -> Iterable[WriteResult]:
    for article_id, item in zip(ids, items, strict=True):
        op = item["index"]
        error = op.get("error")
        yield WriteResult(
            article_id,
            op["_index"],
            ok=error is None,
            status=int(op["status"]),
            error=json.dumps(error) if error else None,
        )
