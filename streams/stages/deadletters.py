"""Dead letters into Elasticsearch, for the operators' Kibana view of the DLQ.

Runs inside the index worker: consumes ``news.dlq.enrich`` and ``news.dlq.index`` and writes
one document per dead letter (headers parsed, the first 2,000 characters of the payload) to
``elastic.dead_letter_index`` with ``_id = <topic>-<partition>-<offset>``, so a replay of the
same record overwrites instead of duplicating. Elasticsearch being down makes it wait and
retry (the dead letters stay in Kafka, which remains the source of truth).
"""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import faust

from streams import resources, topics
from streams.deadletter import parse_headers
from streams.errors import RetryableError
from streams.metrics import ARTICLES
from streams.ops import Health
from streams.settings import ElasticSettings, Settings
from streams.sinks.elastic import make_client
from streams.stages.common import hold, release, retry_forever

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


def write(client: Any, index: str, docs: list[tuple[str, dict[str, Any]]]) -> int:
    """Bulk-write; raise RetryableError on 429/5xx (item or request), return items refused."""
    operations: list[dict[str, Any]] = []
    for doc_id, doc in docs:
        operations += [{"index": {"_index": index, "_id": doc_id}}, doc]
    try:
        resp = client.bulk(operations=operations)
    except Exception as exc:
        raise RetryableError(f"{type(exc).__name__}: {exc}") from exc
    refused = 0
    for item in resp["items"]:
        status = item["index"].get("status", 500)
        if status == 429 or status >= 500:
            raise RetryableError(f"bulk item status {status}")
        if status >= 300:
            refused += 1
            log.error(
                "dead letter %s refused by Elasticsearch: %s",
                item["index"].get("_id"),
                item["index"].get("error"),
            )
    return refused


def register(app: faust.App, settings: Settings, health: Health | None = None) -> Any:
    names = [spec.topic_name(settings.topics) for spec in (topics.DLQ_ENRICH, topics.DLQ_INDEX)]
    source = app.topic(*names, key_serializer="raw", value_serializer="raw")
    client = make_client(settings.elastic)
    index = settings.elastic.dead_letter_index
    cfg = settings.index

    @app.agent(source, name="newsflow.dead-letters")
    async def index_dead_letters(stream: Any) -> None:
        loop = asyncio.get_running_loop()
        async for events in stream.take_events(500, within=cfg.flush_interval_s):
            batch = list(events)
            hold(batch)
            docs = [
                dead_letter_doc(
                    e.message.topic,
                    e.message.partition,
                    e.message.offset,
                    e.message.key,
                    e.message.value,
                    e.message.headers,
                )
                for e in batch
            ]

            async def send(docs: list[tuple[str, dict[str, Any]]] = docs) -> int:
                return await loop.run_in_executor(None, write, client, index, docs)

            refused = await retry_forever(
                STAGE, "bulk", send, cfg.retry_initial_s, cfg.retry_max_s, (RetryableError,)
            )
            ARTICLES.labels(STAGE, "indexed").inc(len(docs) - refused)
            release(batch)

    return index_dead_letters
