"""The index stage: ``news.articles.enriched.v1`` -> Elasticsearch (``_id = article_id``).

Every article ends in exactly one outcome: ``indexed``, or ``dead_lettered`` (not valid contract
JSON, or rejected by the mapping: original bytes to ``news.dlq.index``). Anything else is retried
in place: Elasticsearch unreachable, 429 or 5xx (whole request or single items) back off
exponentially (capped) and the partition waits, so nothing is skipped. Acks follow the write.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import faust
from elastic_transport import TransportError
from elasticsearch import ApiError
from pydantic import ValidationError

from streams import topics
from streams.app import raw_topic
from streams.errors import PoisonArticle, RetryableError
from streams.metrics import (
    ARTICLES,
    BATCH_SECONDS,
    BULK_ITEMS,
    BULK_SECONDS,
    END_TO_END,
    RETRIES,
)
from streams.ops import Health
from streams.schema import Article, decode
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink, PreparedBulk, WriteResult
from streams.stages.common import (
    backoff_delays,
    dead_letter_from,
    hold,
    log,
    release,
    retry_forever,
    send_dead_letters,
)

STAGE = "index"


def classify(result: WriteResult) -> type[Exception] | None:
    """None = written; RetryableError = try again; PoisonArticle = will never be accepted."""
    if result.ok:
        return None
    if result.status == 429 or result.status >= 500:
        return RetryableError
    return PoisonArticle


def request_error_is_retryable(exc: Exception) -> bool:
    if isinstance(exc, TransportError):  # connection refused, timeout, TLS ...
        return True
    if isinstance(exc, ApiError):
        return exc.meta.status == 429 or exc.meta.status >= 500
    return False


async def write_until_settled(
    sink: ElasticSink,
    batch: Sequence[tuple[Any, Article]],
    initial: float,
    cap: float,
    prepared: PreparedBulk | None = None,
    on_request: Callable[[str | None], None] | None = None,
) -> tuple[list[Any], list[tuple[Any, str]]]:
    """Write ``batch`` until every item is indexed or known to be poison.

    Returns (events indexed, [(event, error) rejected]). Never gives up on retryable errors.
    ``prepared`` is the batch's bulk body when the caller built it ahead of time.
    """
    loop = asyncio.get_running_loop()
    pending = list(batch)
    indexed: list[Any] = []
    rejected: list[tuple[Any, str]] = []
    delays = backoff_delays(initial, cap)
    while pending:
        if prepared is None:
            prepared = sink.prepare([article for _, article in pending], datetime.now(UTC))
        try:
            results = await loop.run_in_executor(None, sink.send, prepared)
            if on_request is not None:
                on_request(None)
        except Exception as exc:  # noqa: BLE001 - translated below
            if on_request is not None and request_error_is_retryable(exc):
                on_request(f"{type(exc).__name__}: {exc}")
            if not request_error_is_retryable(exc) and len(pending) > 1:
                # A request-level rejection: isolate the culprit by writing one at a time.
                for item in pending:
                    ok, bad = await write_until_settled(
                        sink, [item], initial, cap, None, on_request
                    )
                    indexed += ok
                    rejected += bad
                return indexed, rejected
            if not request_error_is_retryable(exc):
                rejected.append((pending[0][0], f"{type(exc).__name__}: {exc}"))
                return indexed, rejected
            delay = next(delays)
            RETRIES.labels(STAGE, "bulk-request").inc()
            log.warning(
                "index: bulk request failed (%s: %s); %d articles wait %.1fs",
                type(exc).__name__,
                exc,
                len(pending),
                delay,
            )
            await asyncio.sleep(delay)
            continue
        retry = []
        for item, result in zip(pending, results, strict=True):
            verdict = classify(result)
            if verdict is None:
                indexed.append(item[0])
            elif verdict is RetryableError:
                retry.append(item)
            else:
                rejected.append((item[0], f"status {result.status}: {result.error}"))
        if retry:
            delay = next(delays)
            RETRIES.labels(STAGE, "bulk-item").inc(len(retry))
            BULK_ITEMS.labels("retried").inc(len(retry))
            log.warning(
                "index: %d items not accepted yet (e.g. 429/5xx); retrying in %.1fs",
                len(retry),
                delay,
            )
            await asyncio.sleep(delay)
        pending, prepared = retry, None
    return indexed, rejected


def register(app: faust.App, settings: Settings, health: Health | None = None) -> Any:
    wiring = topics.STAGES[STAGE]
    source = raw_topic(app, wiring["input"], settings)
    dlq = raw_topic(app, wiring["dead_letter"], settings)
    cfg = settings.index
    sink = ElasticSink(settings.elastic)

    def prepare(events: list[Any]) -> tuple[list[Any], list[tuple[Any, Article]], PreparedBulk]:
        """Decode and build the bulk body: CPU work, overlapped with the previous write."""
        letters, valid = [], []
        for event in events:
            try:
                valid.append((event, decode(Article, bytes(event.message.value or b""))))
            except (ValidationError, ValueError) as exc:
                letters.append(dead_letter_from(event, STAGE, exc))
        bulk = sink.prepare([article for _, article in valid], datetime.now(UTC))
        return letters, valid, bulk

    async def finish(
        events: list[Any],
        job: tuple[list[Any], list[tuple[Any, Article]], PreparedBulk],
        started: float,
    ) -> None:
        letters, valid, bulk = job
        bulk_started = time.monotonic()
        indexed, rejected = await write_until_settled(
            sink,
            valid,
            cfg.retry_initial_s,
            cfg.retry_max_s,
            prepared=bulk,
            on_request=None
            if health is None
            else (lambda error: health.dependency("elasticsearch", error)),
        )
        if valid:
            BULK_SECONDS.observe(time.monotonic() - bulk_started)
        BULK_ITEMS.labels("indexed").inc(len(indexed))
        BULK_ITEMS.labels("rejected").inc(len(rejected))
        now = datetime.now(UTC)
        first_seen = {id(event): article.source.first_seen_at for event, article in valid}
        for event in indexed:
            END_TO_END.observe(max(0.0, (now - first_seen[id(event)]).total_seconds()))
        letters += [
            dead_letter_from(event, STAGE, PoisonArticle(error)) for event, error in rejected
        ]
        if letters:
            await retry_forever(
                STAGE,
                "dead-letter",
                lambda: send_dead_letters(dlq, letters),
                cfg.retry_initial_s,
                cfg.retry_max_s,
                (Exception,),
            )
        ARTICLES.labels(STAGE, "indexed").inc(len(indexed))
        BATCH_SECONDS.labels(STAGE).observe(time.monotonic() - started)
        if health is not None:
            health.progress()
        release(events)  # acks follow the write

    crashing: set[asyncio.Future[None]] = set()

    def crash_on_error(task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "index: unexpected failure; crashing without acking the batch",
                exc_info=task.exception(),
            )
            crashing.add(asyncio.ensure_future(app.crash(task.exception())))  # type: ignore[arg-type]

    @app.agent(source, name=f"newsflow.{STAGE}")
    async def index(stream: Any) -> None:
        sink.start()
        # One bulk request in flight at a time keeps per-partition order; building the next
        # batch's body while it runs overlaps the CPU work with Elasticsearch's.
        in_flight: asyncio.Task[None] | None = None
        async for events in stream.take_events(cfg.batch_size, within=cfg.flush_interval_s):
            batch = list(events)
            hold(batch)
            started = time.monotonic()
            try:
                job = prepare(batch)
                if in_flight is not None:
                    await in_flight
                in_flight = asyncio.create_task(finish(batch, job, started))
                in_flight.add_done_callback(crash_on_error)
            except Exception as exc:  # noqa: BLE001 - never let faust ack a failed batch
                log.exception("index: unexpected failure; crashing without acking the batch")
                await app.crash(exc)
                return

    return index
