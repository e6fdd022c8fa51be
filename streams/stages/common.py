"""What every stage agent shares: acking only after outputs are confirmed, dead letters, backoff.

faust acks the events of a ``take_events`` batch in a ``finally`` block, even when the agent is
cancelled mid-batch (a graceful shutdown). To keep delivery at-least-once, a stage takes one
extra reference on every message of the batch (``hold``) and gives it back only after the
batch's outputs or dead letters are confirmed by Kafka (``release``). A batch interrupted before
that keeps a reference, is never acked, so its offsets are not committed and it is redelivered.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from streams.deadletter import DeadLetter
from streams.metrics import ARTICLES, DEAD_LETTERS, RETRIES

log = logging.getLogger("newsflow.stages")
T = TypeVar("T")


def hold(events: Sequence[Any]) -> None:
    for event in events:
        event.message.incref()


def release(events: Sequence[Any]) -> None:
    for event in events:
        event.ack()


def backoff_delays(initial: float, cap: float) -> Any:
    """Capped exponential backoff with full jitter: an endless iterator of delays."""
    delay = initial
    while True:
        yield random.uniform(delay / 2, delay)
        delay = min(cap, delay * 2)


async def retry_forever(
    stage: str,
    reason: str,
    action: Callable[[], Awaitable[T]],
    initial: float,
    cap: float,
    retryable: tuple[type[BaseException], ...],
) -> T:
    """Run ``action`` until it succeeds; the partition waits meanwhile (backpressure, no loss)."""
    delays = backoff_delays(initial, cap)
    attempt = 0
    while True:
        attempt += 1
        try:
            return await action()
        except retryable as exc:
            delay = next(delays)
            RETRIES.labels(stage, reason).inc()
            log.warning(
                "%s: %s failed (attempt %d: %s: %s); retrying in %.1fs",
                stage,
                reason,
                attempt,
                type(exc).__name__,
                exc,
                delay,
            )
            await asyncio.sleep(delay)


def dead_letter_from(event: Any, stage: str, exc: BaseException, attempts: int = 1) -> DeadLetter:
    message = event.message
    return DeadLetter(
        stage=stage,
        key=message.key,
        value=bytes(message.value or b""),
        error_class=type(exc).__name__,
        message=str(exc),
        attempts=attempts,
        source_topic=message.topic,
        source_partition=message.partition,
        source_offset=message.offset,
    )


async def send_dead_letters(topic: Any, letters: Sequence[DeadLetter]) -> None:
    """Send and wait until Kafka confirmed every dead letter."""
    futures = [await topic.send(key=dl.key, value=dl.value, headers=dl.headers()) for dl in letters]
    await asyncio.gather(*futures)
    for dl in letters:
        DEAD_LETTERS.labels(dl.stage, dl.error_class).inc()
        ARTICLES.labels(dl.stage, "dead_lettered").inc()
        log.error(
            "%s: dead-lettered %s@%s[%s]: %s: %s",
            dl.stage,
            dl.source_topic,
            dl.source_partition,
            dl.source_offset,
            dl.error_class,
            dl.message[:300],
        )
