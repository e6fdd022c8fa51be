"""Value types shared by the connector's parse and poll steps (no I/O here).

Flow: ``streams.net.fetch.Fetcher`` -> ``streams.net.types.FetchResult`` (bytes + validators)
-> ``parse.parse_feed`` ->
``ParsedFeed`` (feed metadata + normalised ``Item``s) -> poller -> ``RawArticle`` -> Kafka.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime

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
    # Fields cut to fit a cap ("title", "summary", "content", "authors", "guid", ...): any
    # cut sets ``source.truncated``, and each is counted in newsflow_feed_items_truncated_total.
    truncated: tuple[str, ...] = ()


@dataclass(slots=True)
class ParsedFeed:
    meta: FeedMeta
    items: list[Item]
    bozo: bool = False
    # reason -> count of entries dropped (e.g. "link_not_http", "no_link_or_guid", "over_max_items")
    dropped: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    error: str | None = None  # set when nothing could be parsed at all (e.g. HTML, not a feed)
    # article_id -> the keys that item would have had with other items of its document
    # (``rss.identity``): the feed's seen set picks one it already used (stable ids over polls).
    alt_keys: dict[str, tuple[str, ...]] = field(default_factory=dict)
