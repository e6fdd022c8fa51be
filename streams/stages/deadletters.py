"""The dead-letter indexer: dead letters into Elasticsearch, for the operators' Kibana view.

A stage like the others (``streams.stages.runner``), run inside the index worker: it reads every
dead-letter topic (``topics.DEAD_LETTER_TOPICS``) and writes one document per dead letter
(headers parsed, the first 2,000 characters of the payload) to ``elastic.dead_letter_index``
with ``_id = <topic>-<partition>-<offset>``, so a replay of the same record overwrites instead of
duplicating. It writes through the same bulk writer as the index stage
(``streams.sinks.elastic.write_until_settled``): Elasticsearch being down makes it wait and retry
(the dead letters stay in Kafka, which remains the source of truth). A document the cluster
refuses has nowhere further to go: it is logged and counted as ``rejected``.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from streams import resources, topics
from streams.deadletter import parse_headers
from streams.errors import PoisonArticle
from streams.ops import Health
from streams.settings import ElasticSettings, Settings
from streams.sinks.elastic import ElasticSink, prepare_bulk, write_until_settled
from streams.stages.runner import BatchPolicy, Done, Outcome, Poison, Record, Stage

log = logging.getLogger("newsflow.stages.deadletters")
STAGE = "dead-letters"
TEMPLATE = resources.deploy_file("elasticsearch/newsflow-dead-letters.template.json")


def _int(value: str | None) -> int | None:
    try:
        return int(value) if value is not None else None
    except ValueError:
        return None


def dead_letter_doc(
    topic: str,
    partition: int,
    offset: int,
    key: bytes | None,
    value: bytes | None,
    headers: list[tuple[str, bytes]] | None,
) -> tuple[str, dict[str, Any]]:
    h = parse_headers(headers)
    payload = value or b""
    return f"{topic}-{partition}-{offset}", {
        "stage": h.get("stage"),
        "error_class": h.get("error-class"),
        "error_message": h.get("error-message"),
        "attempts": _int(h.get("attempts")),
        "source_topic": h.get("source-topic"),
        "source_partition": _int(h.get("source-partition")),
        "source_offset": _int(h.get("source-offset")),
        "failed_at": h.get("failed-at"),
        "article_id": key.decode("utf-8", "replace") if key else None,
        "dlq_topic": topic,
        "payload_excerpt": payload[:8000].decode("utf-8", "replace")[:2000],
        "payload_bytes": len(payload),
    }


def dead_letter_template(settings: ElasticSettings) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(TEMPLATE.read_text(encoding="utf-8"))
    body["index_patterns"] = [settings.dead_letter_index]
    return body


def decode_letter(record: Record) -> tuple[str, dict[str, Any]]:
    return dead_letter_doc(
        record.topic,
        record.partition,
        record.offset,
        record.key,
        record.value,
        list(record.headers),
    )


def declare(settings: Settings, health: Health | None = None) -> Stage:
    sink = ElasticSink(settings.elastic)
    index = settings.elastic.dead_letter_index
    cfg = settings.index
    # Its own key: the dead-letter index answering must not hide a refusal of the article index.
    on_request = (
        None if health is None else (lambda e: health.dependency("elasticsearch-dead-letters", e))
    )

    async def process(docs: list[tuple[str, dict[str, Any]]]) -> list[Outcome]:
        bulk = prepare_bulk((index, doc_id, doc) for doc_id, doc in docs)
        settled = await write_until_settled(sink, bulk, settings.retry, STAGE, on_request)
        return [
            Done() if s.indexed else Poison(PoisonArticle(s.error), attempts=s.attempts)
            for s in settled
        ]

    async def start() -> None:
        sink.start()

    async def stop() -> None:
        sink.close()

    return Stage(
        name=STAGE,
        input=topics.DEAD_LETTER_TOPICS,
        batch=BatchPolicy(cfg.batch_size, cfg.batch_idle_s, cfg.flush_interval_s),
        decode=decode_letter,
        process=process,
        done="indexed",
        start=start,
        stop=stop,
    )
