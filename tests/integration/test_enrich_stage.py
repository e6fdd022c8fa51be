"""The enrich stage as a real worker process: RawArticle in, Article out (language, entities,
model versions, stage stamp), poison to news.dlq.enrich, nothing lost or duplicated."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.deadletter import parse_headers
from streams.enrich.entities import entity_key
from streams.kafka_clients import client_options
from streams.schema import Article, RawArticle, decode, encode
from streams.settings import Settings
from tests.conftest import make_raw
from tests.integration import stage_helpers as h

SEED = Path(__file__).resolve().parents[2] / "deploy" / "demo" / "seed-article-ar.txt"


def _raws() -> list[RawArticle]:
    now = datetime.now(UTC)
    text = SEED.read_text(encoding="utf-8")
    seed = make_raw(100, hint="ar", now=now)
    seed = seed.model_copy(
        update={
            "source": seed.source.model_copy(
                update={"title": text.splitlines()[0][:90], "summary": "", "content": text}
            )
        }
    )
    english = [
        make_raw(i, title="Turkey and Syria sign a defence deal in Ankara", now=now)
        for i in range(6)
    ]
    french = make_raw(200, hint="fr", now=now)
    french = french.model_copy(
        update={
            "source": french.source.model_copy(
                update={
                    "title": "Le président Emmanuel Macron reçoit le chancelier à Paris",
                    "summary": "La rencontre a eu lieu à l'Élysée.",
                }
            )
        }
    )
    return [seed, *english, french]


def test_enrich_worker(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = h.isolated_env(kafka, unique, tmp_path)
    settings = h.settings_for(env, monkeypatch)
    ensure_topics(settings, lambda _m: None)
    raws = _raws()
    records = [(r.article_id.encode(), encode(r)) for r in raws]
    records.insert(3, (b"poison", b'{"schema_version": "1.0"}'))
    h.produce(settings, topics.STAGES["enrich"]["input"].topic_name(settings.topics), records)

    log = tmp_path / "enrich.log"
    with h.worker("enrich", env, log) as proc:

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        out = h.read_all(
            settings, topics.ENRICHED.topic_name(settings.topics), len(raws), 180, alive
        )
        letters = h.read_all(settings, topics.DLQ_ENRICH.topic_name(settings.topics), 1, 30, alive)

    articles = {a.article_id: a for a in (decode(Article, bytes(m.value)) for m in out)}
    assert len(out) == len(raws), log.read_text()[-3000:]  # none lost, none duplicated
    assert set(articles) == {r.article_id for r in raws}
    seed = articles[raws[0].article_id]
    assert seed.language.code == "ar" and seed.language.script == "Arab"
    keys = {(e.type, e.normalized) for e in seed.entities}
    for kind, name in [
        ("PER", "زكي أكتورك"),
        ("ORG", "وزارة الدفاع التركية"),
        ("LOC", "سوريا"),
        ("LOC", "أنقرة"),
    ]:
        assert (kind, entity_key(name)) in keys, sorted(keys)
    for ent in seed.entities:  # offsets point into the record's own text
        for m in ent.mentions:
            text = getattr(seed.source, m.field)
            assert text[m.start : m.end]
    assert [s.stage for s in seed.pipeline.stages] == ["connector", "enrich"]
    assert "langid" in seed.pipeline.models and any(
        k.startswith("ner") for k in seed.pipeline.models
    )
    assert articles[raws[-1].article_id].language.code == "fr"
    assert articles[raws[1].article_id].language.code == "en"
    assert len(letters) == 1 and bytes(letters[0].key) == b"poison"
    headers = parse_headers(letters[0].headers)
    assert headers["stage"] == "enrich" and headers["error-class"] == "ValidationError"


def test_two_enrich_workers_share_the_partitions(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = h.isolated_env(kafka, unique, tmp_path)  # 3 partitions
    settings = h.settings_for(env, monkeypatch)
    ensure_topics(settings, lambda _m: None)
    second_env = {
        **env,
        "NEWSFLOW_FAUST__WEB_PORT": str(h.free_port()),
        "NEWSFLOW_FAUST__DATADIR": str(tmp_path / "faust-2"),
    }
    group = f"{env['NEWSFLOW_FAUST__APP_ID']}-enrich"
    admin = KafkaAdminClient(**client_options(settings.kafka))
    logs = (tmp_path / "w1.log", tmp_path / "w2.log")
    with h.worker("enrich", env, logs[0]) as w1, h.worker("enrich", second_env, logs[1]) as w2:

        def alive() -> None:
            for proc, log in ((w1, logs[0]), (w2, logs[1])):
                assert proc.poll() is None, log.read_text()[-3000:]

        def both_assigned() -> bool:
            desc = admin.describe_groups([group])[group]
            return desc["group_state"] == "Stable" and len(desc["members"]) == 2

        assert h.wait_for(both_assigned, 90, alive), admin.describe_groups([group])
        raws = [make_raw(i, title=f"Ankara talks, round {i}") for i in range(90)]
        h.produce(
            settings,
            topics.STAGES["enrich"]["input"].topic_name(settings.topics),
            [(r.article_id.encode(), encode(r)) for r in raws],
        )
        out = h.read_all(
            settings, topics.ENRICHED.topic_name(settings.topics), len(raws), 120, alive
        )
    admin.close()
    got = [decode(Article, bytes(m.value)).article_id for m in out]
    assert sorted(set(got)) == sorted(r.article_id for r in raws)  # nothing lost
    assert len(got) == len(raws)  # a stable group: nothing processed twice either
