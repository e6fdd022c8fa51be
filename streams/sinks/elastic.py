"""The Elasticsearch side of newsflow: client, index naming, document shape, bulk writes.

The document shape is the index stage's business; it is checked against the real template in
an integration test (the template is ``dynamic: strict``, so any drift fails loudly). An
article's concrete index is fixed by the month of its ``first_seen_at``, so re-writes of the
same ``article_id`` always land on the same document (idempotent ``_id``).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from streams import resources
from streams.errors import PoisonArticle, RetryableError, backoff_delays
from streams.metrics import BULK_ITEMS, RETRIES
from streams.schema import Article
from streams.settings import ElasticSettings, RetrySettings

log = logging.getLogger("newsflow.sinks.elastic")

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
    # The page text when the extract stage found one; else the feed's own text.
    body = article.body or src.content or src.summary
    ext = article.extraction
    # The publisher's date from the feed; the page's own when the feed gave none.
    published = src.published_at or (ext.published_at if ext is not None else None)
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
            "published_at": published.isoformat() if published else None,
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
                "full_text": src.feed.full_text,
            },
            "extraction": _extraction(article),
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


def _extraction(article: Article) -> dict[str, Any] | None:
    ext = article.extraction
    if ext is None:
        return None
    out = ext.model_dump(mode="json")
    out["authors"] = list(ext.authors)
    out["flags"] = list(ext.flags)
    return out


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
    """A bulk request built ahead of the network call; retries resend a subset of its items."""

    ids: tuple[str, ...]  # document ids, in request order
    lines: tuple[bytes, ...]  # per item: NDJSON action line + document line (orjson: 4x json)

    @property
    def body(self) -> bytes:
        return (b"\n".join(self.lines) + b"\n") if self.lines else b""

    def subset(self, positions: Sequence[int]) -> PreparedBulk:
        return PreparedBulk(
            tuple(self.ids[i] for i in positions), tuple(self.lines[i] for i in positions)
        )


def prepare_bulk(docs: Iterable[tuple[str, str, dict[str, Any]]]) -> PreparedBulk:
    """The bulk body of ``(index, _id, document)`` triples (any document kind)."""
    ids: list[str] = []
    lines: list[bytes] = []
    for index, doc_id, doc in docs:
        ids.append(doc_id)
        lines.append(
            orjson.dumps({"index": {"_index": index, "_id": doc_id}}) + b"\n" + orjson.dumps(doc)
        )
    return PreparedBulk(tuple(ids), tuple(lines))


@dataclass(frozen=True)
class WriteResult:
    article_id: str
    index: str
    ok: bool
    status: int
    error: str | None = None

    @property
    def retryable(self) -> bool:
        """Elasticsearch could not take the item now (429 / 5xx): try again."""
        return not self.ok and (self.status == 429 or self.status >= 500)


@dataclass(frozen=True)
class Settled:
    """Where one item of a bulk ended: written, or refused for good (after ``attempts``)."""

    indexed: bool
    attempts: int
    error: str | None = None


class ElasticSink:
    """Bulk writer with an explicit ``_id``: start / write / close, one result per item.

    Owns the translation of Elasticsearch's answers into the pipeline's vocabulary: written,
    ``RetryableError`` (unreachable, 429, 5xx: the request or single items) or ``PoisonArticle``
    (refused as such). Both the index stage and the dead-letter indexer write through it.
    """

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
        """Build the NDJSON bulk body of articles (CPU work, done apart from the network call)."""
        return prepare_bulk(
            (
                index_for(self.settings, article.source.first_seen_at),
                article.article_id,
                to_document(article, indexed_at),
            )
            for article in articles
        )

    def send(self, bulk: PreparedBulk, refresh: bool = False) -> list[WriteResult]:
        """One bulk request; one result per item, in order.

        Raises ``RetryableError`` when the request failed transiently (unreachable, timeout,
        429, 5xx) and ``PoisonArticle`` when Elasticsearch refused the request itself.
        """
        if not bulk.ids:
            return []
        try:
            # A pre-serialised NDJSON body is accepted at run time; the stubs list sequences.
            resp = self.client.bulk(operations=bulk.body, refresh=refresh)  # type: ignore[arg-type]
        except TransportError as exc:  # connection refused, timeout, TLS ...
            raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
        except ApiError as exc:
            if exc.meta.status == 429 or exc.meta.status >= 500:
                raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
            raise PoisonArticle(f"{type(exc).__name__}: {exc}") from exc
        return list(_results(bulk.ids, resp["items"]))

    def write(
        self, articles: Sequence[Article], indexed_at: datetime, refresh: bool = False
    ) -> list[WriteResult]:
        return self.send(self.prepare(articles, indexed_at), refresh=refresh)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


async def write_until_settled(
    sink: ElasticSink,
    bulk: PreparedBulk,
    retry: RetrySettings,
    stage: str,
    on_request: Callable[[str | None], None] | None = None,
) -> list[Settled]:
    """Write ``bulk`` until every item is indexed or known to be poison; one result per item.

    Retryable failures (the whole request or single items) back off and try again, forever:
    the caller's partition waits, nothing is skipped. A request refused as such is split to
    find the culprit (items one at a time). ``on_request`` hears each request's outcome
    (``None`` = Elasticsearch answered) for the health report. The blocking client runs in a
    worker thread so the event loop keeps heartbeating.
    """
    loop = asyncio.get_running_loop()
    settled: list[Settled | None] = [None] * len(bulk.ids)
    attempts = [0] * len(bulk.ids)
    pending = list(range(len(bulk.ids)))
    delays = backoff_delays(retry.initial_s, retry.max_s)
    while pending:
        request = bulk if len(pending) == len(bulk.ids) else bulk.subset(pending)
        for i in pending:
            attempts[i] += 1
        try:
            results = await loop.run_in_executor(None, sink.send, request)
        except RetryableError as exc:
            if on_request is not None:
                on_request(str(exc))
            delay = next(delays)
            RETRIES.labels(stage, "bulk-request").inc()
            log.warning(
                "%s: bulk request failed (%s); %d items wait %.1fs", stage, exc, len(pending), delay
            )
            await asyncio.sleep(delay)
            continue
        except PoisonArticle as exc:
            if on_request is not None:
                on_request(None)
            if len(pending) == 1:
                settled[pending[0]] = Settled(False, attempts[pending[0]], str(exc))
                BULK_ITEMS.labels("rejected").inc()
                break
            for i in pending:  # isolate the culprit: one request per item
                (one,) = await write_until_settled(sink, bulk.subset([i]), retry, stage, on_request)
                settled[i] = Settled(one.indexed, attempts[i] + one.attempts - 1, one.error)
            break
        if on_request is not None:
            on_request(None)
        retry_now = []
        for i, result in zip(pending, results, strict=True):
            if result.ok:
                settled[i] = Settled(True, attempts[i])
                BULK_ITEMS.labels("indexed").inc()
            elif result.retryable:
                retry_now.append(i)
            else:
                settled[i] = Settled(False, attempts[i], f"status {result.status}: {result.error}")
                BULK_ITEMS.labels("rejected").inc()
        if retry_now:
            delay = next(delays)
            RETRIES.labels(stage, "bulk-item").inc(len(retry_now))
            BULK_ITEMS.labels("retried").inc(len(retry_now))
            log.warning(
                "%s: %d items not accepted yet (429/5xx); retrying in %.1fs",
                stage,
                len(retry_now),
                delay,
            )
            await asyncio.sleep(delay)
        pending = retry_now
    return [s for s in settled if s is not None]


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
