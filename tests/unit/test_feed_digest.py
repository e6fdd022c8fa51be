"""What one fetch means for a feed (pure): new/updated articles, trust, schedule, failures."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from connectors.feeds import FeedSpec
from connectors.rss.digest import digest_fetch, new_state, reconcile, request_validators
from connectors.rss.schedule import SchedulePolicy
from streams.net.types import FetchResult, Validators

FEED = FeedSpec(id="f", url="https://news.example/feed.xml", language="ar", tags=("world",))
POLICY = SchedulePolicy(min_interval_s=60, max_interval_s=3600, failure_base_s=60)
NOW = datetime(2026, 11, 29, 12, tzinfo=UTC).timestamp()


def body(*items: tuple[int, str], extra: str = "") -> bytes:
    entries = "".join(
        f"<item><title>Title {n}</title><link>https://news.example/a/{n}</link>"
        f"<description>{text}</description>"
        f"<pubDate>Sat, 28 Nov 2026 10:00:00 +0000</pubDate></item>"
        for n, text in items
    )
    return (
        f"<?xml version='1.0'?><rss version='2.0'><channel><title>T</title>{extra}"
        f"{entries}</channel></rss>"
    ).encode()


def ok(data: bytes, etag: str | None = '"v1"', **kw: object) -> FetchResult:
    return FetchResult(
        status="ok",
        url=FEED.url,
        http_status=200,
        body=data,
        validators=Validators(etag=etag),
        **kw,  # type: ignore[arg-type]
    )


def step(state, fetched, sent=None, now=NOW):  # type: ignore[no-untyped-def]
    return digest_fetch(
        FEED, state, fetched, sent=sent, now=now, policy=POLICY, rng=random.Random(1)
    )


def test_first_poll_emits_every_item_with_provenance() -> None:
    d = step(new_state(FEED), ok(body((1, "a"), (2, "b"))))
    assert d.result == "new" and d.new == 2 and d.updated == 0
    a = d.articles[0]
    assert a.source.feed.feed_id == "f" and a.source.feed.tags == ("world",)
    assert a.source.language_hint == "ar"  # the list's declaration
    assert a.source.first_seen_at == datetime.fromtimestamp(int(NOW), UTC)
    assert d.state.etag == '"v1"' and d.state.body_hash and d.state.produced == 2
    assert d.state.last_new_item_at == NOW and d.state.consecutive_failures == 0
    assert NOW + 0.8 * 60 <= d.state.next_poll_at <= NOW + 3600


def test_same_body_is_not_parsed_again_and_304_is_not_modified() -> None:
    first = step(new_state(FEED), ok(body((1, "a"))))
    same = step(first.state, ok(body((1, "a")), etag='"v2"'), now=NOW + 100)
    assert same.result == "unchanged_body" and same.articles == []
    assert same.state.etag == '"v2"'  # new validators, same body: keep the new ones
    nm = step(
        same.state,
        FetchResult(
            status="not_modified", url=FEED.url, http_status=304, validators=Validators(etag='"v2"')
        ),
        sent=Validators(etag='"v2"'),
        now=NOW + 200,
    )
    assert nm.result == "not_modified" and nm.state.polls == 3


def test_changed_item_is_an_update_with_its_first_seen_at() -> None:
    first = step(new_state(FEED), ok(body((1, "a"), (2, "b"))))
    later = NOW + 40 * 86400  # next month: the update must still go to the first month's index
    second = step(first.state, ok(body((1, "a"), (2, "b corrected"), (3, "c"))), now=later)
    assert (second.new, second.updated) == (1, 1)
    by_url = {a.source.url: a for a in second.articles}
    assert by_url["https://news.example/a/2"].source.first_seen_at == datetime.fromtimestamp(
        int(NOW), UTC
    )
    assert by_url["https://news.example/a/3"].source.first_seen_at == datetime.fromtimestamp(
        int(later), UTC
    )


def test_same_validator_for_a_different_body_stops_trusting_validators() -> None:
    first = step(new_state(FEED), ok(body((1, "a"))))
    assert request_validators(first.state, 12) == Validators(etag='"v1"')
    lied = step(first.state, ok(body((1, "a"), (2, "b"))), now=NOW + 100)
    assert lied.new == 1 and lied.state.trust_validators is False
    assert request_validators(lied.state, 12) is None
    assert any("distrusted" in w for w in lied.warnings)


def test_304s_that_hide_new_items_twice_stop_trust() -> None:
    state = step(new_state(FEED), ok(body((1, "a")))).state
    n = 1
    for strike in (1, 2):
        state.last_result = "not_modified"  # the conditional poll before said "no change"
        n += 1
        items = tuple((k, "x") for k in range(1, n + 1))
        state = step(state, ok(body(*items), etag=f'"v{n}"'), now=NOW + n).state
        assert state.validator_strikes == strike
    assert state.trust_validators is False


def test_every_nth_poll_is_unconditional() -> None:
    state = step(new_state(FEED), ok(body((1, "a")))).state
    sent = []
    for _ in range(6):
        v = request_validators(state, 3)
        sent.append(v is not None)
        state = (
            step(
                state,
                FetchResult(
                    status="not_modified",
                    url=FEED.url,
                    http_status=304,
                    validators=Validators(etag='"v1"'),
                ),
                sent=v,
            ).state
            if v
            else step(state, ok(body((1, "a"))), sent=None).state
        )
    assert sent == [True, True, False, True, True, False]  # every third is unconditional


def test_failures_back_off_then_the_feed_is_dead_but_kept() -> None:
    state = step(new_state(FEED), ok(body((1, "a")))).state
    err = FetchResult(
        status="error",
        url=FEED.url,
        http_status=503,
        error="http_503",
        error_message="Service Unavailable",
        retry_after_s=900.0,
    )
    d = step(state, err, now=NOW + 10)
    assert d.result == "error" and d.state.consecutive_failures == 1
    assert d.state.next_poll_at >= NOW + 10 + 900  # Retry-After honoured
    assert d.state.body_hash == state.body_hash and d.state.seen == state.seen  # nothing lost
    later = step(d.state, err, now=NOW + 4 * 86400)
    assert later.state.next_poll_at == NOW + 4 * 86400 + POLICY.dead_poll_s


def test_html_instead_of_a_feed_is_a_failure_and_not_remembered() -> None:
    state = step(new_state(FEED), ok(body((1, "a")))).state
    html = b"<!doctype html><html><head><title>Oops</title></head><body>moved</body></html>"
    d = step(state, ok(html, etag='"h"'), now=NOW + 60)
    assert d.result == "error" and d.error == "not_a_feed"
    assert d.state.body_hash == state.body_hash  # so the same HTML is judged again next time


def test_permanent_redirect_and_publisher_hints_are_remembered() -> None:
    extra = (
        "<ttl>120</ttl><skipHours><hour>0</hour><hour>1</hour></skipHours>"
        "<skipDays><day>Sunday</day></skipDays>"
    )
    moved = ok(body((1, "a"), extra=extra), permanent_url="https://news.example/new.xml")
    d = step(new_state(FEED), moved)
    assert d.state.url == "https://news.example/new.xml"
    assert d.state.publisher_min_s == 7200
    assert d.state.interval_s == 3600  # ttl of 2 h is above our max of 1 h: our max wins
    assert d.state.skip_hours == [0, 1] and d.state.skip_days == [6]
    when = datetime.fromtimestamp(d.state.next_poll_at, UTC)
    assert when.hour not in (0, 1) and when.weekday() != 6
    # Editing the URL in the feed list resets what belonged to the old URL, keeps the seen set.
    edited = reconcile(d.state, FEED.model_copy(update={"url": "https://other.example/f.xml"}))
    assert edited.url == "https://other.example/f.xml" and edited.etag is None
    assert edited.seen == d.state.seen
