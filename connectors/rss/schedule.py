"""When to poll a feed next, and how healthy it is: pure functions over ``FeedState``.

The poller calls these after every poll. Intervals adapt to how often a feed really publishes
(the share of new items per poll), within the feed's bounds, never more often than the
publisher asks (``<ttl>``, ``sy:updatePeriod``, ``Cache-Control: max-age``), and never inside
``<skipHours>``/``<skipDays>``. Failing feeds back off exponentially with jitter and honour
``Retry-After``; a feed failing for days is marked dead and polled rarely, but kept.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

from connectors.feed_state import FeedState

FeedHealth = Literal["pending", "ok", "not-modified", "failing", "stale", "dead"]
HEALTH_ORDER: tuple[FeedHealth, ...] = ("dead", "failing", "stale", "not-modified", "ok", "pending")


@dataclass(frozen=True, slots=True)
class SchedulePolicy:
    min_interval_s: float = 300.0
    max_interval_s: float = 3600.0
    failure_base_s: float = 60.0
    failure_cap_s: float = 6 * 3600.0
    dead_after_s: float = 3 * 86400.0
    dead_poll_s: float = 86400.0
    stale_min_s: float = 2 * 86400.0  # never call a feed stale sooner than this
    stale_factor: float = 4.0  # ... or sooner than this many usual gaps between new items
    jitter: float = 0.1  # +-10 % so feeds added together do not poll in lockstep forever


def initial_interval(policy: SchedulePolicy) -> float:
    # Start in the fast half: a new feed should show its rhythm quickly.
    return min(policy.max_interval_s, max(policy.min_interval_s, policy.min_interval_s * 2))


def adapt_interval(
    previous: float | None,
    *,
    new_items: int,
    body_items: int,
    publisher_min_s: float | None,
    policy: SchedulePolicy,
) -> float:
    """The next interval after a successful poll.

    Most items new means we poll too rarely and may miss some: halve. A few new: shrink a
    little. Nothing new: grow by a quarter. The publisher's own minimum is respected, but our
    maximum wins over it (a feed that says ``ttl`` one week is still checked within bounds).
    """
    interval = previous or initial_interval(policy)
    if new_items > 0:
        share = new_items / max(1, body_items)
        interval *= 0.5 if share >= 0.5 else 0.75 if share >= 0.2 else 0.9
    else:
        interval *= 1.25
    floor = policy.min_interval_s
    if publisher_min_s:
        floor = max(floor, min(publisher_min_s, policy.max_interval_s))
    return max(floor, min(policy.max_interval_s, interval))


def failure_delay(
    failures: int, retry_after_s: float | None, policy: SchedulePolicy, rng: random.Random
) -> float:
    """Exponential backoff with jitter after ``failures`` consecutive failures (>= 1)."""
    base = policy.failure_base_s * 2 ** min(max(0, failures - 1), 20)
    delay = min(policy.failure_cap_s, base) * rng.uniform(0.5, 1.0)  # "equal jitter"
    if retry_after_s is not None:
        delay = max(delay, retry_after_s)
    return float(delay)


def jittered(interval: float, policy: SchedulePolicy, rng: random.Random) -> float:
    return interval * rng.uniform(1 - policy.jitter, 1 + policy.jitter)


def skip_forward(at: float, skip_hours: frozenset[int], skip_days: frozenset[int]) -> float:
    """The first moment at or after ``at`` (epoch seconds) outside skipHours/skipDays (UTC)."""
    if not skip_hours and not skip_days:
        return at
    if len(skip_hours) >= 24 or len(skip_days) >= 7:
        return at  # a feed that skips every hour or day is misconfigured: ignore it
    t = at
    for _ in range(24 * 8):
        moment = datetime.fromtimestamp(t, UTC)
        if moment.hour not in skip_hours and moment.weekday() not in skip_days:
            return t
        t = moment.replace(minute=0, second=0, microsecond=0).timestamp() + 3600
    return at


CLOCK_SLACK_S = 60.0  # a last poll this far "in the future" means the clock went back since


def longest_delay(state: FeedState, policy: SchedulePolicy) -> float:
    """The longest wait any schedule rule can set for ``state`` (skipHours/skipDays add up
    to a week)."""
    longest = max(policy.max_interval_s, policy.failure_cap_s, policy.dead_poll_s)
    if state.skip_hours or state.skip_days:
        longest += 7 * 86400.0
    return longest


def due_in(state: FeedState, now: float, policy: SchedulePolicy) -> float:
    """Seconds from ``now`` (wall clock) until the feed is due, from its persisted state.

    ``next_poll_at`` was set by the wall clock of an earlier poll. If that clock was ahead of
    ours (ours was stepped back since, or the state comes from a host whose clock ran fast),
    ``next_poll_at - now`` is the planned delay plus the jump: hours. Then the delay the
    schedule planned (``next_poll_at - last_poll_at``) counts from now instead. Whatever the
    cause, a wait is never longer than any rule can set (``longest_delay``). A clock stepped
    forward makes every feed due at once: one poll each, then their usual intervals (the
    poller's intervals run on the monotonic clock).
    """
    wait = state.next_poll_at - now
    if wait <= 0:
        return 0.0
    last = state.last_poll_at
    if last is not None and last > now + CLOCK_SLACK_S:
        wait = state.next_poll_at - last
    return min(max(0.0, wait), longest_delay(state, policy))


def health(state: FeedState | None, now: float, policy: SchedulePolicy) -> FeedHealth:
    if state is None or state.polls == 0:
        return "pending"
    if state.consecutive_failures > 0:
        since = state.failing_since or now
        return "dead" if now - since >= policy.dead_after_s else "failing"
    if stale(state, now, policy):
        return "stale"
    if state.last_result in ("not_modified", "unchanged_body"):
        return "not-modified"
    return "ok"


def stale(state: FeedState, now: float, policy: SchedulePolicy) -> bool:
    """No new item for much longer than this feed's usual rhythm (and at least stale_min_s)."""
    threshold = policy.stale_min_s
    if state.mean_new_gap_s:
        threshold = max(threshold, policy.stale_factor * state.mean_new_gap_s)
    reference = state.last_new_item_at or state.first_polled_at
    return reference is not None and now - reference > threshold
