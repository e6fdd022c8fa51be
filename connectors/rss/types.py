"""Value types shared by the connector's fetch, parse and poll steps (no I/O here).

Flow: ``fetch.Fetcher`` -> ``FetchResult`` (bytes + validators) -> ``parse.parse_feed`` ->
``ParsedFeed`` (feed metadata + normalised ``Item``s) -> poller -> ``RawArticle`` -> Kafka.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from streams.schema.models import Enclosure


@dataclass(frozen=True, slots=True)
class ParseLimits:
    """Caps applied to every parsed field (entity expansion and huge feeds stay bounded)."""

    max_items: int = 1000
    max_title_chars: int = 2000
    max_summary_chars: int = 20000
    max_content_chars: int = 200_000
    max_url_chars: int = 4096
    max_authors: int = 20
    max_categories: int = 50
    max_enclosures: int = 20
    max_short_chars: int = 300  # author / category / guid / language


@dataclass(frozen=True, slots=True)
class FeedMeta:
    """What the feed says about itself (used for scheduling and as defaults for items)."""

    title: str | None = None
    link: str | None = None
    language: str | None = None
    ttl_s: int | None = None  # RSS <ttl> (minutes in the feed) in seconds
    update_period_s: int | None = None  # sy:updatePeriod / sy:updateFrequency in seconds
    skip_hours: frozenset[int] = frozenset()  # RSS <skipHours>, hours 0-23 in UTC
    skip_days: frozenset[int] = frozenset()  # RSS <skipDays>, 0 = Monday ... 6 = Sunday


@dataclass(frozen=True, slots=True)
class Item:
    """One feed entry, normalised; everything a ``RawArticle`` needs except feed/time fields."""

    article_id: str
    url: str  # canonical (or "guid:<guid>" fallback key's URL-less form, see parse)
    guid: str | None
    title: str
    summary: str
    content: str | None
    authors: tuple[str, ...]
    categories: tuple[str, ...]
    enclosures: tuple[Enclosure, ...]
    published_at: datetime | None
    published_at_note: str | None
    language: str | None
    content_hash: str


@dataclass(slots=True)
class ParsedFeed:
    meta: FeedMeta
    items: list[Item]
    bozo: bool = False
    # reason -> count of entries dropped (e.g. "link_not_http", "no_link_or_guid", "over_max_items")
    dropped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # set when nothing could be parsed at all (e.g. HTML, not a feed)


FetchStatus = Literal["ok", "not_modified", "error"]


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0  # longest silence between two chunks
    total_timeout_s: float = 60.0
    max_compressed_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 20 * 1024 * 1024  # after decompression (gzip bombs)
    max_redirects: int = 5
    retry_after_cap_s: float = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: FetchStatus
    url: str  # the URL finally answered (after redirects)
    http_status: int | None = None
    permanent_url: str | None = None  # set when every redirect hop was permanent (301/308)
    body: bytes | None = None  # decoded (decompressed) body for status "ok"
    content_type: str | None = None
    validators: Validators = Validators()
    cache_max_age_s: int | None = None  # Cache-Control: max-age
    retry_after_s: float | None = None  # Retry-After (capped), on 429/503
    error: str | None = (
        None  # short class: "timeout", "blocked_address", "too_large", "http_404"...
    )
    error_message: str | None = None
    bytes_compressed: int = 0  # bytes on the wire
    elapsed_s: float = 0.0
