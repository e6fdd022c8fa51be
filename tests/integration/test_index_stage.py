"""The index stage as a real worker process: real Kafka in, real Elasticsearch out, dead letters
for poison records, duplicates collapsing onto one document."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams import topics
from streams.deadletter import parse_headers
from streams.schema import Article, Entity, EntityMention, LanguageInfo, encode
from streams.settings import Settings
from streams.sinks.elastic import make_client
from tests.conftest import make_raw
from tests.integration import stage_helpers as h
from tests.integration.conftest import StageSetup
from tests.integration.fault_proxy import FaultPlan, fault_proxy


def _article(n: int, start: int = 0) -> Article:
    raw = make_raw(n, now=datetime(2026, 11, 2, tzinfo=UTC))
    return Article(
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(code="en", confidence=0.9, method="text", script="Latn"),
        entities=(
            Entity(
                text="Ankara",
                type="LOC",
                normalized="ankara",
                confidence=0.8,
                count=1,
                mentions=(EntityMention(field="summary", start=start, end=start + 6),),
            ),
        ),
    )


@pytest.fixture
def isolated(stage_setup: StageSetup) -> tuple[dict[str, str], Settings]:
    return stage_setup()


def test_index_worker_writes_once_and_dead_letters_poison(
    isolated: tuple[dict[str, str], Settings], tmp_path: Path
) -> None:
    env, settings = isolated
    good = [_article(i) for i in range(40)]
    records = [(a.article_id.encode(), encode(a)) for a in good]
    records += [(good[0].article_id.encode(), encode(good[0]))] * 2  # replays: same _id
    poison_json = (b"bad-1", b"{not json")
    overflow = _article(999, start=2**31)  # valid contract, rejected by the integer mapping
    records += [poison_json, (overflow.article_id.encode(), encode(overflow))]
    topic = topics.ENRICHED.topic_name(settings.topics)
    h.produce(settings, topic, records)

    log = tmp_path / "index.log"
    with h.worker("index", env, log) as proc:

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        client = make_client(settings.elastic)
        alias = settings.elastic.alias

        def all_indexed() -> bool:
            client.indices.refresh(index=alias)
            return int(client.count(index=alias)["count"]) >= len(good)

        assert h.wait_for(all_indexed, 120, alive), log.read_text()[-4000:]
        dlq = topics.DLQ_INDEX.topic_name(settings.topics)
        letters = h.read_all(settings, dlq, 2, 60, alive)
        client.indices.refresh(index=alias)
        hits = client.search(index=alias, size=100, source=False)["hits"]["hits"]
        client.close()

    assert sorted(hit["_id"] for hit in hits) == sorted(a.article_id for a in good)
    assert len(letters) == 2
    by_key = {bytes(m.key): m for m in letters}
    bad = by_key[b"bad-1"]
    assert bad.value == b"{not json"  # original bytes kept
    headers = parse_headers(bad.headers)
    assert headers["stage"] == "index" and headers["error-class"] == "ValidationError"
    assert headers["source-topic"] == topic
    rejected = parse_headers(by_key[overflow.article_id.encode()].headers)
    assert rejected["error-class"] == "PoisonArticle"
    assert "status 400" in rejected["error-message"]


def test_elasticsearch_down_mid_stream_loses_nothing(
    isolated: tuple[dict[str, str], Settings], tmp_path: Path
) -> None:
    """The worker writes through a proxy that drops every bulk connection for a while, like
    a dead node; once it answers again, every article is there exactly once, none dead-lettered."""
    env, settings = isolated
    plan = FaultPlan(request_errors=[], item_429_rounds=0)
    plan.down = True
    articles = [_article(i) for i in range(300)]
    h.produce(
        settings,
        topics.ENRICHED.topic_name(settings.topics),
        [(a.article_id.encode(), encode(a)) for a in articles],
    )
    client = make_client(settings.elastic)
    alias = settings.elastic.alias
    with fault_proxy(settings.elastic.url, plan) as url:
        log = tmp_path / "index.log"
        with h.worker("index", {**env, "NEWSFLOW_ELASTIC__URL": url}, log) as proc:

            def alive() -> None:
                assert proc.poll() is None, log.read_text()[-4000:]

            assert h.wait_for(lambda: plan.refused_while_down >= 3, 60, alive)
            time.sleep(2)  # the batch keeps waiting; nothing may be skipped meanwhile
            plan.down = False

            def all_indexed() -> bool:
                client.indices.refresh(index=alias)
                return int(client.count(index=alias)["count"]) >= len(articles)

            assert h.wait_for(all_indexed, 90, alive), log.read_text()[-4000:]
            time.sleep(2)
            dlq = h.read_all(settings, topics.DLQ_INDEX.topic_name(settings.topics), 0, 3, alive)
    client.indices.refresh(index=alias)
    ids = [
        hit["_id"] for hit in client.search(index=alias, size=1000, source=False)["hits"]["hits"]
    ]
    client.close()
    assert sorted(ids) == sorted(a.article_id for a in articles)
    assert dlq == []
    assert "retrying" in log.read_text() or "wait" in log.read_text()
