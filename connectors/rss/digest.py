"""Digest one fetch into articles to produce and the feed's next state (pure, no I/O).

Sits between ``fetch`` and the producer: decides whether the body needs parsing at all (304,
or a body whose hash did not change although the validators said it did), which items are new
or changed (content hash against the feed's bounded seen set, never GUID or date alone), whether
the feed's validators can be trusted, and when to poll next. The caller saves the returned
state only after Kafka confirmed the returned articles.
"""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Literal

from connectors.feed_state import FeedState
from connectors.feeds import FeedSpec
from connectors.rss import identity
from connectors.rss.parse import parse_feed
from connectors.rss.schedule import (
    SchedulePolicy,
    adapt_interval,
    failure_delay,
    jittered,
    skip_forward,
)
from connectors.rss.types import Item, ParseLimits
from streams.net.types import FetchResult, Validators
from streams.schema.models import (
    FeedRef,
    PagePolicy,
    PipelineInfo,
    RawArticle,
    Source,
    StageStamp,
)
from streams.version import VERSION

PollResult = Literal["new", "no_new", "not_modified", "unchanged_body", "error"]
STRIKES_TO_DISTRUST = 2
DEFAULT_LIMITS = ParseLimits()


@dataclass(slots=True)
class Digest:
    feed_id: str
    result: PollResult
    state: FeedState  # to save once ``articles`` are delivered
    articles: list[RawArticle] = field(default_factory=list)
    new: int = 0
    updated: int = 0
    error: str | None = None  # error class when result == "error"
    error_message: str | None = None
    dropped: Counter[str] = field(default_factory=Counter)
    # field -> articles produced with that field cut to its cap (source.truncated is set)
    truncated: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)
    bytes_compressed: int = 0
    elapsed_s: float = 0.0


def new_state(feed: FeedSpec) -> FeedState:
    return FeedState(feed_id=feed.id, url=feed.url, list_url=feed.url)


def reconcile(state: FeedState | None, feed: FeedSpec) -> FeedState:
    """The stored state, reset where the feed list changed the URL (the seen set is kept)."""
    if state is None:
        return new_state(feed)
    if state.list_url != feed.url:
        state = state.copy()
        state.url = state.list_url = feed.url
        state.etag = state.last_modified = state.body_hash = None
        state.trust_validators, state.validator_strikes = True, 0
        state.next_poll_at = 0.0
    return state


def policy_for(feed: FeedSpec, base: SchedulePolicy) -> SchedulePolicy:
    lo = feed.min_interval_s or base.min_interval_s
    hi = feed.max_interval_s or base.max_interval_s
    return SchedulePolicy(
        min_interval_s=min(lo, hi),
        max_interval_s=max(lo, hi),
        failure_base_s=base.failure_base_s,
        failure_cap_s=base.failure_cap_s,
        dead_after_s=base.dead_after_s,
        dead_poll_s=base.dead_poll_s,
        stale_min_s=base.stale_min_s,
        stale_factor=base.stale_factor,
        jitter=base.jitter,
    )


def request_validators(state: FeedState, unconditional_every: int) -> Validators | None:
    """Validators to send, or None for an unconditional GET (distrusted, or a periodic check)."""
    if not state.trust_validators or not (state.etag or state.last_modified):
        return None
    if state.polls_since_unconditional + 1 >= unconditional_every:
        return None
    return Validators(state.etag, state.last_modified)


def body_hash(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()[:32]


def _fail(
    digest: Digest,
    fetch_error: str,
    message: str | None,
    now: float,
    policy: SchedulePolicy,
    retry_after_s: float | None,
    rng: random.Random,
) -> Digest:
    st = digest.state
    st.consecutive_failures += 1
    st.failing_since = st.failing_since or now
    st.last_result = "error"
    st.last_error = f"{fetch_error}: {message}" if message else fetch_error
    if now - st.failing_since >= policy.dead_after_s:
        delay = policy.dead_poll_s  # dead but kept: look once a day whether it came back
    else:
        delay = failure_delay(st.consecutive_failures, retry_after_s, policy, rng)
    st.next_poll_at = now + delay
    digest.result, digest.error, digest.error_message = "error", fetch_error, message
    return digest


def feed_ref(feed: FeedSpec, state: FeedState) -> FeedRef:
    return FeedRef(
        feed_id=feed.id,
        url=state.url,
        name=feed.name,
        country=feed.country,
        tags=feed.tags,
        full_text=feed.full_text,
        page_policy=(
            PagePolicy(per_host=feed.page_per_host, min_spacing_s=feed.page_min_spacing_s)
            if feed.page_per_host is not None or feed.page_min_spacing_s is not None
            else None
        ),
    )


def connector_stamp(fetched_at: datetime) -> PipelineInfo:
    return PipelineInfo(stages=(StageStamp(stage="connector", at=fetched_at, version=VERSION),))


def to_raw_article(
    item: Item,
    feed: FeedSpec,
    state: FeedState,
    fetched_at: datetime,
    first_seen: float,
    *,
    ref: FeedRef | None = None,
    pipeline: PipelineInfo | None = None,
) -> RawArticle:
    """The contract record of one item. ``ref`` and ``pipeline`` are the same for every item
    of one fetch: ``digest_fetch`` builds them once (frozen models, safely shared) instead of
    validating three more models per article."""
    return RawArticle(
        article_id=item.article_id,
        source=Source(
            feed=ref or feed_ref(feed, state),
            url=item.url or None,  # a GUID without a link: null, not ""
            guid=item.guid,
            title=item.title,
            summary=item.summary,
            content=item.content,
            authors=item.authors,
            categories=item.categories,
            published_at=item.published_at,
            published_at_note=item.published_at_note,
            # The operator's declaration in the feed list beats the feed's own (often a CMS
            # default such as en-us); the item's language is the fallback.
            language_hint=feed.language or item.language,
            fetched_at=fetched_at,
            first_seen_at=datetime.fromtimestamp(first_seen, UTC),
            content_hash=item.content_hash,
            enclosures=item.enclosures,
            truncated=bool(item.truncated),
        ),
        pipeline=pipeline or connector_stamp(fetched_at),
    )


def digest_fetch(
    feed: FeedSpec,
    state: FeedState,
    fetched: FetchResult,
    *,
    sent: Validators | None,
    now: float,
    policy: SchedulePolicy,
    limits: ParseLimits = DEFAULT_LIMITS,
    rng: random.Random | None = None,
) -> Digest:
    """What one fetch means for the feed: articles to produce and the next state."""
    rng = rng or random.Random()
    st = state.copy()
    st.polls += 1
    st.last_poll_at = now
    st.first_polled_at = st.first_polled_at or now
    st.last_http_status = fetched.http_status
    digest = Digest(
        feed_id=feed.id,
        result="error",
        state=st,
        bytes_compressed=fetched.bytes_compressed,
        elapsed_s=fetched.elapsed_s,
    )
    if fetched.permanent_url:
        st.url = fetched.permanent_url  # remembered: next polls skip the redirect
    if fetched.status == "error":
        return _fail(
            digest,
            fetched.error or "error",
            fetched.error_message,
            now,
            policy,
            fetched.retry_after_s,
            rng,
        )

    new_items = body_items = 0
    if fetched.status == "not_modified":
        digest.result = "not_modified"
        st.polls_since_unconditional += 1
    else:
        body = fetched.body or b""
        digest_hash = body_hash(body)
        unconditional = sent is None
        st.polls_since_unconditional = 0 if unconditional else st.polls_since_unconditional + 1
        same_validator = (fetched.validators.etag and fetched.validators.etag == state.etag) or (
            fetched.validators.last_modified
            and fetched.validators.last_modified == state.last_modified
        )
        if same_validator and state.body_hash and digest_hash != state.body_hash:
            # The same ETag/Last-Modified for a different body: conditional GETs would
            # have been answered 304 and we would have missed this change.
            st.trust_validators = False
            digest.warnings.append("validators unchanged while the body changed: distrusted")
        if digest_hash == state.body_hash:
            digest.result = "unchanged_body"
        else:
            fetched_at = datetime.fromtimestamp(now, UTC)
            parsed = parse_feed(
                body,
                base_url=fetched.url,
                now=fetched_at,
                content_type=fetched.content_type,
                limits=limits,
                language=feed.language,
            )
            digest.dropped, digest.warnings = parsed.dropped, digest.warnings + parsed.warnings
            if parsed.error and not parsed.items:
                return _fail(digest, parsed.error, None, now, policy, None, rng)
            body_items = len(parsed.items)
            remembered: dict[str, tuple[str, float]] = {}
            ref, pipeline = feed_ref(feed, st), connector_stamp(fetched_at)
            for item in parsed.items:
                # The id the feed already produced this item with, if it had another one.
                item = identity.sticky(item, parsed.alt_keys.get(item.article_id), st.seen_entry)
                seen = st.seen_entry(item.article_id)
                if seen is not None and seen[0] == item.content_hash[:16]:
                    remembered[item.article_id] = seen
                    continue
                # Millisecond resolution: end-to-end latency is measured from it.
                first_seen = seen[1] if seen is not None else round(now, 3)
                if seen is None:
                    digest.new += 1
                else:
                    digest.updated += 1
                digest.truncated.update(item.truncated)
                digest.articles.append(
                    to_raw_article(
                        item, feed, st, fetched_at, first_seen, ref=ref, pipeline=pipeline
                    )
                )
                remembered[item.article_id] = (item.content_hash, first_seen)
            st.remember(remembered, body_items)
            st.produced += len(digest.articles)
            new_items = digest.new
            if unconditional and state.last_result == "not_modified" and digest.new:
                # A 304 just before, and now items we never saw: validators may be lying
                # (or the feed changed in between); two such catches and we stop trusting.
                st.validator_strikes += 1
                if st.validator_strikes >= STRIKES_TO_DISTRUST:
                    st.trust_validators = False
                    digest.warnings.append("304 answers hid new items twice: distrusted")
            st.body_hash = digest_hash
            digest.result = "new" if digest.articles else "no_new"
            meta = parsed.meta
            hints = [h for h in (meta.ttl_s, meta.update_period_s) if h]
            st.publisher_min_s = float(max(hints)) if hints else None
            st.skip_hours, st.skip_days = sorted(meta.skip_hours), sorted(meta.skip_days)
        st.etag = fetched.validators.etag
        st.last_modified = fetched.validators.last_modified

    st.consecutive_failures = 0
    st.failing_since = None
    st.last_success_at = now
    st.last_result = digest.result
    if new_items:
        if st.last_new_item_at is not None:
            gap = now - st.last_new_item_at
            st.mean_new_gap_s = (
                gap if st.mean_new_gap_s is None else 0.7 * st.mean_new_gap_s + 0.3 * gap
            )
        st.last_new_item_at = now
    publisher_min = max(st.publisher_min_s or 0.0, float(fetched.cache_max_age_s or 0)) or None
    st.interval_s = adapt_interval(
        st.interval_s,
        new_items=new_items,
        body_items=body_items,
        publisher_min_s=publisher_min,
        policy=policy,
    )
    st.next_poll_at = skip_forward(
        now + jittered(st.interval_s, policy, rng),
        frozenset(st.skip_hours),
        frozenset(st.skip_days),
    )
    return digest
