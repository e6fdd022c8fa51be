"""The index stage: enriched articles -> Elasticsearch (``_id = article_id``).

Its wiring is ``topics.STAGES["index"]``. Every article ends in exactly one outcome:
``indexed``, or ``dead_lettered`` (not valid contract JSON, or refused by the mapping: original
bytes to the stage's dead-letter topic). Anything else is retried in place by the Elasticsearch
sink (``streams.sinks.elastic.write_until_settled``): unreachable, 429 or 5xx (whole request or
single items) back off (``settings.retry``) and the partition waits, so nothing is skipped.
Refusals an operator must fix -- credentials (401), a missing privilege (403), a write block
(``index.blocks.write``, flood-stage read-only) -- wait the same way, never dead-lettered, while
``newsflow_elastic_writes_refused`` raises the alert and /health/ready says not ready and why.
The stage runner acks after the write.

``prepare`` builds the bulk body (decoding and serialising: CPU work) on the event loop while
the previous batch's bulk request is in flight; the requests themselves go one at a time, so a
partition's writes stay in order.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

from streams import diagnose, topics
from streams.enrich import linking
from streams.errors import PoisonArticle
from streams.metrics import BULK_SECONDS, END_TO_END
from streams.ops import Health
from streams.schema import Article, decode
from streams.settings import Settings
from streams.sinks.elastic import ElasticSink, PreparedBulk, write_until_settled
from streams.stages.runner import BatchPolicy, Done, Outcome, Poison, Record, Stage

STAGE = "index"


def decode_article(record: Record) -> Article:
    return decode(Article, record.value)


def declare(settings: Settings, health: Health | None = None) -> Stage:
    wiring = topics.STAGES[STAGE]
    cfg = settings.index
    sink = ElasticSink(settings.elastic, labels=linking.labels)  # entity_labels.<lang>
    on_request = (
        None
        if health is None
        else (
            lambda e: health.dependency(
                "elasticsearch", diagnose.elastic_answer_problem(e, settings.elastic)
            )
        )
    )

    def prepare(articles: list[Article]) -> tuple[list[Article], PreparedBulk]:
        return articles, sink.prepare(articles, datetime.now(UTC))

    async def process(job: tuple[list[Article], PreparedBulk]) -> list[Outcome]:
        articles, bulk = job
        started = time.monotonic()
        settled = await write_until_settled(sink, bulk, settings.retry, STAGE, on_request)
        BULK_SECONDS.observe(time.monotonic() - started)
        now = datetime.now(UTC)
        outcomes: list[Outcome] = []
        for article, result in zip(articles, settled, strict=True):
            if result.indexed:
                seen = (now - article.source.first_seen_at).total_seconds()
                END_TO_END.observe(max(0.0, seen))
                outcomes.append(Done())
            else:
                outcomes.append(Poison(PoisonArticle(result.error), attempts=result.attempts))
        return outcomes

    async def start() -> None:
        sink.start()

    async def stop() -> None:
        sink.close()

    return Stage(
        name=STAGE,
        input=(wiring["input"],),
        dead_letter=wiring["dead_letter"],
        batch=BatchPolicy(cfg.batch_size, cfg.batch_idle_s, cfg.flush_interval_s),
        decode=decode_article,
        prepare=prepare,
        process=process,
        done="indexed",
        start=start,
        stop=stop,
    )
