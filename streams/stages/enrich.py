"""The enrich stage: ``news.articles.raw.v1`` -> language, entities -> ``...enriched.v1``.

A thin agent: decode (invalid records are poison -> ``news.dlq.enrich``), run the pure batch
enrichment (``streams.enrich.pipeline``) in a worker thread so the event loop keeps heartbeating,
send the results and wait for Kafka's confirmation, then ack. An article whose enrichment raised
is dead-lettered alone; sending retries in place until Kafka takes it.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import faust
from pydantic import ValidationError

from streams import topics
from streams.app import contract_topic, raw_topic
from streams.enrich import pipeline
from streams.errors import PoisonArticle
from streams.metrics import ARTICLES, BATCH_SECONDS, ENRICH_SECONDS
from streams.ops import Health
from streams.schema import RawArticle, decode, encode
from streams.settings import Settings
from streams.stages.common import (
    dead_letter_from,
    hold,
    log,
    release,
    retry_forever,
    send_dead_letters,
)
from streams.version import VERSION

STAGE = "enrich"


def register(app: faust.App, settings: Settings, health: Health | None = None) -> Any:
    wiring = topics.STAGES[STAGE]
    source = raw_topic(app, wiring["input"], settings)
    output = contract_topic(app, wiring["output"], settings)
    dlq = raw_topic(app, wiring["dead_letter"], settings)
    cfg = settings.enrich

    async def process(events: list[Any]) -> None:
        started = time.monotonic()
        letters, valid = [], []
        for event in events:
            try:
                valid.append((event, decode(RawArticle, bytes(event.message.value or b""))))
            except (ValidationError, ValueError) as exc:
                letters.append(dead_letter_from(event, STAGE, exc))
        stamp = pipeline.stamp(datetime.now(UTC), VERSION)
        timings: list[pipeline.Timing] = []
        results = await asyncio.get_running_loop().run_in_executor(
            None, pipeline.enrich_batch, [raw for _, raw in valid], stamp, cfg.max_chars, timings
        )
        for component, lang, per_article, n in timings:
            observe = ENRICH_SECONDS.labels(component, lang).observe
            for _ in range(n):
                observe(per_article)
        outputs = []
        for (event, _raw), result in zip(valid, results, strict=True):
            if isinstance(result, Exception):
                letters.append(dead_letter_from(event, STAGE, result))
            elif len(encode(result)) > topics.MAX_RECORD_BYTES - 64 * 1024:
                too_big = PoisonArticle(f"enriched record exceeds {topics.MAX_RECORD_BYTES} bytes")
                letters.append(dead_letter_from(event, STAGE, too_big))
            else:
                # Keyed by the record's own id: one article, one partition, whatever the input key.
                outputs.append((result.article_id.encode(), result))

        async def send_all() -> None:
            futures = [await output.send(key=key, value=art) for key, art in outputs]
            await asyncio.gather(*futures)

        if outputs:
            await retry_forever(STAGE, "produce", send_all, 0.5, 30.0, (Exception,))
        if letters:
            await retry_forever(
                STAGE,
                "dead-letter",
                lambda: send_dead_letters(dlq, letters),
                0.5,
                30.0,
                (Exception,),
            )
        ARTICLES.labels(STAGE, "enriched").inc(len(outputs))
        BATCH_SECONDS.labels(STAGE).observe(time.monotonic() - started)
        if health is not None:
            health.progress()

    @app.agent(source, name=f"newsflow.{STAGE}")
    async def enrich(stream: Any) -> None:
        async for events in stream.take_events(cfg.batch_size, within=cfg.batch_within_s):
            hold(events)
            try:
                await process(list(events))
            except Exception as exc:  # noqa: BLE001 - never let faust ack a failed batch
                # Unexpected (a bug): keep our hold so the batch is not committed, and crash
                # the worker; after a restart the batch is redelivered.
                log.exception("enrich: unexpected failure; crashing without acking the batch")
                await app.crash(exc)
                return
            release(events)

    return enrich
