"""The input topic of a running stage deleted and recreated under it (issue 16.3), against the
real broker, the real index worker and the real Elasticsearch.

An operator (or a script gone wrong) deletes ``enriched`` and creates it again with the same
name and partition count while the index worker runs. What was in the deleted topic and not yet
indexed is lost by the deletion itself: Kafka dropped it, no consumer can read it any more
(records the worker had fetched but not processed go too: the deletion revokes the partitions
and faust drops its buffers). Everything written to the new topic must be indexed, none
skipped: the worker's read positions and committed offsets of the old topic (~30-100 per
partition here) lie beyond the new topic's first records (offset 0 onwards), and a consumer
that trusts them either skips the new records or drops them as "already read".

Two moments: ``idle`` (everything indexed and committed before the deletion; before the
metadata fix in ``streams.worker`` the recreated topic was not seen for 5 minutes) and
``mid-bulk`` (slow bulks: the deletion lands while the worker holds old records and drains them
through the rebalance, committing old offsets onto the new topic; before
``streams.stages.eras`` 81 of the new topic's 150 articles were never indexed).

What the test checks: the worker does not die, every article of the old topic that was indexed
before the deletion stays, every article produced to the new topic -- first fewer records per
partition than the old committed offsets (the offset-out-of-range path), then more (records at
offsets the old topic had already passed) -- is indexed exactly once, nothing is
dead-lettered, readiness is back to ready and the group's lag is 0 on the new topic.
"""

from __future__ import annotations

import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.kafka_clients import client_options
from streams.ops import LagReader
from streams.schema import Article, encode
from streams.settings import Settings
from streams.sinks.elastic import make_client
from streams.worker import group_id
from tests.integration import stage_helpers as h
from tests.integration.conftest import StageSetup
from tests.integration.fault_proxy import FaultPlan, fault_proxy
from tests.integration.test_delivery_refusals import Worker

FIRST_SEEN = datetime(2026, 11, 3, tzinfo=UTC)


def articles(start: int, n: int) -> list[Article]:
    return h.index_articles(FIRST_SEEN, range(start, start + n))


def indexed(client: Elasticsearch, alias: str) -> tuple[list[str], int]:
    """(every _id under ``alias``, the alias's document count)."""
    client.indices.refresh(index=alias, ignore_unavailable=True)
    hits = client.search(index=alias, size=10_000, source=False, ignore_unavailable=True)
    count = client.count(index=alias, ignore_unavailable=True)["count"]
    return [hit["_id"] for hit in hits["hits"]["hits"]], count


def produce(settings: Settings, batch: list[Article]) -> None:
    h.produce(
        settings,
        topics.ENRICHED.topic_name(settings.topics),
        [(a.article_id.encode(), encode(a)) for a in batch],
    )


def recreate(settings: Settings, topic: str, timeout_s: float = 60) -> float:
    """Delete ``topic``, wait until the broker no longer lists it, create it again through
    bootstrap (same partitions, same config); seconds it took."""
    from kafka import KafkaAdminClient

    started = time.monotonic()
    admin = KafkaAdminClient(**client_options(settings.kafka))
    try:
        admin.delete_topics([topic])
        deadline = time.monotonic() + timeout_s
        while topic in admin.list_topics():
            assert time.monotonic() < deadline, f"{topic} still listed {timeout_s}s after delete"
            time.sleep(0.2)
    finally:
        admin.close()
    while True:  # the broker may still be removing the old partitions: retry the create
        try:
            outcome = ensure_topics(settings, lambda _m: None, (topics.ENRICHED,))
        except Exception:  # TopicAlreadyExists while the deletion completes
            outcome = {}
        if outcome.get(topic, "").startswith("created"):
            break
        assert time.monotonic() - started < timeout_s, f"could not recreate {topic}: {outcome}"
        time.sleep(0.5)
    return time.monotonic() - started


@pytest.fixture
def isolated(stage_setup: StageSetup) -> tuple[dict[str, str], Settings]:
    return stage_setup(NEWSFLOW_OPS__LAG_INTERVAL_S="2")


@pytest.mark.parametrize("busy", [False, True], ids=["idle", "mid-bulk"])
def test_input_topic_deleted_and_recreated_under_a_running_worker(
    isolated: tuple[dict[str, str], Settings], tmp_path: Path, busy: bool
) -> None:
    env, settings = isolated
    client = make_client(settings.elastic)
    alias = settings.elastic.alias
    topic = topics.ENRICHED.topic_name(settings.topics)
    old, small, large = articles(0, 300 if busy else 90), articles(1000, 30), articles(2000, 120)
    plan = FaultPlan([], 0)
    log = tmp_path / "index.log"
    with ExitStack() as stack:
        if busy:  # slow bulks of 10: the deletion lands while the worker holds old records
            plan.bulk_delay_s = 1.0
            url = stack.enter_context(fault_proxy(settings.elastic.url, plan))
            env = {**env, "NEWSFLOW_ELASTIC__URL": url, "NEWSFLOW_INDEX__BATCH_SIZE": "10"}
        proc = stack.enter_context(h.worker("index", env, log))

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        worker = Worker(env, settings, alive)
        produce(settings, old)
        lag = LagReader(settings)
        group = group_id(settings, "index")
        try:
            if busy:  # mid-stream: a bulk in flight, more records in the worker's hands
                assert h.wait_for(lambda: len(indexed(client, alias)[0]) >= 60, 120, alive)
            else:  # idle: all indexed, the offsets (~30/partition) committed
                assert h.wait_for(lambda: len(indexed(client, alias)[0]) >= len(old), 120, alive)
                assert h.wait_for(lambda: sum(lag.lag(group, topic).values()) == 0, 30, alive)

            took = recreate(settings, topic)
            recreated_at = time.monotonic()
            plan.bulk_delay_s = 0.0
            # Fewer records per partition than the old committed offsets, then more.
            produce(settings, small)
            produce(settings, large)
            want = {a.article_id for a in small + large}

            def all_indexed() -> bool:
                return set(indexed(client, alias)[0]) >= want

            done = h.wait_for(all_indexed, 150, alive)
            recovered_s = time.monotonic() - recreated_at
            ids, count = indexed(client, alias)
            missing = want - set(ids)
            assert done, (
                f"{len(missing)} of the new topic's {len(small) + len(large)} articles never "
                f"indexed\n{log.read_text()[-6000:]}"
            )
            assert h.wait_for(lambda: worker.ready()[0] == 200, 60, alive), worker.ready()
            assert h.wait_for(lambda: sum(lag.lag(group, topic).values()) == 0, 60, alive), lag.lag(
                group, topic
            )
            time.sleep(2)
            assert worker.dead_letters() == []
        finally:
            lag.close()
    # What the worker had not processed of the old topic is gone with it (faust also drops
    # what it had fetched but not delivered when the deletion revokes the partitions).
    survivors = set(ids) & {a.article_id for a in old}
    lost = len(old) - len(survivors)
    print(
        f"\ntopic recreated ({'mid-bulk' if busy else 'idle'}) in {took:.1f}s; the new topic's "
        f"{len(want)} articles all indexed {recovered_s:.1f}s after the recreation; of the old "
        f"topic's {len(old)}, {lost} were not yet processed at the deletion and lost with it"
    )
    assert set(ids) == want | survivors
    assert count == len(ids)  # one document per article across the alias
    if not busy:
        assert lost == 0
    client.close()
