"""The connector's runtime: poll due feeds concurrently, produce, save state after Kafka acks.

``Connector.run_once`` polls every due feed (or every feed) once and returns a summary;
``Connector.run_forever`` keeps a schedule (a heap of next-poll times) until stopped, and
re-reads the feed list when its file changes. Each poll is fetch -> ``digest_fetch`` -> producer.

Delivery never holds up polling. A poll's records are handed to the producer and the poll is
*held* (its records kept) until Kafka acknowledged every one of them; the commit step, which
never waits on Kafka, saves the state of held polls once they are acknowledged, a feed's polls
strictly in order (the state of a later poll builds on the earlier one's seen ids, ETag and
cursor). While Kafka is unreachable the feeds are still polled on schedule, each poll building
on the last one (so an item is produced once, not once per poll). The producer retries held
records itself through an outage; records it gives up on (after
``connector.delivery_timeout_s``) make the poller replace the kafka-python producer (one whose
batches expired sent nothing more) and re-send them from what is held, with backoff, until
acknowledged; so are records the producer refused. Nothing unacknowledged is ever saved, so
a crash meanwhile repeats those polls at the next start (at-least-once; the index write is
idempotent). Memory is bounded: at ``connector.max_held_records`` records held, due polls
are deferred (``newsflow_feed_polls_total{result="deferred"}``, one log line) until Kafka
confirms again.
/health/ready names Kafka while records stay unconfirmed longer than ``UNCONFIRMED_S``.

Time: intervals run on the monotonic clock (``monotonic``), so a wall clock stepped forward or
back changes no feed's wait; next-poll times persisted by a clock that was ahead are re-based
on load (``schedule.due_in``).
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import math
import os
import random
import time
from collections import Counter, deque
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from connectors import metrics
from connectors.feed_state import FeedState, FeedStateStore
from connectors.feeds import FeedList, FeedListError, FeedSpec, load_feed_list
from connectors.producer import ArticleProducer
from connectors.records import WireRecord
from connectors.recovery import read_tail
from connectors.rss.digest import (
    Digest,
    body_hash,
    policy_for,
    reconcile,
    request_validators,
)
from connectors.rss.parse_job import digest_job, exit_with_parent, parser_context
from connectors.rss.schedule import HEALTH_ORDER, SchedulePolicy, due_in, health
from streams.net.fetch import Fetcher
from streams.net.types import FetchLimits, FetchResult
from streams.ops import Health
from streams.schema.models import RawArticle
from streams.settings import ConnectorSettings, Settings

log = logging.getLogger("newsflow.connector")

DELIVERY_RETRY_S = 30.0
RESEND_MIN_S = 1.0  # first re-send of refused/failed records; doubles up to RESEND_MAX_S
RESEND_MAX_S = 30.0
UNCONFIRMED_S = 10.0  # a record unconfirmed this long: /health/ready says Kafka is the problem
DEFER_S = 2.0  # a poll deferred because too many records are held is looked at again after this
RESET_RETRY_S = 5.0  # next try to replace the producer when Kafka was still away
STOP_FLUSH_S = 15.0
# End of a --once run: how long Kafka may take to confirm the rest (as the old 120 s flush);
# what it did not confirm by then is a delivery failure (exit 3), polled again next run.
ONCE_DRAIN_S = 120.0  # on stop: how long to wait for held records to be confirmed


@dataclass(slots=True)
class HeldPoll:
    """One poll whose records Kafka has not confirmed yet (its state is not saved before)."""

    digest: Digest
    feed: FeedSpec
    records: list[WireRecord]
    futures: list[Any]  # per record: the producer's future, None = not accepted by the producer
    gens: list[int]  # per record: the producer generation it was sent with
    since: float  # monotonic time of the first send
    resend_at: float = 0.0  # monotonic: failed records are not re-sent before this
    attempts: int = 1
    error: str | None = None


@dataclass(slots=True)
class Summary:
    feeds_total: int = 0
    polled: int = 0
    results: Counter[str] = field(default_factory=Counter)  # new/no_new/not_modified/...
    errors: Counter[str] = field(default_factory=Counter)  # error class -> feeds
    articles: Counter[str] = field(default_factory=Counter)  # new / updated / trimmed
    dropped: Counter[str] = field(default_factory=Counter)
    delivery_failures: int = 0
    resent: int = 0  # records re-sent after Kafka failed or refused them
    deferred: int = 0  # polls deferred because too many records were held
    held_max: int = 0  # the most records held unconfirmed at once
    failing_feeds: dict[str, str] = field(default_factory=dict)  # feed id -> last error
    bytes: int = 0
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "feeds_total": self.feeds_total,
            "polled": self.polled,
            "results": dict(self.results),
            "errors": dict(self.errors),
            "articles": dict(self.articles),
            "dropped": dict(self.dropped),
            "delivery_failures": self.delivery_failures,
            "resent": self.resent,
            "deferred": self.deferred,
            "held_max": self.held_max,
            "failing_feeds": self.failing_feeds,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
        }


Progress = Callable[[int, int, Summary], None]


def needs_parse(state: FeedState, fetched: FetchResult) -> bool:
    return fetched.status == "ok" and body_hash(fetched.body or b"") != state.body_hash


def count_digest(digest: Digest, feed_id: str) -> None:
    """The Prometheus counters of one delivered poll: result, articles, drops, cut fields."""
    metrics.FEED_POLLS.labels(feed_id, digest.result, digest.error or "").inc()
    if digest.new:
        metrics.ARTICLES.labels("connector", "new").inc(digest.new)
    if digest.updated:
        metrics.ARTICLES.labels("connector", "updated").inc(digest.updated)
    for reason, n in digest.dropped.items():
        metrics.FEED_DROPPED.labels(reason).inc(n)
    for what, n in digest.truncated.items():
        metrics.FEED_TRUNCATED.labels(what).inc(n)


def schedule_policy(conf: ConnectorSettings) -> SchedulePolicy:
    return SchedulePolicy(
        min_interval_s=conf.min_interval_s,
        max_interval_s=conf.max_interval_s,
        dead_after_s=conf.dead_after_s,
    )


def fetch_limits(conf: ConnectorSettings) -> FetchLimits:
    return FetchLimits(
        connect_timeout_s=conf.connect_timeout_s,
        read_timeout_s=conf.read_timeout_s,
        total_timeout_s=conf.total_timeout_s,
        max_compressed_bytes=conf.max_compressed_bytes,
        max_body_bytes=conf.max_body_bytes,
        max_redirects=conf.max_redirects,
        retry_after_cap_s=conf.retry_after_cap_s,
    )


class Connector:
    def __init__(
        self,
        conf: ConnectorSettings,
        feeds: FeedList,
        store: FeedStateStore,
        producer: ArticleProducer,
        *,
        feeds_path: Path | None = None,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        select: Callable[[FeedList], FeedList] | None = None,
    ) -> None:
        # ``select``: the part of a (re)loaded list this connector polls (its replica's feeds,
        # connectors/sharding.py); the others are neither polled nor given a state here.
        self.select = select
        if select is not None:
            feeds = select(feeds)
        self.conf = conf
        self.feeds = feeds
        self.feeds_path = feeds_path
        self.store = store
        self.producer = producer
        self.clock = clock  # wall clock: what is persisted and shown (next_poll_at, ...)
        self.monotonic = monotonic  # what intervals run on
        self.rng = rng or random.Random()
        self.policy = schedule_policy(conf)
        stored = store.load_all()
        self.states: dict[str, FeedState] = {
            f.id: reconcile(stored.get(f.id), f) for f in feeds.feeds
        }
        # Monotonic time each feed is due; a feed's polls not yet confirmed by Kafka, in order.
        self._due: dict[str, float] = {}
        self._held: dict[str, deque[HeldPoll]] = {}
        self.held_records = 0
        self._deferring = False
        self._resetting: asyncio.Future[None] | None = None
        self._reset_at = 0.0
        self._confirmed_at = 0.0  # monotonic time a held poll was last confirmed
        self._schedule_all()
        self._pool: ProcessPoolExecutor | None = None
        self._parse_thread: ThreadPoolExecutor | None = None
        self._workers = 0
        # No input topic, so never "stalled"; ready = Kafka confirms what we send.
        self.health = Health("connector", stall_after_s=math.inf)
        self._checkpoint: dict[int, int] = {}
        self._busy: set[str] = set()
        self.summary = Summary(feeds_total=sum(1 for f in feeds.feeds if f.enabled))
        for feed in feeds.feeds:
            self._publish_health(feed.id)

    # ---- one poll ---------------------------------------------------------------------------

    async def _poll(self, fetcher: Fetcher, feed: FeedSpec) -> None:
        state = self.states[feed.id]
        sent = request_validators(state, self.conf.unconditional_every)
        try:
            fetched = await fetcher.fetch(
                state.url, sent, allow_private=self.feeds.allow_private_addresses
            )
            now, mono = self.clock(), self.monotonic()
            args = (
                feed,
                state,
                fetched,
                sent,
                now,
                policy_for(feed, self.policy),
                self.producer.limit,
                self.rng.getrandbits(32),
            )
            executor = self._pool or self._parse_thread
            if executor is not None and needs_parse(state, fetched):
                # Parsing is the CPU-heavy part (feedparser is pure Python): done in worker
                # processes so fetching, producing and parsing use more than one core. Without
                # them it still runs off the event loop: a loop blocked by back-to-back parses
                # on a busy machine let fetches that were waiting on it hit their connect
                # timeout (dozens of 200 feeds failed in the benchmark).
                loop = asyncio.get_running_loop()
                digest, records = await loop.run_in_executor(executor, digest_job, *args)
            else:
                digest, records = digest_job(*args)
        except Exception as exc:  # noqa: BLE001 - one feed's failure must not stop the others
            if isinstance(exc, BrokenProcessPool) and self._pool is not None:
                # A parser process died (killed, out of memory): replace the pool, or every
                # later parse would fail the same way. This feed is retried like the others.
                log.error("a parser process died; starting a new pool")
                broken, self._pool = self._pool, self._new_pool()
                broken.shutdown(wait=False, cancel_futures=True)
            # A bug or a dead parser: the state is kept, so the poll repeats and nothing it
            # found is lost.
            log.error("poll of %s failed: %s: %s; retrying later", feed.id, type(exc).__name__, exc)
            self.states[feed.id].next_poll_at = self.clock() + DELIVERY_RETRY_S
            self._due[feed.id] = self.monotonic() + DELIVERY_RETRY_S
            self._busy.discard(feed.id)
            self.summary.errors[f"internal_{type(exc).__name__}"] += 1
            self.summary.failing_feeds[feed.id] = f"{type(exc).__name__}: {exc}"
            metrics.FEED_POLLS.labels(feed.id, "error", "internal").inc()
            return
        for record in records:
            if record.trimmed:
                self.summary.articles["trimmed"] += 1
                log.warning(
                    "trimmed %s from %s to fit the record size limit", record.article_id, feed.id
                )
        held = HeldPoll(
            digest, feed, list(records), [None] * len(records), [0] * len(records), mono
        )
        self._send(held)
        self._held.setdefault(feed.id, deque()).append(held)
        self._count_held(len(records))
        # The next poll builds on this one (its seen ids, validators) even before Kafka
        # confirmed it, so an item is produced once; the saved state waits for the acks.
        self.states[feed.id] = digest.state
        self._due[feed.id] = mono + max(0.0, digest.state.next_poll_at - now)
        self._busy.discard(feed.id)
        metrics.FEED_FETCH_SECONDS.labels(digest.result).observe(digest.elapsed_s)
        if digest.bytes_compressed:
            metrics.FEED_FETCH_BYTES.labels(feed.id).inc(digest.bytes_compressed)

    def _send(self, held: HeldPoll) -> int:
        """Hand the records of ``held`` that Kafka does not have to the producer (never
        accepted, failed, or left with a producer ``reset`` replaced); returns how many were
        re-sends. Stops at the first refusal: a producer that cannot take one record (no
        metadata, closed) would block the loop on each."""
        resent = 0
        current = self.producer.generation
        for i, future in enumerate(held.futures):
            if future is not None and not self._lost(future, held.gens[i], current):
                continue
            try:
                held.futures[i], held.gens[i] = self.producer.send_held(held.records[i])
            except Exception as exc:  # noqa: BLE001 - KafkaTimeoutError, closed producer, ...
                held.futures[i] = None
                held.error = f"{type(exc).__name__}: {exc}"
                break
            if future is not None:
                resent += 1
        return resent

    @staticmethod
    def _lost(future: Any, generation: int, current: int) -> bool:
        """Whether a sent record must be sent again: it failed, or its producer was replaced
        before it was acknowledged."""
        if future.is_done:
            return bool(future.failed())
        return generation < current

    def _count_held(self, delta: int) -> None:
        self.held_records += delta
        self.summary.held_max = max(self.summary.held_max, self.held_records)
        metrics.RECORDS_HELD.set(self.held_records)

    def _settled(self, held: HeldPoll, mono: float, resend: bool) -> bool:
        """Whether every record of ``held`` is confirmed; re-sends lost ones when due."""
        current = self.producer.generation
        refused = failed = 0
        waiting = False
        for future, generation in zip(held.futures, held.gens, strict=True):
            if future is None:
                refused += 1
            elif not future.is_done:
                waiting = waiting or generation == current
                refused += generation < current
            elif future.failed():
                failed += generation == current
                refused += generation < current
                held.error = f"{type(future.exception).__name__}: {future.exception}"
        if failed and resend:
            # The producer gave up on a record (delivery timeout, or an error it does not
            # retry): replace it before sending again, a resend to it would stay unanswered.
            self._reset_producer(mono)
        if not (refused or failed):
            return not waiting
        if resend and refused and mono >= held.resend_at:
            resent = self._send(held)
            self.summary.resent += resent
            metrics.RETRIES.labels("connector", "kafka_delivery").inc(resent)
            held.resend_at = mono + min(RESEND_MAX_S, RESEND_MIN_S * 2 ** (held.attempts - 1))
            held.attempts += 1
        return False

    def _reset_producer(self, mono: float) -> None:
        if self._resetting is not None or mono < self._reset_at:
            return
        self._reset_at = mono + RESET_RETRY_S
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        generation = self.producer.generation
        log.warning("kafka gave up on records: replacing the producer (generation %d)", generation)
        self._resetting = loop.run_in_executor(None, self.producer.reset)

        def done(task: asyncio.Future[None]) -> None:
            self._resetting = None
            if task.exception() is not None:
                log.error(
                    "kafka producer not replaced (%s); trying again in %.0fs",
                    task.exception(),
                    RESET_RETRY_S,
                )
            else:
                self._reset_at = 0.0
                log.info("kafka producer replaced; re-sending what the old one held")

        self._resetting.add_done_callback(done)

    @contextlib.contextmanager
    def _parsers(self) -> Iterator[None]:
        workers = self.conf.parse_workers
        if workers < 0:
            workers = len(os.sched_getaffinity(0))
        if workers == 0:
            self._parse_thread = ThreadPoolExecutor(1, thread_name_prefix="newsflow-parse")
            try:
                yield
            finally:
                thread, self._parse_thread = self._parse_thread, None
                thread.shutdown(wait=True, cancel_futures=True)
            return
        self._workers = workers
        self._pool = self._new_pool()
        try:
            yield
        finally:
            pool, self._pool = self._pool, None
            if pool is not None:
                pool.shutdown(wait=True, cancel_futures=True)

    def _new_pool(self) -> ProcessPoolExecutor:
        # forkserver, not fork: the Kafka producer's and aiohttp's threads already run here.
        # Not spawn either: a spawned worker imports feedparser, pydantic and the contract on
        # its own (~1.3 s CPU each, paid again for every pool); the fork server imports them
        # once, single-threaded, and forks every worker from there.
        # Workers start on the first submit, so runs that parse nothing never pay for them.
        return ProcessPoolExecutor(
            self._workers, mp_context=parser_context(), initializer=exit_with_parent
        )

    # ---- commit: Kafka acks first, then state -----------------------------------------------

    async def commit(self, *, flush_s: float | None = None, resend: bool = True) -> None:
        """Save the state of held polls Kafka has confirmed; re-send what it failed. Never
        waits on Kafka unless ``flush_s`` is given (end of a run: wait that long at most)."""
        if flush_s is not None and self.held_records:
            with contextlib.suppress(Exception):  # KafkaTimeoutError: what is left stays held
                await asyncio.get_running_loop().run_in_executor(None, self.producer.flush, flush_s)
        mono = self.monotonic()
        done: list[HeldPoll] = []
        failing: list[HeldPoll] = []
        for feed_id in list(self._held):
            queue = self._held[feed_id]
            while queue:
                if not self._settled(queue[0], mono, resend):
                    if queue[0].error is not None:
                        failing.append(queue[0])
                    break
                done.append(queue.popleft())
            if not queue:
                del self._held[feed_id]
        to_save: list[FeedState] = []
        for held in done:
            self._count_held(-len(held.records))
            to_save.append(held.digest.state)
            self._account(held.digest, held.feed)
            for future in held.futures:
                meta = future.value
                nxt = meta.offset + 1
                if nxt > self._checkpoint.get(meta.partition, -1):
                    self._checkpoint[meta.partition] = nxt
        self._kafka_health(mono, failing, confirmed=any(h.records for h in done))
        if to_save:
            self.store.save(to_save, self.producer.topic, self._checkpoint)
            self.health.progress()

    def _kafka_health(self, mono: float, failing: list[HeldPoll], confirmed: bool) -> None:
        if confirmed:
            self._confirmed_at = mono
        oldest = min((q[0].since for q in self._held.values() if q), default=None)
        age = 0.0 if oldest is None else mono - oldest
        # Under load records wait their turn, but polls keep being confirmed: only a backlog
        # that has not moved for UNCONFIRMED_S means Kafka is the problem.
        stuck = age >= UNCONFIRMED_S and mono - self._confirmed_at >= UNCONFIRMED_S
        if failing or stuck:
            error = next((h.error for h in failing if h.error), None) or "no answer"
            problem = (
                f"{self.held_records} record(s) of {len(self._held)} feed(s) not confirmed "
                f"for {age:.0f}s ({error}); polling goes on, they are kept until confirmed"
            )
            if "kafka" not in self.health.problems:
                log.error("kafka: %s", problem)
            self.health.dependency("kafka", problem)
        elif "kafka" in self.health.problems and (confirmed or not self._held):
            log.info("kafka confirms records again; %d record(s) held", self.held_records)
            self.health.dependency("kafka", None)

    async def drain(self, timeout_s: float) -> None:
        """End of a run: wait up to ``timeout_s`` for Kafka to confirm what is held, save what
        it confirmed; the rest is not saved, so the next run polls those feeds again."""
        await self.commit(flush_s=timeout_s, resend=False)
        if not self._held:
            return
        polls = sum(len(q) for q in self._held.values())
        self.summary.delivery_failures += polls
        for queue in self._held.values():
            self.summary.failing_feeds[queue[0].feed.id] = f"kafka_delivery: {queue[0].error}"
            metrics.FEED_POLLS.labels(queue[0].feed.id, "error", "kafka_delivery").inc()
        log.error(
            "kafka did not confirm %d record(s) of %d poll(s) of %d feed(s): %s; their state is "
            "not saved, the next run polls them again",
            self.held_records,
            polls,
            len(self._held),
            next((q[0].error for q in self._held.values() if q[0].error), "no answer"),
        )
        self._held.clear()
        self._count_held(-self.held_records)

    def _schedule_all(self) -> None:
        """Due times of every feed from its persisted state (re-based if written by a clock
        that was ahead of ours: see ``schedule.due_in``)."""
        now, mono = self.clock(), self.monotonic()
        self._due = {
            f.id: self._due.get(f.id, mono + due_in(self.states[f.id], now, self.policy))
            for f in self.feeds.feeds
        }

    def recover(self, settings: Settings) -> int:
        """Take back into the seen sets what a previous run delivered after its last save."""
        topic = self.producer.topic

        def remember(feed_id: str, article: RawArticle) -> None:
            state = self.states.get(feed_id)
            if state is None:
                return
            first_seen = article.source.first_seen_at.timestamp()
            state.remember(
                {article.article_id: (article.source.content_hash or "", first_seen)}, None
            )
            recovered.add(feed_id)

        recovered: set[str] = set()
        count, ends = read_tail(settings, topic, self.store.load_checkpoint(topic), remember)
        self._checkpoint = dict(ends)
        self.store.save([self.states[f] for f in recovered], topic, ends)
        if count:
            log.info(
                "recovered %d record(s) of %d feed(s) delivered after the last save",
                count,
                len(recovered),
            )
        return count

    def _account(self, digest: Digest, feed: FeedSpec) -> None:
        s = self.summary
        s.polled += 1
        s.results[digest.result] += 1
        s.bytes += digest.bytes_compressed
        s.articles["new"] += digest.new
        s.articles["updated"] += digest.updated
        s.dropped.update(digest.dropped)
        if digest.result == "error":
            s.errors[digest.error or "error"] += 1
            s.failing_feeds[feed.id] = digest.state.last_error or ""
            log.warning("poll %s failed: %s", feed.id, digest.state.last_error)
        else:
            s.failing_feeds.pop(feed.id, None)
        count_digest(digest, feed.id)
        for warning in digest.warnings:
            log.info("feed %s: %s", feed.id, warning)
        self._publish_health(feed.id)

    def _publish_health(self, feed_id: str) -> None:
        st = self.states.get(feed_id)
        if st is None:
            return
        status = health(st, self.clock(), self.policy)
        for name in HEALTH_ORDER:
            metrics.FEED_STATUS.labels(feed_id, name).set(1 if name == status else 0)
        metrics.FEED_FAILURES.labels(feed_id).set(st.consecutive_failures)
        if st.last_success_at:
            metrics.FEED_LAST_SUCCESS.labels(feed_id).set(st.last_success_at)
        if st.last_new_item_at:
            metrics.FEED_LAST_NEW_ITEM.labels(feed_id).set(st.last_new_item_at)
        if st.mean_new_gap_s:
            metrics.FEED_MEAN_GAP.labels(feed_id).set(st.mean_new_gap_s)

    # ---- run modes ----------------------------------------------------------------------------

    def _fetcher(self) -> Fetcher:
        return Fetcher(
            user_agent=self.conf.user_agent,
            limits=fetch_limits(self.conf),
            concurrency=self.conf.concurrency,
            per_host=self.conf.per_host,
        )

    async def run_once(
        self, *, every_feed: bool = False, progress: Progress | None = None
    ) -> Summary:
        """Poll each due (or, with ``every_feed``, each enabled) feed once; flush; commit."""
        started = time.monotonic()
        mono = self.monotonic()
        todo = [
            f
            for f in self.feeds.feeds
            if f.enabled and (every_feed or self._due.get(f.id, 0.0) <= mono)
        ]
        done = 0

        def tick() -> None:
            if progress:
                progress(done, len(todo), self.summary)

        # Bounded fan-out: tasks are created as slots free up, so 10,000 feeds never mean
        # 10,000 coroutines holding bodies at once.
        slots = asyncio.Semaphore(max(1, self.conf.concurrency * 2))
        last_commit = time.monotonic()
        with self._parsers():
            async with self._fetcher() as fetcher:

                async def one(feed: FeedSpec) -> None:
                    nonlocal done
                    try:
                        await self._poll(fetcher, feed)
                    finally:
                        done += 1
                        slots.release()

                async def commit_now_and_then() -> None:
                    nonlocal last_commit
                    if time.monotonic() - last_commit >= self.conf.commit_interval_s:
                        await self.commit()
                        last_commit = time.monotonic()
                        tick()

                tasks = []
                for feed in todo:
                    await slots.acquire()
                    tasks.append(asyncio.create_task(one(feed)))
                    await commit_now_and_then()
                for task in asyncio.as_completed(tasks):
                    await task
                    await commit_now_and_then()
        await self.drain(min(self.conf.delivery_timeout_s, ONCE_DRAIN_S))
        self.summary.seconds = time.monotonic() - started
        tick()
        return self.summary

    def _reload_feeds(self) -> None:
        if self.feeds_path is None:
            return
        try:
            feeds = load_feed_list(self.feeds_path)
        except FeedListError as exc:
            log.error("feed list changed but cannot be used, keeping the old one: %s", exc)
            return
        if self.select is not None:
            feeds = self.select(feeds)
        self.feeds = feeds
        self.states = {f.id: reconcile(self.states.get(f.id), f) for f in feeds.feeds}
        self._schedule_all()
        self.summary.feeds_total = sum(1 for f in feeds.feeds if f.enabled)
        log.info("feed list reloaded: %d feeds", len(feeds.feeds))

    async def run_forever(self, stop: asyncio.Event, progress: Progress | None = None) -> Summary:
        started = time.monotonic()
        running: set[asyncio.Task[None]] = set()
        with self._parsers():
            await self._forever(stop, running, progress)
        await self.drain(STOP_FLUSH_S)
        self.summary.seconds = time.monotonic() - started
        return self.summary

    async def _forever(
        self, stop: asyncio.Event, running: set[asyncio.Task[None]], progress: Progress | None
    ) -> None:
        mtime = self._feeds_mtime()
        async with self._fetcher() as fetcher:
            while not stop.is_set():
                now = self.monotonic()
                current = self._feeds_mtime()
                if current != mtime:
                    mtime = current
                    self._reload_feeds()
                heap = [
                    (self._due.get(f.id, 0.0), f.id)
                    for f in self.feeds.feeds
                    if f.enabled and f.id not in self._busy
                ]
                heapq.heapify(heap)
                by_id = {f.id: f for f in self.feeds.feeds}
                full = self._backlog_full()
                while heap and heap[0][0] <= now and len(running) < self.conf.concurrency * 2:
                    _, feed_id = heapq.heappop(heap)
                    if full:
                        # Kafka is not confirming and enough is held: this poll waits (its
                        # items stay at the publisher) instead of adding to what is held.
                        self._due[feed_id] = now + DEFER_S
                        self.summary.deferred += 1
                        metrics.FEED_POLLS.labels(feed_id, "deferred", "kafka_backlog").inc()
                        continue
                    self._busy.add(feed_id)
                    task = asyncio.create_task(self._poll(fetcher, by_id[feed_id]))
                    running.add(task)
                    task.add_done_callback(running.discard)
                await self.commit()
                if progress:
                    progress(self.summary.polled, self.summary.feeds_total, self.summary)
                wake = heap[0][0] - self.monotonic() if heap else self.conf.commit_interval_s
                wait = min(max(wake, 0.05), self.conf.commit_interval_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _backlog_full(self) -> bool:
        full = self.held_records >= self.conf.max_held_records
        if full != self._deferring:
            self._deferring = full
            if full:
                log.error(
                    "%d records held unconfirmed by Kafka (connector.max_held_records %d): "
                    "polls are deferred until Kafka confirms them",
                    self.held_records,
                    self.conf.max_held_records,
                )
            else:
                log.info("%d records held: polling resumes", self.held_records)
        return full

    def _feeds_mtime(self) -> float | None:
        if self.feeds_path is None:
            return None
        try:
            return self.feeds_path.stat().st_mtime
        except OSError:
            return None
