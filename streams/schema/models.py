"""v1 models: ``RawArticle`` (connector output), ``ExtractedArticle`` (extract stage output) and
``Article`` (enrichment output, the contract).

Full text (1.2, additive): the extract stage fetches the item's page and writes two things of its
own beside the connector's ``source`` (which it never changes, so the feed's title and summary
are always kept): ``body``, the page's main text (null when there is none), and ``extraction``,
what happened (``status``, method, sizes, the page's own metadata). ``ExtractedArticle`` is a
``RawArticle`` plus these two optional fields, so any raw record also reads as an extracted one
(a replay of old raw records into the extracted topic still enriches). The enrich stage copies
both onto ``Article``; entity mentions in the body say ``field="body"`` (offsets into
``Article.body``). The feed list's per-feed full-text policy travels on ``source.feed``
(``full_text``, ``page_policy``) because the extract stage does not read the feed list.

Entity resolution (1.3, additive): an entity carries its display ``name`` as written in the
text (clitics removed, spelling kept), the ``key`` it is grouped and matched by (what
``normalized`` always was; ``normalized`` stays equal to it), an optional cross-language link
``id`` (``country:SY``) with its ``link_confidence``, and ``facet`` (whether it passed the
confidence threshold for the summary facets). Each mention carries its own surface ``text``.
Records written before 1.3 lack these fields; the models fill ``name`` from ``text`` and
``key`` from ``normalized`` when they read one, so a reader always has both.

Rules: every model is frozen and forbids unknown fields; every datetime is timezone-aware;
every field has a description (it flows into the committed JSON Schema). Within v1 only
additive, optional changes are allowed; a breaking change is a new major and a new topic.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

SCHEMA_VERSION = "1.3"  # 1.1: source.enclosures, source.truncated; 1.2: body, extraction,
# source.feed.full_text/page_policy, mention field "body"; 1.3: entity name, key, id,
# link_confidence, facet and mention text (all additive)

ArticleId = Annotated[
    str,
    Field(
        pattern=r"^[0-9a-f]{32}$",
        description="Stable id: 32 hex chars of SHA-256 over the canonical URL (GUID fallback). "
        "Kafka key and Elasticsearch _id.",
    ),
]


class ContractModel(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid", str_strip_whitespace=False)


FullTextPolicy = Literal["auto", "always", "never"]


class PagePolicy(ContractModel):
    """Politeness towards the host of a feed's article pages, from the feed list."""

    per_host: int | None = Field(
        None, ge=1, le=100, description="Page fetches in flight at once to the host."
    )
    min_spacing_s: float | None = Field(
        None, ge=0, le=3600, description="Least time between two page fetch starts, seconds."
    )


class FeedRef(ContractModel):
    feed_id: str = Field(description="Id of the feed in the feed list.", min_length=1)
    url: str = Field(description="URL the feed was fetched from.")
    name: str | None = Field(None, description="Human-readable feed name.")
    country: str | None = Field(None, description="ISO 3166-1 alpha-2 country of the publisher.")
    tags: tuple[str, ...] = Field((), description="Free tags from the feed list.")
    full_text: FullTextPolicy = Field(
        "auto",
        description="Whether the extract stage fetches the article page: auto (when the feed's "
        "own text is short), always, never.",
    )
    page_policy: PagePolicy | None = Field(
        None, description="Per-feed politeness override for fetching article pages."
    )


class Enclosure(ContractModel):
    url: str = Field(description="Media URL (http/https) as published, resolved against the feed.")
    type: str | None = Field(None, description="MIME type as published, e.g. image/jpeg.")
    length: int | None = Field(None, ge=0, description="Size in bytes as published.")


class Source(ContractModel):
    """Written by the connector only: what the publisher said, normalised."""

    feed: FeedRef = Field(description="The feed this article came from.")
    url: str | None = Field(
        description="Canonical article URL (tracking parameters stripped; the fragment kept "
        "only when it tells posts of one page apart). null when the item has a GUID but no "
        'link (before 1.3 such items carried "").'
    )
    guid: str | None = Field(None, description="The item's GUID/id as published, if any.")
    title: str = Field("", description="Title as clean text (no HTML).", max_length=2000)
    summary: str = Field("", description="Summary as clean text (no HTML).", max_length=20000)
    content: str | None = Field(None, description="Full text, clean, if the feed carries it.")
    authors: tuple[str, ...] = Field((), description="Author names as published.")
    categories: tuple[str, ...] = Field((), description="Publisher categories/tags.")
    published_at: AwareDatetime | None = Field(
        None, description="What the publisher claims (UTC); null when absent or impossible."
    )
    published_at_note: str | None = Field(
        None, description="Why published_at is null although the feed gave a date."
    )
    language_hint: str | None = Field(
        None, description="Language declared by the feed or item (BCP 47 as published)."
    )
    fetched_at: AwareDatetime = Field(description="When the connector fetched the feed.")
    first_seen_at: AwareDatetime = Field(
        description="When newsflow first saw this article; fixes its monthly index."
    )
    content_hash: str | None = Field(
        None, description="Hash of title+summary+content; a change re-emits the article."
    )
    enclosures: tuple[Enclosure, ...] = Field(
        (), description="Media attached to the item (RSS enclosure, media:content, Atom enclosure)."
    )
    truncated: bool = Field(
        False,
        description="True when the connector cut content (then summary) to fit Kafka's record "
        "size limit.",
    )


ExtractionStatus = Literal[
    # full text extracted
    "ok",
    # the page was fetched but has no usable article text (extractor statuses)
    "empty",
    "blocked",
    "too_large",
    "not_html",
    "extract_failed",
    # the page could not be fetched (page fetcher statuses)
    "robots_denied",
    "backoff",
    "timeout",
    "http_4xx",
    "http_5xx",
    "refused",
    "redirect_loop",
    "bad_url",
    "bad_response",
    "network_error",
    "internal",
    # no fetch was made
    "skipped",
    "not_attempted",
    "no_url",
]


class ExtractionInfo(ContractModel):
    """Written by the extract stage only: whether and how the full text was obtained."""

    status: ExtractionStatus = Field(
        description="ok: body holds the page's main text. empty/blocked/too_large/not_html/"
        "extract_failed: the page was fetched, no usable text. robots_denied/backoff/timeout/"
        "http_4xx/http_5xx/refused/redirect_loop/bad_url/bad_response/network_error/internal: "
        "the page could not be fetched. skipped: not fetched by policy (full_text never, or "
        "auto and the feed's own text is long enough). not_attempted: not fetched this time "
        "(fetched already for this article). no_url: the item has no page URL."
    )
    reason: str | None = Field(
        None, description="One short line on why the status is not ok (error class, message)."
    )
    method: str | None = Field(None, description="Extraction method, e.g. trafilatura.")
    chars: int = Field(0, ge=0, description="Characters of body (0 when there is none).")
    http_status: int | None = Field(None, description="HTTP status of the page answer.")
    fetched_at: AwareDatetime | None = Field(None, description="When the page was fetched.")
    final_url: str | None = Field(None, description="The URL that answered, after redirects.")
    canonical_url: str | None = Field(
        None, description="rel=canonical (or og:url) the page declares."
    )
    page_language: str | None = Field(None, description="Language the page declares.")
    published_at: AwareDatetime | None = Field(
        None, description="Publication time the page states (UTC); the feed's is in source."
    )
    authors: tuple[str, ...] = Field((), description="Authors the page names.")
    image: str | None = Field(None, description="Lead image URL the page declares.")
    flags: tuple[str, ...] = Field(
        (), description="multi_page, live_blog, amp, truncated: special pages, first part kept."
    )


class StageStamp(ContractModel):
    stage: str = Field(description="Stage name: connector, enrich, index.")
    at: AwareDatetime = Field(description="When the stage produced this record.")
    version: str = Field(description="Version of newsflow that ran the stage.")


class PipelineInfo(ContractModel):
    """Appended to by every stage."""

    stages: tuple[StageStamp, ...] = Field((), description="One stamp per stage passed.")
    models: dict[str, str] = Field(
        default_factory=dict, description="Model name -> version used for enrichment."
    )


class LanguageInfo(ContractModel):
    """Written by the enrich stage only."""

    code: str | None = Field(description="ISO 639-1 code; null when undetermined.")
    confidence: float = Field(ge=0.0, le=1.0, description="Confidence in [0, 1].")
    method: Literal["text", "declared", "both", "none"] = Field(
        description="text: detected; declared: the feed's hint; both: they agree; none."
    )
    script: str | None = Field(None, description="ISO 15924 script of the text, e.g. Arab.")


class EntityMention(ContractModel):
    field: Literal["title", "summary", "content", "body"] = Field(
        description="Text field mentioned in: source.title/summary/content, or body (the "
        "extracted page text)."
    )
    start: int = Field(ge=0, description="Start character offset in that field.")
    end: int = Field(ge=0, description="End character offset (exclusive).")
    text: str | None = Field(
        None,
        description="This mention's own surface form: the field's text[start:end] (1.3; null "
        "in older records).",
    )


LINK_ID_PATTERN = r"^[a-z][a-z0-9_-]*:\S+$"


class Entity(ContractModel):
    text: str = Field(min_length=1, description="Surface form of the first mention.")
    type: Literal["PER", "ORG", "LOC", "MISC"] = Field(description="Entity type.")
    normalized: str = Field(
        min_length=1, description="Normalised form used for aggregation; equal to key (1.3)."
    )
    mentions: tuple[EntityMention, ...] = Field(description="Where it occurs.")
    confidence: float = Field(ge=0.0, le=1.0, description="Model confidence in [0, 1].")
    count: int = Field(ge=1, description="Number of mentions.")
    name: str | None = Field(
        None,
        min_length=1,
        description="Display name as written in the text: the most frequent full surface form, "
        "attached clitics removed, spelling kept (1.3). Show this to users. Readers of older "
        "records get text.",
    )
    key: str | None = Field(
        None,
        min_length=1,
        description="Grouping and matching key (1.3; Arabic letters unified, clitics and "
        "article split off); never shown to users. Readers of older records get normalized.",
    )
    id: str | None = Field(
        None,
        pattern=LINK_ID_PATTERN,
        max_length=200,
        description="Stable cross-language id of the referent, e.g. country:SY, org:un, "
        "geonames:170654 (1.3); null when not linked or ambiguous.",
    )
    link_confidence: float | None = Field(
        None, ge=0.0, le=1.0, description="Confidence of the id in [0, 1]; null without id."
    )
    facet: bool = Field(
        True,
        description="True when the entity passed the per-language confidence threshold and is "
        "shown in the summary facets; false ones are kept as mentions only (1.3).",
    )

    @model_validator(mode="before")
    @classmethod
    def _fill_name_and_key(cls, data: Any) -> Any:
        # A record written before 1.3 has neither: read it as name=text, key=normalized.
        if isinstance(data, dict) and (not data.get("name") or not data.get("key")):
            data = dict(data)
            if not data.get("name"):
                data["name"] = data.get("text")
            if not data.get("key"):
                data["key"] = data.get("normalized")
        return data


class RawArticle(ContractModel):
    """Value of ``news.articles.raw.v1`` (key: article_id)."""

    schema_version: str = Field(
        SCHEMA_VERSION, pattern=r"^1\.\d+$", description="Contract version (major 1)."
    )
    article_id: ArticleId
    source: Source = Field(description="Connector section.")
    pipeline: PipelineInfo = Field(default_factory=PipelineInfo, description="Stage stamps.")


_BODY = "Main text of the article page (extract stage); null when not fetched or none found."
_EXTRACTION = "Extract stage: whether and how the full text was obtained; null before 1.2."


class ExtractedArticle(ContractModel):
    """Value of ``news.articles.extracted.v1`` (key: article_id): the raw record plus full text.

    Every raw article is forwarded, with or without a body; ``extraction.status`` says why."""

    schema_version: str = Field(
        SCHEMA_VERSION, pattern=r"^1\.\d+$", description="Contract version (major 1)."
    )
    article_id: ArticleId
    source: Source = Field(description="Connector section, unchanged.")
    body: str | None = Field(None, description=_BODY)
    extraction: ExtractionInfo | None = Field(None, description=_EXTRACTION)
    pipeline: PipelineInfo = Field(default_factory=PipelineInfo, description="Stage stamps.")


class Article(ContractModel):
    """Value of ``news.articles.enriched.v1`` (key: article_id): the public contract."""

    schema_version: str = Field(
        SCHEMA_VERSION, pattern=r"^1\.\d+$", description="Contract version (major 1)."
    )
    article_id: ArticleId
    source: Source = Field(description="Connector section, unchanged.")
    language: LanguageInfo = Field(description="Enrichment: detected language.")
    entities: tuple[Entity, ...] = Field((), description="Enrichment: named entities.")
    text_truncated: bool = Field(
        False, description="True when enrichment read only the first part of a very long text."
    )
    body: str | None = Field(None, description=_BODY)
    extraction: ExtractionInfo | None = Field(None, description=_EXTRACTION)
    pipeline: PipelineInfo = Field(default_factory=PipelineInfo, description="Stage stamps.")


M = TypeVar("M", bound=ContractModel)


def encode(record: ContractModel) -> bytes:
    """The wire form of a contract record: compact UTF-8 JSON."""
    return record.model_dump_json(exclude_none=False).encode()


def decode(model: type[M], payload: bytes) -> M:
    """Parse and validate wire bytes; raises ``pydantic.ValidationError`` on any mismatch."""
    return model.model_validate_json(payload)
