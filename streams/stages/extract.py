"""The extract stage: raw articles -> the linked page's main text -> ``ExtractedArticle``.

Sits between the connector and enrichment (wiring: ``topics.STAGES["extract"]``). For every
raw article it decides whether to fetch the item's page (``decide``), fetches the pages of a
batch concurrently through the polite ``PageFetcher`` (robots.txt, per-host pacing and
429/503 backoff, one queue per host, so a slow host never holds up the others), extracts the
main text in a small thread pool (CPU work off the event loop, which keeps heartbeating) and
forwards one ``ExtractedArticle`` per input, keyed by ``article_id``.

**No article is ever lost here.** A fetch that fails, is refused or is not attempted forwards
the article with its feed title and summary and the reason in ``extraction.status``; only a
record that is not a readable ``RawArticle`` is dead-lettered (``news.dlq.extract``).

When is a page fetched (``decide``)? Per feed (``full_text`` in the feed list, carried on
``source.feed.full_text``): ``never`` -> ``skipped``; ``always`` -> fetched; ``auto`` (the
default) -> fetched when the feed's own text (the longer of summary and content) is shorter
than ``extract.auto_min_chars`` (600), else ``skipped``. An item without an http(s) URL is
``no_url``. ``extract.fetch_pages: false`` turns fetching off for every feed (``skipped``).

Once per article: each worker remembers the last ``extract.seen_cache_size`` articles
(``article_id`` + ``content_hash`` -> the extraction, body included) in memory (LRU). A repeat
of the same version of an article (another feed carrying it, a redelivery) reuses the result
without fetching; an update of the item (new content hash) fetches again. Transient failures
(timeout, backoff, 5xx, network errors) are not remembered, so the next sighting tries again.
The cache is per process and lost on restart (a redelivered batch is fetched again).

Time: every page has ``extract.page_deadline_s`` (queueing for its host included), so a batch
finishes within about that deadline plus extraction. A host that makes the pages of one
batch wait longer than that (a burst of items from one site at 1 page/s, a hang, a long
Retry-After) sees those pages pass on as ``timeout``/``backoff`` with their summaries.

Metrics (``streams/metrics.py``): every forwarded article counts once in
``newsflow_extract_pages_total{outcome=extraction.status, host_class}`` and once in
``newsflow_extract_feed_pages_total{feed, result=ok|failed|skipped}`` (the per-feed failure
ratio alert); fetch and extraction latency are histograms; the hosts in backoff are a gauge
refreshed every ``BACKOFF_REFRESH_S`` (so it falls back to 0 when an idle worker's backoffs
end). ``host_class`` (``same_site``, ``cross_site``, ``none``) keeps cardinality bounded: the
page's site against the feed's, never a host name.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import time
from collections import OrderedDict
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal
from urllib.parse import urlsplit

from streams import topics
from streams.errors import PoisonArticle
from streams.extract import EXTRACTOR_VERSION, Extraction, extract
from streams.metrics import (
    EXTRACT_FEED_PAGES,
    EXTRACT_FETCH_SECONDS,
    EXTRACT_HOSTS_BACKOFF,
    EXTRACT_PAGES,
    EXTRACT_TEXT_SECONDS,
)
from streams.net.pages import PageFetcher, PageResult
from streams.ops import Health
from streams.schema import (
    ExtractedArticle,
    ExtractionInfo,
    ExtractionStatus,
    PagePolicy,
    PipelineInfo,
    RawArticle,
    StageStamp,
    decode,
)
from streams.settings import HostPolicy, PageFetchSettings, Settings
from streams.stages.runner import BatchPolicy, Forward, Outcome, Poison, Record, Stage
from streams.version import VERSION

STAGE = "extract"
# Not remembered: the next sighting of the article may well succeed.
TRANSIENT: frozenset[str] = frozenset(
    {"timeout", "backoff", "http_5xx", "network_error", "internal", "extract_failed"}
)
# Statuses of articles whose page was not wanted (policy, no link): neither ok nor a failure.
NOT_WANTED: frozenset[str] = frozenset({"skipped", "no_url", "not_attempted"})
BACKOFF_REFRESH_S = 5.0

HostClass = Literal["same_site", "cross_site", "none"]
FeedResult = Literal["ok", "failed", "skipped"]
# Second-level labels under a two-letter country code that are suffixes of their own (co.uk,
# com.au, ac.jp, gob.mx, ...): enough to tell sites apart without the public suffix list.
_SECOND_LEVEL: frozenset[str] = frozenset(
    {"ac", "co", "com", "edu", "go", "gob", "gov", "gv", "ltd", "mil", "ne", "net", "or", "org"}
)


def decode_raw(record: Record) -> RawArticle:
    return decode(RawArticle, record.value)


# ---- pure decisions -----------------------------------------------------------------------


def decide(
    raw: RawArticle, auto_min_chars: int, fetch_pages: bool = True
) -> tuple[ExtractionStatus, str] | None:
    """``None`` when the page is to be fetched; else (status, reason) of not fetching it."""
    src = raw.source
    policy = src.feed.full_text
    if not fetch_pages:
        return "skipped", "extract.fetch_pages is off"
    if policy == "never":
        return "skipped", "full_text: never"
    if not (src.url or "").lower().startswith(("http://", "https://")):
        return "no_url", "the item has no http(s) link"
    if policy == "auto":
        own = max(len(src.summary), len(src.content or ""))
        if own >= auto_min_chars:
            return "skipped", f"feed text has {own} characters (auto: >= {auto_min_chars})"
    return None


def site_of(url: str) -> str | None:
    """The site of an http(s) URL: its registrable domain, approximated (``news.bbc.co.uk`` ->
    ``bbc.co.uk``, ``www.example.org`` -> ``example.org``); an IP address stands for itself."""
    try:
        parts = urlsplit(url.strip())
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    host = host.rstrip(".")
    with contextlib.suppress(ValueError):
        return str(ipaddress.ip_address(host))
    labels = host.split(".")
    keep = 3 if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in _SECOND_LEVEL else 2
    return ".".join(labels[-keep:])


def host_class(page_url: str, feed_url: str) -> HostClass:
    """The metrics' bounded stand-in for the page's host: on the feed's own site or not."""
    page = site_of(page_url)
    if page is None:
        return "none"
    return "same_site" if page == site_of(feed_url) else "cross_site"


def feed_result(status: str) -> FeedResult:
    """An extraction status as the per-feed counter's result (see the module doc)."""
    if status == "ok":
        return "ok"
    return "skipped" if status in NOT_WANTED else "failed"


def host_policy(policy: PagePolicy | None, defaults: PageFetchSettings) -> HostPolicy | None:
    """The feed's pacing override as the fetcher's ``HostPolicy`` (unset parts: defaults)."""
    if policy is None or (policy.per_host is None and policy.min_spacing_s is None):
        return None
    return HostPolicy(
        per_host=policy.per_host if policy.per_host is not None else defaults.per_host,
        min_spacing_s=(
            policy.min_spacing_s if policy.min_spacing_s is not None else defaults.min_spacing_s
        ),
    )


@dataclass(frozen=True)
class Found:
    """What the stage learnt about one article's page."""

    body: str | None
    info: ExtractionInfo


def not_fetched(status: ExtractionStatus, reason: str) -> Found:
    return Found(None, ExtractionInfo(status=status, reason=reason))


def from_page(
    page: PageResult, ext: Extraction | None, fetched_at: datetime, max_body_chars: int
) -> Found:
    """The ``Found`` of a fetch (and, when the page came, its extraction)."""
    if page.status != "fetched" or ext is None:
        status: ExtractionStatus = "internal" if page.status == "fetched" else page.status
        reason = page.error or page.status
        if page.error_message:
            reason = f"{reason}: {page.error_message}"
        return Found(
            None,
            ExtractionInfo(
                status=status,
                reason=reason[:300],
                http_status=page.http_status,
                fetched_at=fetched_at,
                final_url=page.final_url,
            ),
        )
    body = ext.text if ext.status == "ok" and ext.text else None
    flags = list(ext.flags)
    if body is not None and len(body) > max_body_chars:
        body = body[:max_body_chars]
        if "truncated" not in flags:
            flags.append("truncated")
    published = ext.published_at
    if published is not None and published.tzinfo is None:
        published = published.replace(tzinfo=UTC)
    return Found(
        body,
        ExtractionInfo(
            status=ext.status,
            reason=ext.reason[:300] if ext.reason else None,
            method=ext.method or None,
            chars=len(body or ""),
            http_status=page.http_status,
            fetched_at=fetched_at,
            final_url=page.final_url,
            canonical_url=ext.canonical_url,
            page_language=ext.page_language,
            published_at=published,
            authors=tuple(a for a in ext.authors if a),
            image=ext.image,
            flags=tuple(flags),
        ),
    )


def extracted(raw: RawArticle, found: Found, stamp: StageStamp) -> ExtractedArticle:
    models = dict(raw.pipeline.models)
    if found.info.method:
        models["extractor"] = EXTRACTOR_VERSION
    return ExtractedArticle(
        schema_version=raw.schema_version,
        article_id=raw.article_id,
        source=raw.source,
        body=found.body,
        extraction=found.info,
        pipeline=PipelineInfo(stages=(*raw.pipeline.stages, stamp), models=models),
    )


class SeenCache:
    """Bounded LRU: (article_id, content_hash) -> what the page gave (see the module doc)."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._items: OrderedDict[str, tuple[str, Found]] = OrderedDict()

    def get(self, article_id: str, content_hash: str) -> Found | None:
        hit = self._items.get(article_id)
        if hit is None or hit[0] != content_hash:
            return None
        self._items.move_to_end(article_id)
        return hit[1]

    def put(self, article_id: str, content_hash: str, found: Found) -> None:
        if self.size <= 0:
            return
        self._items[article_id] = (content_hash, found)
        self._items.move_to_end(article_id)
        while len(self._items) > self.size:
            self._items.popitem(last=False)

    def __len__(self) -> int:
        return len(self._items)


# ---- the stage ----------------------------------------------------------------------------


class Extractor:
    """The stage's I/O side: one ``PageFetcher`` and one thread pool per worker."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.cfg = settings.extract
        self.cache = SeenCache(self.cfg.seen_cache_size)
        self.pages: PageFetcher | None = None
        self.pool: ThreadPoolExecutor | None = None
        self.watch: asyncio.Task[None] | None = None
        self.feeds_seen: set[str] = set()  # bounded by the feed list

    async def start(self) -> None:
        self.pool = ThreadPoolExecutor(self.cfg.extract_threads, thread_name_prefix="extract")
        self.pages = PageFetcher(self.settings.page_fetch)
        await self.pages.__aenter__()
        if self.watch is None or self.watch.done():
            self.watch = asyncio.ensure_future(self._watch_backoff())

    def note_backoff(self) -> None:
        if self.pages is not None:
            EXTRACT_HOSTS_BACKOFF.set(len(self.pages.hosts_in_backoff()))

    async def _watch_backoff(self) -> None:
        """Keeps the gauge current while the worker idles (a backoff ends without a batch)."""
        while True:
            self.note_backoff()
            await asyncio.sleep(BACKOFF_REFRESH_S)

    async def stop(self) -> None:
        if self.watch is not None:
            self.watch.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self.watch
            self.watch = None
        if self.pages is not None:
            await self.pages.close()
            self.pages = None
        if self.pool is not None:
            self.pool.shutdown(wait=False, cancel_futures=True)
            self.pool = None

    def count_feed(self, feed: str, result: FeedResult) -> None:
        if feed not in self.feeds_seen:
            # Every result of a feed exists from its first article on (at 0), so a ratio of
            # failures over a window has a numerator before the first failure.
            self.feeds_seen.add(feed)
            for each in ("ok", "failed", "skipped"):
                EXTRACT_FEED_PAGES.labels(feed, each)
        EXTRACT_FEED_PAGES.labels(feed, result).inc()

    async def page(self, raw: RawArticle) -> Found:
        """Fetch and extract one article's page; never raises (but ``CancelledError``)."""
        if self.pages is None or self.pool is None:
            await self.start()
        assert self.pages is not None
        src = raw.source
        fetched_at = datetime.now(UTC)
        page = await self.pages.fetch(
            src.url or "",  # decide() let only http(s) URLs through
            host_policy=host_policy(src.feed.page_policy, self.settings.page_fetch),
            deadline_s=self.cfg.page_deadline_s,
        )
        EXTRACT_FETCH_SECONDS.labels(host_class(src.url or "", src.feed.url)).observe(
            page.elapsed_s
        )
        ext: Extraction | None = None
        if page.ok and page.body is not None:
            started = time.monotonic()
            ext = await asyncio.get_running_loop().run_in_executor(
                self.pool, extract, page.body, page.final_url, page.headers
            )
            EXTRACT_TEXT_SECONDS.observe(time.monotonic() - started)
        return from_page(page, ext, fetched_at, self.cfg.max_body_chars)

    async def process(self, raws: Sequence[RawArticle]) -> list[Outcome]:
        """One outcome per raw article, in order; the batch's pages are fetched concurrently."""
        plans: list[Found | tuple[str, str]] = []
        jobs: dict[tuple[str, str], asyncio.Future[Found]] = {}
        for raw in raws:
            decided = decide(raw, self.cfg.auto_min_chars, self.cfg.fetch_pages)
            if decided is not None:
                plans.append(not_fetched(*decided))
                continue
            key = (raw.article_id, raw.source.content_hash or "")
            cached = self.cache.get(*key)
            if cached is not None:
                plans.append(cached)
                continue
            if key not in jobs:  # the same article twice in a batch: one fetch
                jobs[key] = asyncio.ensure_future(self.page(raw))
            plans.append(key)
        if jobs:
            await asyncio.gather(*jobs.values())
            for key, job in jobs.items():
                found = job.result()
                if found.info.status not in TRANSIENT:
                    self.cache.put(*key, found)
        self.note_backoff()
        stamp = StageStamp(stage=STAGE, at=datetime.now(UTC), version=VERSION)
        outcomes: list[Outcome] = []
        for raw, plan in zip(raws, plans, strict=True):
            found = jobs[plan].result() if isinstance(plan, tuple) else plan
            try:
                article = topics.fits(extracted(raw, found, stamp), "extracted")
            except (PoisonArticle, ValueError) as exc:
                outcomes.append(Poison(exc))
                continue
            status, src = found.info.status, raw.source
            EXTRACT_PAGES.labels(status, host_class(src.url or "", src.feed.url)).inc()
            self.count_feed(src.feed.feed_id, feed_result(status))
            outcomes.append(Forward(article, article.article_id.encode()))
        return outcomes


def declare(settings: Settings, health: Health | None = None) -> Stage:
    wiring = topics.STAGES[STAGE]
    cfg = settings.extract
    extractor = Extractor(settings)

    async def process(raws: list[RawArticle]) -> list[Outcome]:
        return await extractor.process(raws)

    return Stage(
        name=STAGE,
        input=(wiring["input"],),
        output=wiring["output"],
        dead_letter=wiring["dead_letter"],
        batch=BatchPolicy(cfg.batch_size, cfg.batch_idle_s, cfg.batch_within_s),
        decode=decode_raw,
        process=process,
        done="extracted",
        start=extractor.start,
        stop=extractor.stop,
    )
