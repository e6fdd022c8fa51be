"""The downstream-consumer example of the docs (docs/examples/consumer.py) against the real broker.

Real contract records (built with ``streams.schema`` and ``encode``d as the enrich stage does) go
to a topic of the test's own; the example, run as a user would run it, must validate and print
each of them and report the one record that breaks the contract.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from kafka import KafkaProducer

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.kafka_clients import client_options
from streams.schema import Article, Entity, EntityMention, LanguageInfo, encode
from streams.settings import Settings
from tests.conftest import make_raw

EXAMPLE = Path(__file__).resolve().parents[2] / "docs" / "examples" / "consumer.py"


def _article(n: int, title: str, code: str, entity: str) -> Article:
    raw = make_raw(n, title=title, hint=code)
    start = raw.source.title.index(entity)
    return Article(
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(code=code, confidence=0.98, method="both"),
        entities=(
            Entity(
                text=entity,
                type="LOC",
                normalized=entity.lower(),
                mentions=(EntityMention(field="title", start=start, end=start + len(entity)),),
                confidence=0.9,
                count=1,
            ),
        ),
        pipeline=raw.pipeline,
    )


def test_consumer_example_validates_real_records(kafka: Settings, unique: str) -> None:
    spec = topics.TopicSpec(f"test.{unique}.news.articles.enriched.v1", "consumer example", Article)
    ensure_topics(kafka, lambda _m: None, specs=(spec,))
    articles = [
        _article(1, "محادثات في دمشق حول المياه", "ar", "دمشق"),
        _article(2, "Flooding closes roads near Ankara", "en", "Ankara"),
    ]
    not_enriched = make_raw(3)  # a RawArticle has no language block: not the public contract
    producer = KafkaProducer(**client_options(kafka.kafka), acks="all")
    for record in (*articles, not_enriched):
        producer.send(spec.name, key=record.article_id.encode(), value=encode(record)).get(30)
    producer.close()

    res = subprocess.run(
        [
            sys.executable,
            str(EXAMPLE),
            "--bootstrap-servers",
            kafka.kafka.bootstrap_servers,
            "--topic",
            spec.name,
            "--group-id",
            f"test-consumer-{unique}",
            "--from-beginning",
            "--max-records",
            "3",
            "--idle-timeout-s",
            "20",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    out = res.stdout.splitlines()
    assert res.returncode == 2, res.stdout + res.stderr  # 2: one record broke the contract
    assert "consumed 3 records: 2 valid, 1 invalid" in res.stderr
    valid = [line for line in out if line.startswith("valid ")]
    assert sorted(valid) == sorted(
        f"valid {a.article_id} [{a.language.code}] {a.source.title} | {a.entities[0].text} (LOC)"
        for a in articles
    )
    invalid = [line for line in out if line.startswith("INVALID ")]
    assert len(invalid) == 1 and "'language' is a required property" in invalid[0], out
