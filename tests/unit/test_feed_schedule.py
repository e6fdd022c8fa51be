"""Poll scheduling and feed health (pure functions) and the durable feed state store."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.feed_state import SEEN_MAX, SEEN_MIN, FeedState, SqliteFeedStateStore
from connectors.rss.schedule import (
    SchedulePolicy,
    adapt_interval,
    failure_delay,
    health,
    skip_forward,
)

POLICY = SchedulePolicy(min_interval_s=60, max_interval_s=3600)


def test_interval_shrinks_with_the_share_of_new_items_and_grows_when_quiet() -> None:
    kw = {"publisher_min_s": None, "policy": POLICY}
    assert adapt_interval(1000, new_items=10, body_items=10, **kw) == 500  # all new: halve
    assert adapt_interval(1000, new_items=3, body_items=10, **kw) == 750
    assert adapt_interval(1000, new_items=1, body_items=50, **kw) == 900
    assert adapt_interval(1000, new_items=0, body_items=50, **kw) == 1250
    assert adapt_interval(70, new_items=10, body_items=10, **kw) == 60  # min bound
    assert adapt_interval(3500, new_items=0, body_items=10, **kw) == 3600  # max bound


def test_publisher_minimum_is_honoured_but_capped_by_our_maximum() -> None:
    kw = {"new_items": 10, "body_items": 10, "policy": POLICY}
    assert adapt_interval(1000, publisher_min_s=900, **kw) == 900  # ttl 15 min: not sooner
    assert adapt_interval(1000, publisher_min_s=7 * 86400, **kw) == 3600  # ttl a week: our max


def test_interval_converges_to_the_feeds_rhythm() -> None:
    # A feed publishing one item every 600 s, 20 items in the body: the share of new items
    # per poll tells the poller how far off it is; it must settle within bounds, not run away.
    interval = 3600.0
    for _ in range(40):
        new = max(0, min(20, round(interval / 600)))
        interval = adapt_interval(
            interval, new_items=new, body_items=20, publisher_min_s=None, policy=POLICY
        )
    assert 300 <= interval <= 2400


def test_failures_back_off_exponentially_with_jitter_and_honour_retry_after() -> None:
    rng = random.Random(7)
    delays = [failure_delay(n, None, POLICY, rng) for n in range(1, 12)]
    assert 30 <= delays[0] <= 60
    assert 240 <= delays[3] <= 480  # 60 * 2**3 with equal jitter
    assert max(delays) <= POLICY.failure_cap_s
    assert failure_delay(1, 5000, POLICY, rng) == 5000


def test_skip_hours_and_days_move_the_next_poll_out_of_the_window() -> None:
    monday_0130 = datetime(2026, 11, 30, 1, 30, tzinfo=UTC).timestamp()
    out = skip_forward(monday_0130, frozenset({0, 1, 2}), frozenset())
    assert datetime.fromtimestamp(out, UTC) == datetime(2026, 11, 30, 3, 0, tzinfo=UTC)
    out = skip_forward(monday_0130, frozenset(), frozenset({0, 1}))  # skip Mon+Tue
    assert datetime.fromtimestamp(out, UTC) == datetime(2026, 12, 2, 0, 0, tzinfo=UTC)
    assert skip_forward(monday_0130, frozenset(range(24)), frozenset()) == monday_0130


@pytest.mark.parametrize(
    ("changes", "expected"),
    [
        ({"polls": 0}, "pending"),
        ({"last_result": "new", "last_new_item_at": 9_000}, "ok"),
        ({"last_result": "not_modified", "last_new_item_at": 9_000}, "not-modified"),
        ({"last_result": "unchanged_body", "last_new_item_at": 9_000}, "not-modified"),
        ({"consecutive_failures": 2, "failing_since": 9_000}, "failing"),
        ({"consecutive_failures": 9, "failing_since": 10_000 - 4 * 86400}, "dead"),
        ({"last_result": "no_new", "last_new_item_at": 10_000 - 3 * 86400}, "stale"),
        # a feed that usually publishes weekly is not stale after three days
        (
            {
                "last_result": "no_new",
                "last_new_item_at": 10_000 - 3 * 86400,
                "mean_new_gap_s": 7 * 86400,
            },
            "ok",
        ),
    ],
)
def test_health(changes: dict[str, object], expected: str) -> None:
    state = FeedState(feed_id="f", url="https://a.example/", polls=3, first_polled_at=1.0)
    for key, value in changes.items():
        setattr(state, key, value)
    assert health(state, 10_000, POLICY) == expected


def test_seen_set_is_bounded_and_keeps_the_newest() -> None:
    state = FeedState(feed_id="f", url="u")
    key = "{:016x}{:016x}".format
    for n in range(3000):
        state.remember({key(n, 0): (key(0, n), n)}, body_items=10)
    assert len(state.seen) == SEEN_MIN
    assert state.seen_entry(key(2999, 0)) == (key(0, 2999)[:16], 2999)
    assert state.seen_entry(key(0, 0)) is None
    state.remember({key(n, 1): ("h", n) for n in range(5000)}, body_items=5000)
    assert len(state.seen) == SEEN_MAX


def test_sqlite_store_round_trips_and_saves_atomically(tmp_path: Path) -> None:
    path = tmp_path / "state" / "feeds.sqlite"
    store = SqliteFeedStateStore(path)
    a = FeedState(feed_id="a", url="https://a.example/", etag='"x"', skip_hours=[1, 2])
    a.remember({"f" * 32: ("e" * 32, 1_700_000_000)}, body_items=1)
    store.save([a, FeedState(feed_id="b", url="https://b.example/")])
    a.polls = 5
    store.save([a])
    store.close()
    again = SqliteFeedStateStore(path).load_all()
    assert set(again) == {"a", "b"}
    assert again["a"] == a
    assert again["a"].seen_entry("f" * 32) == ("e" * 16, 1_700_000_000)
