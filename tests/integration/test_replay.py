"""`newsflow replay`: dead letters go back to the stage input once, with provenance."""

from __future__ import annotations

from pathlib import Path

import pytest
from kafka import KafkaProducer

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.commands.replay import replay
from streams.deadletter import DeadLetter
from streams.kafka_clients import client_options
from streams.settings import Settings
from tests.integration import stage_helpers as h


def test_replay_refeeds_each_dead_letter_once(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = h.settings_for(h.isolated_env(kafka, unique, tmp_path), monkeypatch)
    ensure_topics(settings, lambda _m: None)
    dlq = topics.DLQ_INDEX.topic_name(settings.topics)
    target = topics.ENRICHED.topic_name(settings.topics)
    letters = [
        DeadLetter("index", f"k{i}".encode(), f"payload-{i}".encode(), "X", "boom", 1, target, 0, i)
        for i in range(5)
    ]
    producer = KafkaProducer(**client_options(settings.kafka))
    for dl in letters:
        producer.send(dlq, key=dl.key, value=dl.value, headers=dl.headers())
    producer.flush(30)
    producer.close()

    said: list[str] = []
    assert replay(settings, "index", said.append, dry_run=True).replayed == 5
    assert replay(settings, "index", said.append, limit=2).replayed == 2
    assert replay(settings, "index", said.append).replayed == 3
    assert replay(settings, "index", said.append).replayed == 0  # nothing twice

    records = h.read_all(settings, target, 5, 30, lambda: None)
    assert sorted(bytes(r.value) for r in records) == sorted(dl.value for dl in letters)
    provenance = {dict(r.headers)["newsflow-replayed-from"].decode() for r in records}
    assert len(provenance) == 5 and all(p.startswith(dlq) for p in provenance)
    with pytest.raises(ValueError, match="unknown stage"):
        replay(settings, "connector", said.append)
