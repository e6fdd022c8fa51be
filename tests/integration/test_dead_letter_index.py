"""Dead letters reach Elasticsearch for the Kibana ops view, once each, headers parsed."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams import topics
from streams.commands.bootstrap import ensure_elastic, ensure_topics
from streams.deadletter import DeadLetter
from streams.kafka_clients import client_options
from streams.settings import Settings
from streams.sinks.elastic import make_client
from tests.integration import stage_helpers as h


def test_index_worker_writes_dead_letters_to_their_index(
    kafka: Settings,
    elastic: Settings,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = h.isolated_env(elastic, unique, tmp_path)
    env["NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX"] = f"test-dead-letters-{unique}"
    settings = h.settings_for(env, monkeypatch)
    ensure_topics(settings, lambda _m: None)
    ensure_elastic(settings, lambda _m: None)
    letters = [
        DeadLetter(
            "enrich",
            b"a" * 32,
            b'{"schema_version": "1.0"',
            "ValidationError",
            "1 validation error for RawArticle",
            1,
            "news.articles.raw.v1",
            2,
            41,
        ),
        DeadLetter(
            "index",
            b"b" * 32,
            "عطل".encode() * 3000,
            "PoisonArticle",
            "status 400: mapper_parsing_exception",
            3,
            "news.articles.enriched.v1",
            0,
            7,
        ),
    ]
    for spec, letter in zip((topics.DLQ_ENRICH, topics.DLQ_INDEX), letters, strict=True):
        producer = KafkaProducer(**client_options(settings.kafka), acks="all")
        producer.send(
            spec.topic_name(settings.topics),
            key=letter.key,
            value=letter.value,
            headers=letter.headers(),
        )
        producer.flush()
        producer.close()
    index = env["NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX"]
    es = make_client(settings.elastic)
    try:
        with h.worker("index", env, tmp_path / "index.log") as proc:

            def alive() -> None:
                assert proc.poll() is None, (tmp_path / "index.log").read_text()[-3000:]

            def arrived() -> bool:
                if not es.indices.exists(index=index):
                    return False
                es.indices.refresh(index=index)
                return bool(es.count(index=index)["count"] >= 2)

            assert h.wait_for(arrived, 90, alive)
        docs = {d["_source"]["stage"]: d for d in es.search(index=index, size=10)["hits"]["hits"]}
    finally:
        es.close()
    assert set(docs) == {"enrich", "index"}
    enrich, index_doc = docs["enrich"]["_source"], docs["index"]["_source"]
    assert enrich["error_class"] == "ValidationError" and enrich["source_offset"] == 41
    assert enrich["article_id"] == "a" * 32 and enrich["payload_bytes"] == 24
    assert docs["enrich"]["_id"].startswith(topics.DLQ_ENRICH.topic_name(settings.topics) + "-")
    assert index_doc["attempts"] == 3 and len(index_doc["payload_excerpt"]) == 2000
    assert index_doc["payload_bytes"] == len("عطل".encode() * 3000)
