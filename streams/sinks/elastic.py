"""The Elasticsearch side of newsflow: client, index naming, document shape, bulk writes.

The document shape is the index stage's business; it is checked against the real template in
an integration test (the template is ``dynamic: strict``, so any drift fails loudly). A new
article's concrete index is the month of its ``first_seen_at``; a re-write of an article goes
to the index that already holds it, whatever month its record says, and merges the feeds that
carried it (``sinks.placement``): one document per ``article_id`` across the alias.

Entities (contract 1.3): the summary fields ``entities.person|org|location|misc`` hold the
display names (``name``, as written) of the entities that passed the facet threshold;
``entity_ids``, ``entity_keys`` and ``entity_labels.<lang>`` hold their link ids, matching keys
and the linked ids' labels in ``LABEL_LANGS`` (labels come from a function the caller passes,
``streams.enrich.linking.labels`` in the index stage: this layer does not import enrichment).
``entity_mentions`` keeps every mention of every entity, facet or not, with its own surface
text. Every keyword field of the template is bounded (``ignore_above``): a pathological
17,000-character name is kept in ``_source`` but not indexed, instead of failing the article.

Arabic analysis: the template defines the index's own ``arabic`` analyzer (Elasticsearch's
arabic chain plus a ``pattern_capture`` step that also indexes each word without its
conjunction/preposition clitics), built only from token filter names that analysis-common has
(production) and the local analysis plugin provides (local stack). A cluster whose plugin is
older than this checkout lacks them: ``template_for`` then falls back to the built-in analyzer
and says so (see docs/elasticsearch.md).
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

import orjson
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch

from streams import resources
from streams.errors import PoisonArticle, RetryableError, backoff_delays
from streams.metrics import BULK_ITEMS, ELASTIC_REFUSED, RETRIES
from streams.schema import Article
from streams.settings import ElasticSettings, RetrySettings
from streams.sinks import placement

log = logging.getLogger("newsflow.sinks.elastic")

TEMPLATE_FILE = resources.deploy_file("elasticsearch/news-articles.template.json")
ENTITY_FIELDS = {"PER": "person", "ORG": "org", "LOC": "location", "MISC": "misc"}
# Languages of the entity_labels.<lang> keyword fields (labels of linked entities).
LABEL_LANGS = ("en", "ar", "fr", "de", "tr", "es", "ru", "fa", "zh")
# id -> {language code: label}; ``streams.enrich.linking.labels`` at run time.
Labels = Callable[[str], Mapping[str, str]]
# Token filters the template's own analyzers need beyond the server core (analysis-common in
# the official distribution, the local analysis plugin on the local stack).
ANALYSIS_FILTERS = (
    "decimal_digit",
    "arabic_normalization",
    "arabic_stem",
    "pattern_capture",
    "remove_duplicates",
)
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


def client_options(settings: ElasticSettings) -> dict[str, Any]:
    """Auth and TLS options of an Elasticsearch client: an API key wins over basic auth."""
    options: dict[str, Any] = {"request_timeout": settings.request_timeout_s}
    if settings.api_key is not None:
        options["api_key"] = settings.api_key.get_secret_value()
    elif settings.username and settings.password:
        options["basic_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.url.startswith("https"):
        if settings.ca_certs is not None:
            if not settings.ca_certs.is_file():
                raise ValueError(f"elastic.ca_certs: {settings.ca_certs} is not a readable file")
            options["ca_certs"] = str(settings.ca_certs)
        options["verify_certs"] = settings.verify_certs
        if not settings.verify_certs:
            options["ssl_show_warn"] = False
    return options


def make_client(settings: ElasticSettings) -> Elasticsearch:
    return Elasticsearch(settings.url, **client_options(settings))


def template_name(settings: ElasticSettings) -> str:
    return settings.index_prefix


def index_template(settings: ElasticSettings, *, analysis: bool = True) -> dict[str, Any]:
    """The shipped template with the index pattern and alias taken from the settings.

    ``analysis=False`` drops the template's own analyzers (the fields then use the cluster's
    built-in ``arabic``): for a cluster that lacks the token filters they are built from."""
    body: dict[str, Any] = json.loads(TEMPLATE_FILE.read_text(encoding="utf-8"))
    body["index_patterns"] = [f"{settings.index_prefix}-*"]
    body["template"]["aliases"] = {settings.alias: {}}
    if not analysis:
        body["template"]["settings"].pop("analysis", None)
    return body


def missing_analysis(client: Elasticsearch) -> list[str]:
    """The token filters of ``ANALYSIS_FILTERS`` the cluster does not have (asked via _analyze).

    A user without the privilege to call ``_analyze`` (401/403) learns nothing: none are
    reported missing (the official distribution has them all), and creating the index says
    the rest."""
    missing = []
    for name in ANALYSIS_FILTERS:
        spec: str | dict[str, Any] = name
        if name == "pattern_capture":
            spec = {"type": name, "patterns": ["(x)"]}
        try:
            client.indices.analyze(tokenizer="standard", filter=[spec], text="x")
        except ApiError as exc:
            if exc.meta.status in (401, 403):
                log.info("cannot check the analysis filters (%s); assuming they exist", exc)
                return []
            if exc.meta.status != 400:
                raise
            missing.append(name)
    return missing


def template_for(
    client: Elasticsearch, settings: ElasticSettings, say: Callable[[str], None] | None = None
) -> dict[str, Any]:
    """``index_template`` for this cluster: without the template's own analyzers (and a
    warning) when the cluster lacks the token filters they use, so an Elasticsearch started
    with an older local analysis plugin keeps indexing (Arabic then without clitic splitting)."""
    missing = missing_analysis(client)
    if missing:
        message = (
            f"warning: Elasticsearch lacks the token filters {', '.join(missing)}: Arabic text "
            "is analysed without clitic splitting. On the local stack the analysis plugin is "
            "older than this checkout: `newsflow infra down && newsflow infra up` reinstalls "
            "it, then `newsflow reindex`."
        )
        if say is not None:
            say(message)
        else:
            log.warning("%s", message)
    return index_template(settings, analysis=not missing)


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


def _field_text(article: Article, field: str) -> str:
    src = article.source
    texts = {
        "title": src.title,
        "summary": src.summary,
        "content": src.content,
        "body": article.body,
    }
    return texts.get(field) or ""


def _entity_fields(article: Article) -> dict[str, Any]:
    """Summary fields of the facet entities and the nested mentions of every entity."""
    grouped: dict[str, list[str]] = {field: [] for field in ENTITY_FIELDS.values()}
    ids: list[str] = []
    keys: list[str] = []
    mentions: list[dict[str, Any]] = []
    for ent in article.entities:
        name = ent.name or ent.text
        key = ent.key or ent.normalized
        if ent.facet:
            bucket = grouped[ENTITY_FIELDS[ent.type]]
            if name not in bucket:
                bucket.append(name)
            if ent.id is not None and ent.id not in ids:
                ids.append(ent.id)
            if key not in keys:
                keys.append(key)
        for m in ent.mentions:
            text = m.text if m.text is not None else _field_text(article, m.field)[m.start : m.end]
            mentions.append(
                {
                    "name": name,
                    "text": text or ent.text,
                    "type": ent.type,
                    "key": key,
                    "normalized": ent.normalized,
                    "id": ent.id,
                    "link_confidence": ent.link_confidence,
                    "facet": ent.facet,
                    "field": m.field,
                    "start": m.start,
                    "end": m.end,
                    "confidence": ent.confidence,
                    "count": ent.count,
                }
            )
    return {
        "entities": grouped,
        "entity_ids": ids,
        "entity_keys": keys,
        "entity_mentions": mentions,
    }


def to_document(
    article: Article, indexed_at: datetime, labels: Labels | None = None
) -> dict[str, Any]:
    """The Elasticsearch document of an article; ``labels`` (id -> {lang: label}) fills
    ``entity_labels`` (empty without it)."""
    src = article.source
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
            # Every feed that carried the article (merged with the stored document's at
            # write time, sinks.placement); ``feed`` is the one whose record wrote it last.
            "feeds": [own_feed(article)],
            "feed_ids": [src.feed.feed_id],
            "feeds_seen": placement.seen_values([own_feed(article)]),
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
            **_entity_fields(article),
            "pipeline": {
                "stages": [s.stage for s in article.pipeline.stages],
                "models": dict(article.pipeline.models),
            },
        },
        labels,
    )


def own_feed(article: Article) -> placement.FeedEntry:
    """The ``feeds`` entry of the feed whose record this is."""
    src = article.source
    return placement.feed_entry(src.feed.feed_id, src.feed.name, src.first_seen_at.isoformat())


def entity_labels(ids: Iterable[str], labels: Labels) -> dict[str, list[str]]:
    """``entity_labels``: per language of ``LABEL_LANGS``, the labels of the linked ids."""
    out: dict[str, list[str]] = {}
    for entity_id in ids:
        try:
            known = labels(entity_id)
        except (OSError, ValueError, LookupError, EOFError) as exc:
            # Unreadable label data must not fail the article: index it without labels.
            log.warning("entity labels of %s unavailable: %s", entity_id, exc)
            continue
        for lang in LABEL_LANGS:
            label = known.get(lang)
            if label and label not in out.setdefault(lang, []):
                out[lang].append(label)
    return {lang: values for lang, values in out.items() if values}


def _extraction(article: Article) -> dict[str, Any] | None:
    ext = article.extraction
    if ext is None:
        return None
    out = ext.model_dump(mode="json")
    out["authors"] = list(ext.authors)
    out["flags"] = list(ext.flags)
    return out


def derive(doc: dict[str, Any], labels: Labels | None = None) -> dict[str, Any]:
    """Add the fields computed from others at index time (per-language analysed copies, and
    with ``labels`` the entity labels of ``entity_ids``).

    Kept apart from ``to_document`` so ``newsflow reindex`` can recompute them on documents
    copied from an older index.
    """
    placement.ensure(doc)  # feeds / feed_ids of a document from before they existed
    if labels is not None:
        doc["entity_labels"] = entity_labels(doc.get("entity_ids") or [], labels)
    else:
        doc.setdefault("entity_labels", {})
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
    # Articles only: per item, the record's own ``feeds``; ``send`` then places the items
    # where their article is held and merges feeds (``sinks.placement``).
    feeds: tuple[tuple[placement.FeedEntry, ...], ...] | None = None

    @property
    def body(self) -> bytes:
        return (b"\n".join(self.lines) + b"\n") if self.lines else b""

    def subset(self, positions: Sequence[int]) -> PreparedBulk:
        return PreparedBulk(
            tuple(self.ids[i] for i in positions),
            tuple(self.lines[i] for i in positions),
            None if self.feeds is None else tuple(self.feeds[i] for i in positions),
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


# Refusals no article can fix and an operator must (issue 14.9): retried in place like 429/5xx,
# never dead-lettered; reported (newsflow_elastic_writes_refused, /health/ready) meanwhile.
REFUSALS = {
    "credentials": "Elasticsearch rejects our credentials (401): renew the API key or password "
    "(NEWSFLOW_ELASTIC__USERNAME / NEWSFLOW_ELASTIC__PASSWORD)",
    "privileges": "our Elasticsearch user lacks a privilege (403): grant it write and "
    "create_index on the newsflow indices",
    "write_block": "the index is write-blocked (index.blocks.write, or read-only after the "
    "flood-stage disk watermark): free disk or lift the block",
}


def refusal(status: int, error: str | None) -> str | None:
    """The ``REFUSALS`` reason of an error answer, or None for an ordinary one.

    A block answers ``cluster_block_exception`` (403 for ``index.blocks.write``, 429 for the
    flood-stage ``read_only_allow_delete``); any other 401 or 403 is about who we are, never
    about the article.
    """
    if error is not None and "cluster_block_exception" in error:
        return "write_block"
    if status == 401:
        return "credentials"
    if status == 403:
        return "privileges"
    return None


def transport_hint(settings: ElasticSettings, error: str) -> str:
    """A plain-http URL pointed at an HTTPS port: the server closes the connection without a
    word ("Remote end closed connection without response"), which says nothing about why."""
    if settings.url.startswith("http://") and "RemoteDisconnected" in error:
        return (
            " (the server closed the connection without an answer: if it serves HTTPS, "
            "NEWSFLOW_ELASTIC__URL must start with https://)"
        )
    return ""


class Refused(RetryableError):
    """A whole request refused for a ``REFUSALS`` reason: retried, never dead-lettered."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"writes refused ({reason}): {REFUSALS[reason]}; articles wait. {detail}")
        self.reason = reason


@dataclass(frozen=True)
class WriteResult:
    article_id: str
    index: str
    ok: bool
    status: int
    error: str | None = None

    @property
    def refused(self) -> str | None:
        """The ``REFUSALS`` reason when an operator must act (the item waits), else None."""
        return None if self.ok else refusal(self.status, self.error)

    @property
    def retryable(self) -> bool:
        """Elasticsearch could not take the item now (429 / 5xx) or refuses it for an
        operator's reason (``refused``): try again."""
        return not self.ok and (
            self.status == 429 or self.status >= 500 or self.refused is not None
        )


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

    def __init__(
        self,
        settings: ElasticSettings,
        client: Elasticsearch | None = None,
        labels: Labels | None = None,
    ) -> None:
        self.settings = settings
        self._client = client
        self.labels = labels  # id -> {lang: label} for entity_labels; None: none written
        self.placement = placement.Placement(settings.alias)  # one document per article

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
        bulk = prepare_bulk(
            (
                index_for(self.settings, article.source.first_seen_at),
                article.article_id,
                to_document(article, indexed_at, self.labels),
            )
            for article in articles
        )
        return replace(bulk, feeds=tuple((own_feed(a),) for a in articles))

    def send(self, bulk: PreparedBulk, refresh: bool = False) -> list[WriteResult]:
        """One bulk request; one result per item, in order.

        Raises ``RetryableError`` when the request failed transiently (unreachable, timeout,
        429, 5xx) and ``PoisonArticle`` when Elasticsearch refused the request itself.
        """
        if not bulk.ids:
            return []
        after = None
        try:
            if bulk.feeds is not None:  # articles: one document across the alias (placement)
                lines, after = self.placement.place(self.client, bulk.ids, bulk.lines, bulk.feeds)
                bulk = replace(bulk, lines=tuple(lines))
            # A pre-serialised NDJSON body is accepted at run time; the stubs list sequences.
            resp = self.client.bulk(operations=bulk.body, refresh=refresh)  # type: ignore[arg-type]
        except TransportError as exc:  # connection refused, timeout, TLS ...
            hint = transport_hint(self.settings, str(exc))
            raise RetryableError(f"{type(exc).__name__}: {exc}{hint}") from exc
        except ApiError as exc:
            reason = refusal(exc.meta.status, f"{exc} {exc.body}")
            if reason is not None:
                raise Refused(reason, f"{type(exc).__name__}: {str(exc)[:300]}") from exc
            if exc.meta.status == 429 or exc.meta.status >= 500:
                raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
            raise PoisonArticle(f"{type(exc).__name__}: {exc}") from exc
        results = list(_results(bulk.ids, resp["items"]))
        if after is not None:
            self.placement.remember(bulk.ids, after, [r.ok for r in results])
        return results

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

    def answered(refused: Mapping[str, str]) -> None:
        """Elasticsearch answered: refusals (reason -> message) or none, for health and alert."""
        for reason in REFUSALS:
            ELASTIC_REFUSED.labels(stage, reason).set(1 if reason in refused else 0)
        if on_request is not None:
            on_request("; ".join(refused.values()) or None)

    while pending:
        request = bulk if len(pending) == len(bulk.ids) else bulk.subset(pending)
        for i in pending:
            attempts[i] += 1
        try:
            results = await loop.run_in_executor(None, sink.send, request)
        except RetryableError as exc:
            if isinstance(exc, Refused):
                answered({exc.reason: str(exc)})
            elif on_request is not None:
                on_request(str(exc))
            delay = next(delays)
            RETRIES.labels(stage, "bulk-request").inc()
            log.warning(
                "%s: bulk request failed (%s); %d items wait %.1fs", stage, exc, len(pending), delay
            )
            await asyncio.sleep(delay)
            continue
        except PoisonArticle as exc:
            answered({})
            if len(pending) == 1:
                settled[pending[0]] = Settled(False, attempts[pending[0]], str(exc))
                BULK_ITEMS.labels("rejected").inc()
                break
            for i in pending:  # isolate the culprit: one request per item
                (one,) = await write_until_settled(sink, bulk.subset([i]), retry, stage, on_request)
                settled[i] = Settled(one.indexed, attempts[i] + one.attempts - 1, one.error)
            break
        refused = {
            r.refused: f"writes refused ({r.refused}): {REFUSALS[r.refused]}; articles wait. "
            f"status {r.status}: {(r.error or '')[:300]}"
            for r in results
            if r.refused is not None
        }
        answered(refused)
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
                "%s: %d items not accepted yet (%s); retrying in %.1fs",
                stage,
                len(retry_now),
                "; ".join(refused.values()) or "429/5xx",
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
