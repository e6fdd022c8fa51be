"""Wrong credentials on the secure three-broker stack (issue 16.1, the done-when's credential
fault), with the real index worker as a process.

The stack is ``secure_stack``: three KRaft brokers with SASL_SSL (SCRAM-SHA-512) and an
Elasticsearch with security on. Articles wait in the enriched topic (replication factor 3,
``min.insync.replicas`` 2, made by the real bootstrap). Then:

1. the index worker with a wrong Kafka SASL password: it stops at start with an error line that
   names the SASL authentication failure, the user and the variables to fix (the library alone
   only said "Unable to bootstrap"); it is never ready, consumes nothing (its group commits no
   offset) and dead-letters nothing;
2. the index worker with the right Kafka password but a wrong Elasticsearch password: it runs
   and waits -- /health/ready answers 503 naming the Elasticsearch authentication failure and
   the user --, indexes nothing, dead-letters nothing and commits no offset;
3. the index worker with the right credentials: exactly the ids fed are indexed, each once
   (counted by id across the alias), nothing dead-lettered, the group's lag is 0.

The Elasticsearch refusal itself (wrong password, revoked API key, readiness wording) is
covered in depth by tests/integration/test_elastic_security.py against the secure Elasticsearch
with the single-broker Kafka; step 2 repeats its essentials on the secure cluster only.
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

from streams import topics
from streams.infra import secrets
from streams.kafka_clients import client_options
from streams.schema import encode
from streams.settings import Settings
from streams.sinks.elastic import make_client
from streams.worker import group_id
from tests.e2e.pipeline import settings_from
from tests.integration import stage_helpers as h
from tests.integration.secure_stack import ensure_up

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(300)]

ARTICLES = 300
FIRST_SEEN = datetime(2026, 11, 3, tzinfo=UTC)
TITLE = "Ankara und Damaskus unterzeichnen ein Abkommen"


def _ready(port: str) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{port}/health/ready"
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read() or b"{}")
    except OSError:  # not serving (yet, or any more)
        return 0, {}


class Cluster:
    """Reads of what the worker did: committed offsets, lag, dead letters, documents."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.group = group_id(settings, "index")
        self.source = topics.ENRICHED.topic_name(settings.topics)

    def committed(self) -> dict[int, int]:
        """Partition -> offset the index group committed on its input (absent: none)."""
        admin = KafkaAdminClient(**client_options(self.settings.kafka), request_timeout_ms=10_000)
        try:
            parts = [TopicPartition(self.source, p) for p in range(3)]
            found = admin.list_group_offsets({self.group: parts}).get(self.group, {})
        finally:
            admin.close()
        return {tp.partition: m.offset for tp, m in found.items() if m.offset >= 0}

    def end_offsets(self) -> dict[int, int]:
        consumer = KafkaConsumer(**client_options(self.settings.kafka))
        try:
            parts = [TopicPartition(self.source, p) for p in range(3)]
            return {tp.partition: n for tp, n in consumer.end_offsets(parts).items()}
        finally:
            consumer.close()

    def dead_letters(self) -> dict[str, int]:
        """Records in each dead-letter topic (end offsets: no read needed)."""
        consumer = KafkaConsumer(**client_options(self.settings.kafka))
        try:
            out = {}
            for spec in topics.DEAD_LETTER_TOPICS:
                name = spec.topic_name(self.settings.topics)
                parts = [TopicPartition(name, p) for p in consumer.partitions_for_topic(name) or []]
                out[spec.name] = sum(consumer.end_offsets(parts).values())
            return out
        finally:
            consumer.close()

    def documents(self) -> Counter[str]:
        """Documents per id across the alias (every monthly index; >1 = duplicate)."""
        from elasticsearch.helpers import scan

        es = make_client(self.settings.elastic)
        alias = self.settings.elastic.alias
        try:
            if not es.indices.exists_alias(name=alias):
                return Counter()
            es.indices.refresh(index=alias)
            return Counter(
                hit["_id"]
                for hit in scan(es, index=alias, query={"query": {"match_all": {}}}, size=1000)
            )
        finally:
            es.close()


@pytest.fixture
def isolated(secure_stack: Settings, unique: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Worker environment on the secure stack with topics, groups and indices of its own; the
    topics and indices are removed afterwards."""
    ensure_up(secure_stack.infra)  # whole again if another session just stopped a broker
    env = {
        **h.isolated_env(secure_stack, unique, tmp_path),
        **secrets.client_env(secure_stack.infra),
        "NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX": f"test-dead-letters-{unique}",
        "NEWSFLOW_KAFKA__CLIENT_ID": f"test-{unique}",
    }
    yield env
    settings = settings_from(env)
    es = make_client(settings.elastic)
    prefix = settings.elastic.index_prefix
    dead = settings.elastic.dead_letter_index
    es.options(ignore_status=404).indices.delete(
        index=f"{prefix}-*,{prefix}_r*,{dead}", ignore_unavailable=True
    )
    es.options(ignore_status=404).indices.delete_index_template(name=prefix)
    es.options(ignore_status=404).indices.delete_index_template(name=dead)
    es.close()
    admin = KafkaAdminClient(**client_options(settings.kafka), request_timeout_ms=15_000)
    try:
        mine = [t for t in admin.list_topics() if t.startswith(settings.topics.namespace)]
        if mine:
            admin.delete_topics(mine)
    finally:
        admin.close()


def _alive(proc: Any, log: Path) -> Callable[[], None]:
    def check() -> None:
        assert proc.poll() is None, log.read_text(errors="replace")[-4000:]

    return check


def test_wrong_kafka_then_wrong_elastic_password_then_the_right_ones(
    isolated: dict[str, str], tmp_path: Path
) -> None:
    env = isolated
    settings = settings_from(env)
    assert settings.kafka.security_protocol == "SASL_SSL"
    assert settings.topics.replication_factor == 3
    h.bootstrap_isolated(settings)
    cluster = Cluster(settings)
    articles = h.index_articles(FIRST_SEEN, range(ARTICLES), "de", TITLE)
    expected = {a.article_id for a in articles}
    h.produce(settings, cluster.source, [(a.article_id.encode(), encode(a)) for a in articles])
    assert sum(cluster.end_offsets().values()) == ARTICLES
    port = env["NEWSFLOW_FAUST__WEB_PORT"]
    user = settings.kafka.sasl_username
    figures: dict[str, float] = {}

    # 1. A wrong Kafka password: a clear error, never ready, nothing consumed.
    wrong_kafka = "not-the-password-" + os.urandom(4).hex()
    log = tmp_path / "index-wrong-kafka.log"
    began = time.monotonic()
    statuses: set[int] = set()
    with h.worker("index", {**env, "NEWSFLOW_KAFKA__SASL_PASSWORD": wrong_kafka}, log) as proc:
        deadline = time.monotonic() + 120
        while proc.poll() is None and time.monotonic() < deadline:
            statuses.add(_ready(port)[0])
            time.sleep(0.2)
        code = proc.poll()
    text = log.read_text(errors="replace")
    figures["wrong_kafka_exit_s"] = time.monotonic() - began
    assert code not in (None, 0), f"the worker kept running (or exited 0):\n{text[-3000:]}"
    assert 200 not in statuses, "ready with a wrong Kafka password"
    clear = [line for line in text.splitlines() if "SASL authentication failed" in line]
    assert clear, f"no line names the SASL authentication failure:\n{text[-4000:]}"
    assert f"user '{user}'" in clear[-1] and "NEWSFLOW_KAFKA__SASL_" in clear[-1], clear[-1]
    assert wrong_kafka not in text and settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() not in text
    assert cluster.committed() == {}, "the worker committed offsets: it consumed"
    assert sum(cluster.dead_letters().values()) == 0
    assert not cluster.documents()

    # 2. The right Kafka password, a wrong Elasticsearch password: waits, says why.
    wrong_es = "not-the-password-" + os.urandom(4).hex()
    log = tmp_path / "index-wrong-es.log"
    began = time.monotonic()
    with h.worker("index", {**env, "NEWSFLOW_ELASTIC__PASSWORD": wrong_es}, log) as proc:
        alive = _alive(proc, log)
        seen: dict[str, Any] = {}

        def named() -> bool:
            status, report = _ready(port)
            seen.update(status=status, report=report)
            problem = str(report.get("problems", {}).get("elasticsearch", ""))
            return status == 503 and "authentication failed (401)" in problem

        assert h.wait_for(named, 120, alive), f"readiness never named the 401: {seen}"
        figures["wrong_es_reported_s"] = time.monotonic() - began
        problem = str(seen["report"]["problems"]["elasticsearch"])
        assert f"user {settings.elastic.username}" in problem, problem
        assert wrong_es not in problem
        time.sleep(3)  # retries go on; nothing may be dead-lettered, indexed or acked meanwhile
        assert _ready(port)[0] == 503
        assert sum(cluster.dead_letters().values()) == 0
        assert not cluster.documents()
        assert sum(cluster.committed().values()) == 0, cluster.committed()
    assert wrong_es not in log.read_text(errors="replace")

    # 3. The right credentials: exactly the ids fed, once each; lag 0; nothing dead-lettered.
    log = tmp_path / "index-right.log"
    began = time.monotonic()
    with h.worker("index", env, log) as proc:
        alive = _alive(proc, log)
        assert h.wait_for(lambda: len(cluster.documents()) >= ARTICLES, 120, alive), log.read_text(
            errors="replace"
        )[-4000:]
        figures["indexed_after_fix_s"] = time.monotonic() - began
        assert h.wait_for(lambda: cluster.committed() == cluster.end_offsets(), 60, alive), (
            cluster.committed(),
            cluster.end_offsets(),
        )
        assert h.wait_for(lambda: _ready(port)[0] == 200, 30, alive), _ready(port)
        time.sleep(3)  # a late duplicate would show now
        docs = cluster.documents()
        letters = cluster.dead_letters()
    print(
        f"\ncredentials on the secure 3-broker cluster, {ARTICLES} articles: "
        + ", ".join(f"{k} {v:.1f}" for k, v in figures.items())
        + f"; last Kafka error line: {clear[-1][-220:]}"
    )
    assert set(docs) == expected, (
        f"missing {len(expected - set(docs))}, extra {set(docs) - expected}"
    )
    assert max(docs.values()) == 1, [k for k, n in docs.items() if n > 1][:5]
    assert sum(letters.values()) == 0, letters
