"""The connector's schedule when the wall clock jumps (issue 16.3): injected clocks.

Intervals run on the monotonic clock, so a wall clock stepped forward or back by hours changes
no feed's wait; next-poll times persisted by a clock that was ahead (ours stepped back since)
are re-based on load instead of making feeds wait hours. The poller is driven with a fetcher
that answers from memory and a producer that is never called (a 304 or a 429 produces
nothing): what is checked is only when each feed is due.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from connectors.feed_state import FeedState
from connectors.feeds import FeedList, FeedSpec
from connectors.rss.poller import Connector
from connectors.rss.schedule import SchedulePolicy, due_in, longest_delay
from streams.net.types import FetchResult, Validators
from streams.settings import ConnectorSettings

HOURS = 3600.0
NOW = 1_796_000_000.0  # wall clock at the start of each test
POLICY = SchedulePolicy(min_interval_s=300, max_interval_s=3600)


class Clock:
    def __init__(self, start: float) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


class MemoryStore:
    def __init__(self, states: Iterable[FeedState] = ()) -> None:
        self.states = {s.feed_id: s for s in states}

    def load_all(self) -> dict[str, FeedState]:
        return {k: v.copy() for k, v in self.states.items()}

    def save(
        self,
        states: Iterable[FeedState],
        topic: str = "",
        checkpoint: Mapping[int, int] | None = None,
    ) -> None:
        for s in states:
            self.states[s.feed_id] = s.copy()

    def load_checkpoint(self, topic: str) -> dict[int, int]:
        return {}

    def close(self) -> None:
        pass


class NoKafka:
    """The producer attributes a poll reads; sending would be a test error."""

    limit = 1_000_000
    topic = "raw"
    generation = 0

    def send_record(self, record: Any) -> Any:
        raise AssertionError("nothing should be produced")


class Answers:
    """A fetcher answering each URL with a fixed result (304 unless told otherwise)."""

    def __init__(self, results: dict[str, FetchResult] | None = None) -> None:
        self.results = results or {}
        self.calls: list[str] = []

    async def fetch(self, url: str, sent: Validators, allow_private: bool = False) -> FetchResult:
        self.calls.append(url)
        return self.results.get(
            url, FetchResult(status="not_modified", url=url, http_status=304, validators=sent)
        )


def connector(store: MemoryStore, wall: Clock, mono: Clock, feeds: int = 3) -> Connector:
    flist = FeedList(
        feeds=tuple(FeedSpec(id=f"f{i}", url=f"https://f{i}.example/rss") for i in range(feeds))
    )
    conf = ConnectorSettings(min_interval_s=300, max_interval_s=3600)
    return Connector(conf, flist, store, NoKafka(), clock=wall, monotonic=mono)  # type: ignore[arg-type]


def poll(c: Connector, fetcher: Answers, feed_id: str) -> None:
    feed = next(f for f in c.feeds.feeds if f.id == feed_id)

    async def go() -> None:
        await c._poll(fetcher, feed)  # type: ignore[arg-type]
        await c.commit()

    asyncio.run(go())


def due_after(c: Connector, mono: Clock) -> dict[str, float]:
    return {k: round(v - mono.t, 3) for k, v in c._due.items()}


# ------------------------------------------------------------------ pure: due_in on load


def test_due_in_rebases_a_next_poll_written_by_a_clock_that_was_ahead() -> None:
    # Polled when the clock read 5 h later than now (it was stepped back 5 h since): the
    # schedule planned 600 s, so the feed is due in 600 s, not in 5 h 10 min.
    ahead = FeedState("a", "u", last_poll_at=NOW + 5 * HOURS, next_poll_at=NOW + 5 * HOURS + 600)
    assert due_in(ahead, NOW, POLICY) == 600
    # The same with a Retry-After of 30 min honoured on a 429.
    throttled = FeedState(
        "b",
        "u",
        last_poll_at=NOW + 5 * HOURS,
        next_poll_at=NOW + 5 * HOURS + 1800,
        last_result="error",
        consecutive_failures=1,
    )
    assert due_in(throttled, NOW, POLICY) == 1800


def test_due_in_caps_far_future_times_and_keeps_ordinary_ones() -> None:
    # No last poll to re-base on (or a corrupt value): never longer than any rule can set.
    far = FeedState("a", "u", next_poll_at=NOW + 30 * 86400)
    assert due_in(far, NOW, POLICY) == longest_delay(far, POLICY) == 86400
    assert due_in(FeedState("b", "u", last_poll_at=NOW - 100, next_poll_at=NOW + 500), NOW, POLICY)
    assert (
        due_in(FeedState("c", "u", last_poll_at=NOW - 100, next_poll_at=NOW + 500), NOW, POLICY)
        == 500
    )
    assert due_in(FeedState("d", "u", next_poll_at=NOW - 5 * HOURS), NOW, POLICY) == 0  # overdue
    assert due_in(FeedState("e", "u"), NOW, POLICY) == 0  # never polled
    # skipHours can legitimately push a poll further: the cap allows a week more then.
    skipping = FeedState("f", "u", next_poll_at=NOW + 3 * 86400, skip_days=[5, 6])
    assert due_in(skipping, NOW, POLICY) == 3 * 86400


def test_persisted_far_future_next_poll_times_are_capped_when_the_connector_loads_them() -> None:
    wall, mono = Clock(NOW), Clock(50.0)
    store = MemoryStore(
        [
            # written by a clock 6 h ahead: planned 900 s
            FeedState(
                "f0",
                "https://f0.example/rss",
                list_url="https://f0.example/rss",
                last_poll_at=NOW + 6 * HOURS,
                next_poll_at=NOW + 6 * HOURS + 900,
                polls=4,
            ),
            # a next-poll time 40 days out with no last poll: capped at the longest rule (1 day)
            FeedState(
                "f1",
                "https://f1.example/rss",
                "https://f1.example/rss",
                next_poll_at=NOW + 40 * 86400,
                polls=4,
            ),
            FeedState(
                "f2",
                "https://f2.example/rss",
                list_url="https://f2.example/rss",
                last_poll_at=NOW - 60,
                next_poll_at=NOW + 240,
                polls=4,
            ),
        ]
    )
    c = connector(store, wall, mono)
    assert due_after(c, mono) == {"f0": 900, "f1": 86400, "f2": 240}


# ------------------------------------------------------------------ the poller under a jump


def test_wall_clock_jumps_do_not_move_any_feed_due_time() -> None:
    wall, mono = Clock(NOW), Clock(1000.0)
    c = connector(MemoryStore(), wall, mono)
    fetcher = Answers()
    for feed in ("f0", "f1", "f2"):
        poll(c, fetcher, feed)
    before = due_after(c, mono)
    assert all(270 <= d <= 1320 for d in before.values()), before  # interval +-10 % jitter

    wall.t -= 5 * HOURS  # stepped back 5 h (NTP correction, VM restore, manual set)
    assert due_after(c, mono) == before
    mono.t += min(before.values()) + 1  # that much real time passes
    first = min(before, key=before.__getitem__)
    due_now = [f for f, t in c._due.items() if t <= mono.t]
    assert due_now == [first]  # due on time, not 5 h later

    wall.t += 10 * HOURS  # stepped forward 10 h: nothing becomes due early ...
    assert [f for f, t in c._due.items() if t <= mono.t] == [first]
    poll(c, fetcher, first)  # ... and a poll sets the next wait from the interval, not 0
    assert due_after(c, mono)[first] >= 270
    assert len(fetcher.calls) == 4


def test_retry_after_counts_from_the_poll_not_from_a_clock_that_moved() -> None:
    wall, mono = Clock(NOW), Clock(0.0)
    url = "https://f0.example/rss"
    throttled = FetchResult(
        status="error", url=url, http_status=429, error="http_429", retry_after_s=1800.0
    )
    c = connector(MemoryStore(), wall, mono, feeds=1)
    poll(c, Answers({url: throttled}), "f0")
    assert 1800 <= due_after(c, mono)["f0"] <= 1801
    wall.t -= 5 * HOURS
    assert 1800 <= due_after(c, mono)["f0"] <= 1801  # not 5 h 30 min
    # Restart with the stepped-back clock: the persisted time (written 5 h "ahead") is
    # re-based on the poll that set it, so the feed still waits 30 min, not 5 h 30 min.
    again = connector(c.store, Clock(wall.t), Clock(77.0), feeds=1)  # type: ignore[arg-type]
    assert 1799 <= again._due["f0"] - 77.0 <= 1801
    # A clock stepped forward 5 h before the restart: the feed is due at once, one poll,
    # then its backoff again (no tight loop).
    later = connector(c.store, Clock(NOW + 5 * HOURS), Clock(5.0), feeds=1)  # type: ignore[arg-type]
    assert later._due["f0"] == 5.0
    poll(later, Answers({url: throttled}), "f0")
    assert later._due["f0"] - 5.0 >= 1800


def test_an_http_date_retry_after_counts_from_the_servers_date_not_our_clock() -> None:
    from datetime import UTC, datetime, timedelta
    from email.utils import format_datetime

    from streams.net.headers import parse_retry_after

    server_now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    value = format_datetime(server_now + timedelta(minutes=10), usegmt=True)
    date = format_datetime(server_now, usegmt=True)
    for ours in (server_now - timedelta(hours=5), server_now + timedelta(hours=5)):
        # Our clock 5 h behind (stepped back) would read 5 h 10 min; 5 h ahead would read 0.
        assert parse_retry_after(value, cap_s=6 * HOURS, now=ours) in (0.0, 5 * HOURS + 600)
        assert parse_retry_after(value, cap_s=6 * HOURS, date=date) == 600
    assert parse_retry_after("120", cap_s=6 * HOURS, date=date) == 120  # seconds: no clock
    assert parse_retry_after(value, cap_s=6 * HOURS, date="garbage") is not None  # falls back
