"""The stage runner: the faust side of every stage, written once.

A stage is a declaration (``Stage``): its input topic(s), output topic, dead-letter topic, batch
policy and functions without faust in them: ``decode(record) -> item`` (raising ``ValueError`` or
``PoisonArticle`` for a record that can never be read), an optional ``prepare(items) -> job`` and
``process(job) -> outcomes``, one ``Outcome`` per item, in order. ``process`` is either a plain
function (CPU work such as enrichment: run in a worker thread so the event loop keeps
heartbeating) or a coroutine function (I/O such as fetching pages or writing to Elasticsearch:
awaited on the event loop). The runner does everything else:

1. **Batching that closes when the input goes idle.** A batch takes every record that is ready
   (up to ``BatchPolicy.size``) and closes when no further record arrives within
   ``BatchPolicy.idle_s``, or at the latest ``max_wait_s`` after its first record. At low load
   an article goes through alone; at full load batches fill. While the previous batch is still
   being processed the next one keeps filling, since it could not start earlier anyway.
2. **Acks only after the outcome is confirmed.** The runner reads ``stream.events()`` with
   faust's own acking off and acks each record itself after its output or dead letter was
   confirmed by Kafka. A batch interrupted before that (shutdown, crash) is never acked, so its
   offsets are not committed and it is redelivered (at-least-once).
   **Progress is committed after every batch**, as soon as it is acked, not only at faust's
   commit tick (``broker_commit_interval``, 2.8 s, during which a fast stage finishes dozens
   of batches): a worker killed mid-stream leaves at most the batch it was finishing to its
   replacement (measured in tests/integration/test_delivery_kill.py).
3. **Dead letters with real attempt counts.** A record that does not decode, or whose outcome
   is ``Poison``, goes to the stage's dead-letter topic with its original bytes and headers
   (stage, error class and message, attempts, source topic/partition/offset). ``attempts`` is
   the number of times the stage really tried it: 1 for a record that does not decode, the
   number of ``process`` calls of its batch (``RetryableError`` makes the runner call again), or
   what the stage reports (e.g. the Elasticsearch sink counts the writes of each item).
4. **Retries from settings.** ``RetryableError`` from ``process`` and failed sends (outputs and
   dead letters) back off with ``settings.retry`` and try again, forever: the partition waits.
   A record is re-sent together with every later record of the same key, so a key's records
   stay in order.
5. **Exactly one counted outcome per input record**: ``newsflow_articles_total{stage,outcome}``
   with ``outcome`` = the stage's ``done`` label (forwarded or finished), ``dead_lettered``, or
   ``rejected`` (poison in a stage without a dead-letter topic, e.g. the dead-letter indexer).
6. **Per-partition order with overlap.** One batch is processed at a time (outputs are sent in
   input order); ``decode`` and ``prepare`` of the next batch run while the previous one is in
   ``process`` (the index stage builds its next bulk body while a bulk request is in flight).
7. **Input topics recreated under the worker** (``streams.stages.eras``): records in hand
   from a topic that was since deleted or replaced are finished but never acked (their offsets
   would land on the new topic and skip its records), and the new topic is read from offset 0.
8. **The crash guard.** No exception escapes the agent (faust would ack the batch): an
   unexpected exception is logged, the batch is left unacked and the worker crashes; after a
   restart the batch is redelivered.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import faust

from streams.app import contract_topic, raw_topic
from streams.deadletter import DeadLetter
from streams.errors import PoisonArticle, RetryableError, backoff_delays
from streams.metrics import ARTICLES, BATCH_SECONDS, DEAD_LETTERS, RETRIES
from streams.ops import Health
from streams.schema import ContractModel
from streams.settings import RetrySettings, Settings
from streams.stages import eras as topic_eras
from streams.topics import TopicSpec

log = logging.getLogger("newsflow.stages")


# ---- what a stage works on and returns ----------------------------------------------------


@dataclass(frozen=True)
class Record:
    """One input record as Kafka delivered it (no faust types: stage functions stay pure)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True)
class Forward:
    """The record goes on: ``value`` is sent to the stage's output topic with ``key``."""

    value: ContractModel
    key: bytes


@dataclass(frozen=True)
class Done:
    """The record is finished here (e.g. a sink wrote it); nothing to send."""


@dataclass(frozen=True)
class Poison:
    """The record can never succeed as it is: dead-letter it with its original bytes.

    ``attempts`` = how often the stage really tried it; ``None`` = the number of ``process``
    calls of its batch.
    """

    error: BaseException
    attempts: int | None = None


Outcome = Forward | Done | Poison


@dataclass(frozen=True)
class BatchPolicy:
    size: int  # most records per batch
    idle_s: float  # close once no record arrived for this long (0 = when nothing is ready)
    max_wait_s: float  # never hold a batch open longer than this after its first record


@dataclass(frozen=True)
class Stage:
    """A stage's declaration; ``runner.register`` turns it into a faust agent."""

    name: str
    input: tuple[TopicSpec, ...]
    batch: BatchPolicy
    decode: Callable[[Record], Any]
    # process(job) -> one Outcome per decoded item, in order; plain (worker thread) or async.
    process: Callable[[Any], Sequence[Outcome] | Awaitable[Sequence[Outcome]]]
    output: TopicSpec | None = None
    dead_letter: TopicSpec | None = None
    # prepare(items) -> job, run on the event loop while the previous batch is in ``process``.
    prepare: Callable[[list[Any]], Any] | None = None
    done: str = "processed"  # outcome label of a Forward/Done record
    start: Callable[[], Awaitable[None]] | None = None  # in the worker's loop, before input
    stop: Callable[[], Awaitable[None]] | None = None  # when the agent ends


def record_of(message: Any) -> Record:
    headers = message.headers or ()
    if isinstance(headers, Mapping):
        headers = headers.items()
    return Record(
        topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=message.key,
        value=bytes(message.value or b""),
        headers=tuple((str(k), bytes(v or b"")) for k, v in headers),
    )


def dead_letter(stage: str, record: Record, error: BaseException, attempts: int) -> DeadLetter:
    return DeadLetter(
        stage=stage,
        key=record.key,
        value=record.value,
        error_class=type(error).__name__,
        message=str(error),
        attempts=attempts,
        source_topic=record.topic,
        source_partition=record.partition,
        source_offset=record.offset,
    )


# ---- the runner ---------------------------------------------------------------------------


class _InputEnded(Exception):
    """The stream stopped (worker shutdown, end of a test): leave without a crash."""


@dataclass
class _Batch:
    events: list[Any]
    epochs: list[int]  # per event: its topic's era when it arrived (``TopicEras``)
    records: list[Record]
    started: float
    outcomes: list[Outcome | None]  # per record; decode failures filled in already
    positions: list[int]  # record index of each decoded item
    job: Any


# How long a stopping worker lets a batch in process finish before giving it up unacked.
STOP_GRACE_S = 5.0


class _GiveUp(Exception):
    """The worker stops while a batch waits to be retried."""


class Runner:
    def __init__(
        self,
        stage: Stage,
        retry: RetrySettings,
        output: Any = None,
        dead_letters: Any = None,
        health: Health | None = None,
        crash: Callable[[BaseException], Awaitable[None]] | None = None,
        commit: Callable[[], Awaitable[object]] | None = None,
        eras: topic_eras.TopicEras | None = None,
        release: Callable[[Any], None] | None = None,
        stopping: Callable[[], bool] | None = None,
    ) -> None:
        if stage.output is not None and output is None:
            raise ValueError(f"stage {stage.name} declares an output but has no output topic")
        self.stage = stage
        self.retry = retry
        self.output = output
        self.dead_letters = dead_letters
        self.health = health
        self.crash = crash
        self.commit = commit
        self.eras = eras
        self.release = release  # forget an old era's event without acking it
        # True once the worker shuts down: a batch waiting out a retryable error (Elasticsearch
        # refusing writes, say) is then given up unacked instead of holding faust's shutdown,
        # which waits for every record in hand to be acked (a SIGTERM'd worker stuck on bad
        # credentials never exited; Kubernetes had to SIGKILL it after its grace period).
        self.stopping = stopping
        self._is_async = inspect.iscoroutinefunction(stage.process)

    # -- the agent body --

    async def run(self, stream: Any) -> None:
        stage = self.stage
        stream.enable_acks = False  # acks are ours: only after outputs are confirmed
        queue: asyncio.Queue[Any] = asyncio.Queue(maxsize=stage.batch.size)
        pump = asyncio.ensure_future(self._pump(stream, queue, self.eras))
        in_flight: asyncio.Task[None] | None = None
        try:
            if stage.start is not None:
                await stage.start()
            while True:
                tagged = await self._collect(queue, pump, in_flight)
                batch = self._begin([e for _, e in tagged], [epoch for epoch, _ in tagged])
                if in_flight is not None:
                    await in_flight  # one batch in process at a time: per-partition order
                in_flight = asyncio.ensure_future(self._finish(stream, batch))
        except _InputEnded:
            if in_flight is not None and not in_flight.done():
                await in_flight
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # never let faust ack a failed batch
            # Unexpected (a bug): the batch keeps its records unacked, so its offsets are not
            # committed; crash the worker, and after a restart the batch is redelivered.
            log.exception("%s: unexpected failure; crashing without acking the batch", stage.name)
            if self.crash is not None:
                await self.crash(exc)
        finally:
            pump.cancel()
            if in_flight is not None and not in_flight.done():
                in_flight.cancel()  # shutdown mid-batch: unacked, redelivered after a restart
            if stage.stop is not None:
                await stage.stop()

    @staticmethod
    async def _pump(
        stream: Any, queue: asyncio.Queue[Any], eras: topic_eras.TopicEras | None
    ) -> None:
        async for event in stream.events():
            epoch = 0 if eras is None else eras.epoch(event.message.topic)
            # A full queue stops reading: backpressure to the consumer.
            await queue.put((epoch, event))

    async def _get(
        self, queue: asyncio.Queue[Any], watch: list[asyncio.Future[Any]], timeout: float | None
    ) -> Any:
        """The next event, or None after ``timeout``; raises when a watched task ended."""
        getter = asyncio.ensure_future(queue.get())
        try:
            await asyncio.wait([getter, *watch], timeout=timeout, return_when="FIRST_COMPLETED")
        finally:
            if not getter.done():
                getter.cancel()
        if getter.done() and not getter.cancelled():
            return getter.result()
        for task in watch:
            if task.done():
                task.result()  # re-raises the failure of the pump or of the in-flight batch
                if task is watch[0]:
                    raise _InputEnded
        return None

    async def _collect(
        self,
        queue: asyncio.Queue[Any],
        pump: asyncio.Future[None],
        in_flight: asyncio.Task[None] | None,
    ) -> list[Any]:
        policy = self.stage.batch
        loop = asyncio.get_running_loop()
        watch: list[asyncio.Future[Any]] = [pump]
        if in_flight is not None:
            watch.append(in_flight)
        events: list[Any] = []
        while not events:  # the first record: wait as long as it takes
            first = await self._get(queue, watch, None)
            if first is not None:
                events.append(first)
            elif in_flight is not None and in_flight.done():
                watch = [pump]  # the previous batch finished while we waited: fine
        opened = loop.time()
        while len(events) < policy.size:
            try:
                events.append(queue.get_nowait())
                continue
            except asyncio.QueueEmpty:
                pass
            if in_flight is not None and not in_flight.done():
                # The batch could not start before the one in process ends: keep filling.
                nxt = await self._get(queue, [pump, in_flight], None)
                if nxt is not None:
                    events.append(nxt)
                continue
            left = policy.max_wait_s - (loop.time() - opened)
            if left <= 0:
                break
            nxt = await self._get(queue, [pump], min(policy.idle_s, left))
            if nxt is None:
                break  # the input is idle: go with what we have
            events.append(nxt)
        return events

    def _begin(self, events: list[Any], epochs: list[int] | None = None) -> _Batch:
        """Decode (undecodable records become poison) and prepare; on the event loop.
        ``epochs``: per event, its topic's era when it arrived (all 0 without ``eras``)."""
        stage = self.stage
        epochs = epochs if epochs is not None else [0] * len(events)
        records = [record_of(event.message) for event in events]
        outcomes: list[Outcome | None] = [None] * len(records)
        items: list[Any] = []
        positions: list[int] = []
        for i, record in enumerate(records):
            try:
                items.append(stage.decode(record))
                positions.append(i)
            except (ValueError, PoisonArticle) as exc:  # pydantic's ValidationError included
                outcomes[i] = Poison(exc, attempts=1)
        job = stage.prepare(items) if stage.prepare is not None and items else items
        return _Batch(events, epochs, records, time.monotonic(), outcomes, positions, job)

    async def _process(self, job: Any) -> tuple[Sequence[Outcome], int]:
        """``process(job)`` until it does not raise ``RetryableError``; (outcomes, attempts)."""
        loop = asyncio.get_running_loop()
        delays = backoff_delays(self.retry.initial_s, self.retry.max_s)
        attempts = 0
        while True:
            attempts += 1
            try:
                work: asyncio.Future[Any]
                if self._is_async:
                    work = asyncio.ensure_future(self.stage.process(job))  # type: ignore[arg-type]
                else:
                    work = loop.run_in_executor(None, self.stage.process, job)
                return await self._unless_stopped(work), attempts
            except RetryableError as exc:
                delay = next(delays)
                RETRIES.labels(self.stage.name, "process").inc()
                log.warning(
                    "%s: batch failed (attempt %d: %s); retrying in %.1fs",
                    self.stage.name,
                    attempts,
                    exc,
                    delay,
                )
                await self._pause(delay)

    async def _unless_stopped(self, work: asyncio.Future[Any]) -> Any:
        """``work``'s result; once the worker stops, ``STOP_GRACE_S`` more to finish it, then
        ``_GiveUp`` (a stage retrying inside ``process`` itself, as the index stage does while
        Elasticsearch refuses writes, would otherwise hold the shutdown for ever)."""
        stop_seen: float | None = None
        while True:
            done, _ = await asyncio.wait({work}, timeout=0.25)
            if done:
                return work.result()
            if self.stopping is None or not self.stopping():
                continue
            now = time.monotonic()
            stop_seen = stop_seen or now
            if now - stop_seen >= STOP_GRACE_S:
                work.cancel()  # a thread of a sync stage runs on; its result is not used
                raise _GiveUp

    async def _pause(self, delay: float) -> None:
        """Sleep ``delay`` between retries; raise ``_GiveUp`` as soon as the worker stops."""
        deadline = time.monotonic() + delay
        while True:
            if self.stopping is not None and self.stopping():
                raise _GiveUp
            left = deadline - time.monotonic()
            if left <= 0:
                return
            await asyncio.sleep(min(left, 0.25))

    async def _finish(self, stream: Any, batch: _Batch) -> None:
        stage = self.stage
        outcomes = batch.outcomes
        if batch.positions:
            try:
                results, attempts = await self._process(batch.job)
            except _GiveUp:
                # Nothing of this batch is acked, so no offset of it is committed: the records
                # are read again after the restart (by this worker or another). Released so
                # that faust's shutdown does not wait for them.
                for event in batch.events:
                    if self.release is not None:
                        self.release(event)
                log.warning(
                    "%s: shutting down while retrying; %d record(s) left unacked for redelivery",
                    stage.name,
                    len(batch.events),
                )
                return
            if len(results) != len(batch.positions):
                raise RuntimeError(
                    f"{stage.name}: process returned {len(results)} outcomes "
                    f"for {len(batch.positions)} records"
                )
            for i, result in zip(batch.positions, results, strict=True):
                if isinstance(result, Poison) and result.attempts is None:
                    result = Poison(result.error, attempts)
                outcomes[i] = result
        forwards: list[tuple[bytes | None, Any, Any]] = []
        letters: list[DeadLetter] = []
        done = rejected = 0
        for record, outcome in zip(batch.records, outcomes, strict=True):
            if isinstance(outcome, Forward):
                forwards.append((outcome.key, outcome.value, None))
                done += 1
            elif isinstance(outcome, Done):
                done += 1
            elif isinstance(outcome, Poison):
                letter = dead_letter(stage.name, record, outcome.error, outcome.attempts or 1)
                if self.dead_letters is None:
                    rejected += 1
                    log.error(
                        "%s: refused %s[%s]@%s for good (no dead-letter topic): %s: %s",
                        stage.name,
                        record.topic,
                        record.partition,
                        record.offset,
                        letter.error_class,
                        letter.message[:300],
                    )
                else:
                    letters.append(letter)
            else:
                raise TypeError(f"{stage.name}: not an Outcome: {outcome!r}")
        if forwards and self.output is None:
            raise RuntimeError(f"{stage.name}: Forward outcome but the stage has no output")
        await asyncio.gather(
            self._send(self.output, forwards, "produce"),
            self._send(
                self.dead_letters,
                [(dl.key, dl.value, dl.headers()) for dl in letters],
                "dead-letter",
            ),
        )
        for dl in letters:
            DEAD_LETTERS.labels(stage.name, dl.error_class).inc()
            log.error(
                "%s: dead-lettered %s[%s]@%s (attempts %d): %s: %s",
                stage.name,
                dl.source_topic,
                dl.source_partition,
                dl.source_offset,
                dl.attempts,
                dl.error_class,
                dl.message[:300],
            )
        if done:
            ARTICLES.labels(stage.name, stage.done).inc(done)
        if letters:
            ARTICLES.labels(stage.name, "dead_lettered").inc(len(letters))
        if rejected:
            ARTICLES.labels(stage.name, "rejected").inc(rejected)
        stale = 0
        for event, epoch, record in zip(batch.events, batch.epochs, batch.records, strict=True):
            if self.eras is None or self.eras.current(record.topic, epoch):
                await stream.ack(event)  # every outcome is confirmed: the offset may commit
            else:  # its topic was deleted or replaced since: its offset means nothing now
                stale += 1
                if self.release is not None:
                    self.release(event)
        if stale:
            log.warning(
                "%s: %d record(s) of a deleted or replaced input topic processed, not acked",
                stage.name,
                stale,
            )
        await self._commit()
        BATCH_SECONDS.labels(stage.name).observe(time.monotonic() - batch.started)
        if self.health is not None:
            self.health.progress()

    async def _commit(self) -> None:
        """Commit what was just acked, before the next batch goes on (see 2. above)."""
        if self.commit is None:
            return
        try:
            await self.commit()
        except Exception as exc:  # noqa: BLE001 - faust's commit tick tries again
            log.warning(
                "%s: commit after the batch failed (%s: %s)",
                self.stage.name,
                type(exc).__name__,
                exc,
            )

    async def _send(
        self, topic: Any, records: list[tuple[bytes | None, Any, Any]], reason: str
    ) -> None:
        """Send and wait until Kafka confirmed every record; retry what failed, forever."""
        delays = backoff_delays(self.retry.initial_s, self.retry.max_s)
        pending = records
        while pending:
            futures: list[Any] = []
            error: BaseException | None = None
            for key, value, headers in pending:
                try:
                    futures.append(await topic.send(key=key, value=value, headers=headers))
                except Exception as exc:  # noqa: BLE001 - the producer refused: retry below
                    error = exc
                    break
            results: list[Any] = list(await asyncio.gather(*futures, return_exceptions=True))
            results += [error] * (len(pending) - len(results))
            failed_keys: set[bytes | None] = set()
            retry = []
            for record, result in zip(pending, results, strict=True):
                # A failed record goes again with every later record of its key (key order).
                if isinstance(result, BaseException) or record[0] in failed_keys:
                    failed_keys.add(record[0])
                    retry.append(record)
                    error = error or result
            if retry:
                delay = next(delays)
                RETRIES.labels(self.stage.name, reason).inc()
                log.warning(
                    "%s: %s of %d record(s) failed (%s: %s); retrying in %.1fs",
                    self.stage.name,
                    reason,
                    len(retry),
                    type(error).__name__,
                    error,
                    delay,
                )
                await asyncio.sleep(delay)
            pending = retry


def register(
    app: faust.App,
    stage: Stage,
    settings: Settings,
    health: Health | None = None,
    *,
    output: Any = None,
    dead_letters: Any = None,
    eras: topic_eras.TopicEras | None = None,
) -> Any:
    """The faust agent of ``stage`` on ``app``; ``output``/``dead_letters`` override the
    topics declared (tests); ``eras`` tells records of a recreated input topic apart."""
    names = [spec.topic_name(settings.topics) for spec in stage.input]
    source = app.topic(*names, key_serializer="raw", value_serializer="raw")
    if output is None and stage.output is not None:
        output = (
            contract_topic(app, stage.output, settings)
            if stage.output.value_model is not None
            else raw_topic(app, stage.output, settings)
        )
    if dead_letters is None and stage.dead_letter is not None:
        dead_letters = raw_topic(app, stage.dead_letter, settings)

    async def commit() -> None:
        consumer = app.consumer
        # A commit already in flight (faust's own tick) is waited for, not joined: the second
        # call commits what was acked after that one had picked its offsets (else a no-op).
        await consumer.commit()
        await consumer.commit()

    runner = Runner(
        stage,
        settings.retry,
        output,
        dead_letters,
        health,
        crash=app.crash,
        commit=commit,
        eras=eras,
        release=lambda event: topic_eras.release(app.consumer, event),
        stopping=lambda: bool(app.should_stop),
    )

    async def agent(stream: Any) -> None:
        await runner.run(stream)

    agent.__name__ = agent.__qualname__ = f"run_{stage.name.replace('-', '_')}"
    return app.agent(source, name=f"newsflow.{stage.name}")(agent)
