"""Per-host politeness for page fetches: how many at once, how far apart, and backoff after
429/503. Foundation layer (``streams/net``), used by ``streams.net.pages.PageFetcher``.

Each host (``host_key``: the host name, plus ``:port`` when not the scheme's default) has its
own state: a count of fetches in flight with its own FIFO of waiters, the earliest time the next
fetch may start, and a backoff deadline. Nothing is shared between hosts except the dictionary
that holds them, so a slow, hanging or throttling host only ever delays its own callers.

- Concurrency: at most ``Pace.per_host`` holders per host; the limit is read on every entry, so
  a per-call override (a feed's own policy) takes effect at once.
- Spacing: starts are reserved one after another, ``min_spacing_s`` apart (start to start),
  while the caller holds its concurrency slot.
- Backoff: ``note_throttled`` after a 429/503 sets the host's backoff to Retry-After (capped),
  or without one to ``initial_s`` doubling per consecutive throttle (capped); ``note_ok``
  resets the doubling. An entry waits out a backoff that ends before its deadline and is
  refused (``FetchFailure("backoff")``) when it does not; an entry whose reserved start lies
  past its deadline is refused at once (``timeout``) instead of sleeping into certain failure.

The decisions are pure functions of (state, now) so they are unit-tested without a clock.
Idle host states are swept once a minute; hosts still in backoff are kept.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Final, Literal

from yarl import URL

from streams.net.decoding import FetchFailure

__all__ = [
    "HostPacer",
    "HostState",
    "Pace",
    "admission",
    "host_key",
    "reserve_start",
    "throttle_backoff_s",
]

_SWEEP_EVERY_S: Final = 60.0


def host_key(url: URL) -> str:
    """The politeness key of a URL: ``example.org``, ``example.org:8080`` or ``[::1]:8080``
    (http and https of one host share it, as they share the machine)."""
    host = (url.host or "").lower()
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    if url.port is None or url.is_default_port():
        return host
    return f"{host}:{url.port}"


@dataclass(frozen=True, slots=True)
class Pace:
    per_host: int = 2
    min_spacing_s: float = 1.0


@dataclass(slots=True)
class HostState:
    limit: int = 2
    in_flight: int = 0
    waiters: deque[asyncio.Future[None]] = field(default_factory=deque)
    next_start: float = 0.0  # earliest loop time the next fetch may start
    backoff_until: float = 0.0
    strikes: int = 0  # consecutive 429/503 answers

    def idle(self, now: float) -> bool:
        return (
            self.in_flight == 0
            and not self.waiters
            and self.next_start <= now
            and self.backoff_until <= now
        )


def reserve_start(state: HostState, now: float, spacing_s: float) -> float:
    """Reserve the next start time of this host (``now`` or later) and push the following one
    ``spacing_s`` further."""
    start = max(now, state.next_start)
    state.next_start = start + spacing_s
    return start


def throttle_backoff_s(
    strikes: int, retry_after_s: float | None, *, initial_s: float, cap_s: float
) -> float:
    """How long a host is left alone after its ``strikes``-th consecutive 429/503."""
    if retry_after_s is not None:
        return min(max(retry_after_s, 0.0), cap_s)
    return min(initial_s * 2.0 ** max(strikes - 1, 0), cap_s)


def admission(
    backoff_until: float, now: float, deadline_at: float
) -> Literal["go", "wait", "refuse"]:
    """Whether an entry may go now, should wait out the host's backoff, or cannot make it."""
    if backoff_until <= now:
        return "go"
    return "wait" if backoff_until <= deadline_at else "refuse"


class HostPacer:
    """The per-host states and the async gate (``hold``) built on the rules above."""

    def __init__(self) -> None:
        self._hosts: dict[str, HostState] = {}
        self._last_sweep = 0.0

    def _state(self, key: str) -> HostState:
        state = self._hosts.get(key)
        if state is None:
            state = self._hosts[key] = HostState()
        return state

    @asynccontextmanager
    async def hold(self, key: str, pace: Pace, deadline_at: float) -> AsyncIterator[None]:
        """Enter when ``key`` has a free slot, is out of backoff and its spacing allows; leave
        when the request is done. Raises ``FetchFailure`` (``backoff`` or ``timeout``) when
        the deadline cannot be met."""
        loop = asyncio.get_running_loop()
        self._sweep(loop.time())
        state = self._state(key)
        state.limit = pace.per_host
        self._wake(state)  # a raised limit (per-call override) lets waiters in at once
        await self._acquire(state)
        try:
            now = loop.time()
            verdict = admission(state.backoff_until, now, deadline_at)
            if verdict == "refuse":
                raise FetchFailure(
                    "backoff",
                    f"{key} is backing off for {state.backoff_until - now:.1f}s more, "
                    f"beyond this fetch's deadline",
                )
            if verdict == "wait":
                await asyncio.sleep(state.backoff_until - now)
                now = loop.time()
            if max(now, state.next_start) > deadline_at:
                raise FetchFailure("timeout", f"{key}'s queue reaches past this fetch's deadline")
            start = reserve_start(state, now, pace.min_spacing_s)
            if start > now:
                await asyncio.sleep(start - now)
            yield
        finally:
            self._release(state)

    async def _acquire(self, state: HostState) -> None:
        # FIFO: a newcomer queues behind waiters even when a slot looks free.
        if state.in_flight < state.limit and not state.waiters:
            state.in_flight += 1
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        state.waiters.append(fut)
        try:
            await fut  # _wake hands the slot over: in_flight already counts us
        except BaseException:
            if fut.done() and not fut.cancelled():
                self._release(state)  # handed a slot but leaving: pass it on
            elif fut in state.waiters:
                state.waiters.remove(fut)
            raise

    def _release(self, state: HostState) -> None:
        state.in_flight -= 1
        self._wake(state)

    @staticmethod
    def _wake(state: HostState) -> None:
        while state.waiters and state.in_flight < state.limit:
            fut = state.waiters.popleft()
            if not fut.done():
                state.in_flight += 1
                fut.set_result(None)

    def note_throttled(
        self, key: str, retry_after_s: float | None, *, initial_s: float, cap_s: float
    ) -> float:
        """A 429/503 from ``key``: start (or extend) its backoff; returns the seconds."""
        state = self._state(key)
        state.strikes += 1
        seconds = throttle_backoff_s(state.strikes, retry_after_s, initial_s=initial_s, cap_s=cap_s)
        now = asyncio.get_running_loop().time()
        state.backoff_until = max(state.backoff_until, now + seconds)
        return seconds

    def note_ok(self, key: str) -> None:
        state = self._hosts.get(key)
        if state is not None:
            state.strikes = 0

    def backoff_left(self, key: str, now: float) -> float:
        state = self._hosts.get(key)
        return 0.0 if state is None else max(state.backoff_until - now, 0.0)

    def in_backoff(self, now: float) -> dict[str, float]:
        """Hosts backing off now -> seconds left."""
        return {
            key: state.backoff_until - now
            for key, state in self._hosts.items()
            if state.backoff_until > now
        }

    def __len__(self) -> int:
        return len(self._hosts)

    def _sweep(self, now: float) -> None:
        if now - self._last_sweep < _SWEEP_EVERY_S:
            return
        self._last_sweep = now
        for key in [k for k, s in self._hosts.items() if s.idle(now) and s.strikes == 0]:
            del self._hosts[key]
