"""The connector's runtime: poll due feeds concurrently, produce, save state after Kafka acks.

``Connector.run_once`` polls every due feed (or every feed) once and returns a summary;
``Connector.run_forever`` keeps a schedule (a heap of next-poll times) until stopped, and
re-reads the feed list when its file changes. Each poll is fetch -> ``digest_fetch`` -> producer;
a commit step flushes the producer and saves the state of exactly those polls whose records
Kafka acknowledged. A poll whose delivery failed keeps its old state and is retried soon, so
its articles are produced again (at-least-once; the index write is idempotent).
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
from collections import Counter
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
from connectors.recovery import read_tail
from connectors.rss.digest import (
    Digest,
    body_hash,
    policy_for,
    reconcile,
    request_validators,
)
from connectors.rss.parse_job import digest_job, exit_with_parent, parser_context
from connectors.rss.schedule import HEALTH_ORDER, SchedulePolicy, health
from streams.net.fetch import Fetcher
from streams.net.types import FetchLimits, FetchResult
from streams.ops import Health
from streams.schema.models import RawArticle
from streams.settings import ConnectorSettings, Settings

log = logging.getLogger("newsflow.connector")

DELIVERY_RETRY_S = 30.0


@dataclass(slots=True)
class Summary:
    feeds_total: int = 0
    polled: int = 0
    results: Counter[str] = field(default_factory=Counter)  # new/no_new/not_modified/...
    errors: Counter[str] = field(default_factory=Counter)  # error class -> feeds
    articles: Counter[str] = field(default_factory=Counter)  # new / updated / trimmed
    dropped: Counter[str] = field(default_factory=Counter)
    delivery_failures: int = 0
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
        self.clock = clock
        self.rng = rng or random.Random()
        self.policy = schedule_policy(conf)
        stored = store.load_all()
        self.states: dict[str, FeedState] = {
            f.id: reconcile(stored.get(f.id), f) for f in feeds.feeds
        }
        self._pending: list[tuple[Digest, FeedSpec, list[Any]]] = []
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
        futures: list[Any] = []
        try:
            fetched = await fetcher.fetch(
                state.url, sent, allow_private=self.feeds.allow_private_addresses
            )
            args = (
                feed,
                state,
                fetched,
                sent,
                self.clock(),
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
            for record in records:
                futures.append(self.producer.send_record(record))
                if record.trimmed:
                    self.summary.articles["trimmed"] += 1
                    log.warning(
                        "trimmed %s from %s to fit the record size limit",
                        record.article_id,
                        feed.id,
                    )
        except Exception as exc:  # noqa: BLE001 - one feed's failure must not stop the others
            if isinstance(exc, BrokenProcessPool) and self._pool is not None:
                # A parser process died (killed, out of memory): replace the pool, or every
                # later parse would fail the same way. This feed is retried like the others.
                log.error("a parser process died; starting a new pool")
                broken, self._pool = self._pool, self._new_pool()
                broken.shutdown(wait=False, cancel_futures=True)
            # Kafka refusing a send (buffer full, no metadata) or a bug: the state is kept, so
            # the poll repeats and nothing it found is lost.
            log.error("poll of %s failed: %s: %s; retrying later", feed.id, type(exc).__name__, exc)
            self.states[feed.id].next_poll_at = self.clock() + DELIVERY_RETRY_S
            self._busy.discard(feed.id)
            self.summary.errors[f"internal_{type(exc).__name__}"] += 1
            self.summary.failing_feeds[feed.id] = f"{type(exc).__name__}: {exc}"
            metrics.FEED_POLLS.labels(feed.id, "error", "internal").inc()
            return
        self._pending.append((digest, feed, futures))
        metrics.FEED_FETCH_SECONDS.labels(digest.result).observe(digest.elapsed_s)
        if digest.bytes_compressed:
            metrics.FEED_FETCH_BYTES.labels(feed.id).inc(digest.bytes_compressed)

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

    async def commit(self) -> None:
        pending, self._pending = self._pending, []
        if not pending:
            return
        if any(futures for _, _, futures in pending):
            await asyncio.get_running_loop().run_in_executor(None, self.producer.flush)
        to_save: list[FeedState] = []
        for digest, feed, futures in pending:
            self._busy.discard(feed.id)
            failed = [f for f in futures if not f.is_done or f.failed()]
            if failed:
                self.summary.delivery_failures += 1
                error = failed[0].exception if failed[0].is_done else "not delivered"
                log.error(
                    "kafka did not confirm %d/%d record(s) of %s: %s; state kept, poll repeats",
                    len(failed),
                    len(futures),
                    feed.id,
                    error,
                )
                self.states[feed.id].next_poll_at = self.clock() + DELIVERY_RETRY_S
                metrics.FEED_POLLS.labels(feed.id, "error", "kafka_delivery").inc()
                self.health.dependency("kafka", f"delivery failed: {error}")
                continue
            if futures:
                self.health.dependency("kafka", None)
            self.states[feed.id] = digest.state
            to_save.append(digest.state)
            self._account(digest, feed)
            for future in futures:
                meta = future.value
                nxt = meta.offset + 1
                if nxt > self._checkpoint.get(meta.partition, -1):
                    self._checkpoint[meta.partition] = nxt
        if to_save:
            self.store.save(to_save, self.producer.topic, self._checkpoint)
            self.health.progress()

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
        now = self.clock()
        todo = [
            f
            for f in self.feeds.feeds
            if f.enabled and (every_feed or self.states[f.id].next_poll_at <= now)
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
        await self.commit()
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
        self.summary.feeds_total = sum(1 for f in feeds.feeds if f.enabled)
        log.info("feed list reloaded: %d feeds", len(feeds.feeds))

    async def run_forever(self, stop: asyncio.Event, progress: Progress | None = None) -> Summary:
        started = time.monotonic()
        running: set[asyncio.Task[None]] = set()
        with self._parsers():
            await self._forever(stop, running, progress)
        await self.commit()
        self.summary.seconds = time.monotonic() - started
        return self.summary

    async def _forever(
        self, stop: asyncio.Event, running: set[asyncio.Task[None]], progress: Progress | None
    ) -> None:
        mtime = self._feeds_mtime()
        async with self._fetcher() as fetcher:
            while not stop.is_set():
                now = self.clock()
                current = self._feeds_mtime()
                if current != mtime:
                    mtime = current
                    self._reload_feeds()
                heap = [
                    (self.states[f.id].next_poll_at, f.id)
                    for f in self.feeds.feeds
                    if f.enabled and f.id not in self._busy
                ]
                heapq.heapify(heap)
                by_id = {f.id: f for f in self.feeds.feeds}
                while heap and heap[0][0] <= now and len(running) < self.conf.concurrency * 2:
                    _, feed_id = heapq.heappop(heap)
                    self._busy.add(feed_id)
                    task = asyncio.create_task(self._poll(fetcher, by_id[feed_id]))
                    running.add(task)
                    task.add_done_callback(running.discard)
                await self.commit()
                if progress:
                    progress(self.summary.polled, self.summary.feeds_total, self.summary)
                wake = heap[0][0] - self.clock() if heap else self.conf.commit_interval_s
                wait = min(max(wake, 0.05), self.conf.commit_interval_s)
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), timeout=wait)
            if running:
                await asyncio.gather(*running, return_exceptions=True)

    def _feeds_mtime(self) -> float | None:
        if self.feeds_path is None:
            return None
        try:
            return self.feeds_path.stat().st_mtime
        except OSError:
            return None
