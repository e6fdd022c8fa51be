"""Elasticsearch faults under the real index worker, real Kafka and real Elasticsearch (issue 16.3).

1. **Disk flood stage, for real.** The test turns the local cluster's disk threshold on
   (``cluster.routing.allocation.disk.threshold_enabled``) with absolute watermarks above the
   disk's free space, so Elasticsearch itself finds the node past the flood stage and puts
   ``index.blocks.read_only_allow_delete`` on the index (bulk items then answer 429
   ``cluster_block_exception``). The worker must wait: nothing dead-lettered, nothing skipped,
   readiness names the block. When the watermarks are restored Elasticsearch (8+) lifts the block
   by itself (the test checks it does, without touching the index) and the exact id set is
   indexed, one document each. The cluster settings are restored in ``finally`` whatever
   happens. The block lands on every index of the node: the window is kept to seconds, and any
   index that got the block during it and still has it afterwards is released by the test.
2. **Elasticsearch slower than the request timeout.** Through the fault proxy every ``_bulk``
   is applied by Elasticsearch but answered later than ``elastic.request_timeout_s`` (2 s here):
   the client times out, the sink retries, Elasticsearch applies the same bulk again (explicit
   ``_id``: the same documents, a higher ``_version``). No dead letter, no duplicate document,
   the exact id set; the bulk attempts and the recovery time after the delay is removed are
   printed (``pytest -s``).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from streams import topics
from streams.ops import LagReader
from streams.settings import Settings
from streams.sinks.elastic import index_for, make_client
from streams.worker import group_id
from tests.integration import stage_helpers as h
from tests.integration.conftest import StageSetup
from tests.integration.fault_proxy import FaultPlan, fault_proxy
from tests.integration.test_delivery_refusals import Worker
from tests.integration.test_stream_faults_topic import FIRST_SEEN, articles, indexed, produce

BLOCK = "index.blocks.read_only_allow_delete"
DISK = "cluster.routing.allocation.disk"
WATERMARKS = (f"{DISK}.watermark.low", f"{DISK}.watermark.high", f"{DISK}.watermark.flood_stage")


@pytest.fixture
def isolated(stage_setup: StageSetup) -> tuple[dict[str, str], Settings]:
    return stage_setup(NEWSFLOW_OPS__LAG_INTERVAL_S="2")


def blocked(client: Elasticsearch) -> set[str]:
    """The indices that carry the flood-stage block now."""
    found = client.indices.get_settings(index="_all", name=BLOCK, flat_settings=True)
    return {
        index
        for index, body in found.body.items()
        if str(body.get("settings", {}).get(BLOCK)).lower() == "true"
    }


@contextmanager
def flood_stage(client: Elasticsearch) -> Iterator[dict[str, Any]]:
    """The node past its flood-stage watermark until the caller sets ``state["restore"]()``;
    every cluster setting put back and every block this window set lifted on exit."""
    before = blocked(client)
    stats = client.nodes.stats(metric="fs")
    free = min(n["fs"]["total"]["available_in_bytes"] for n in stats["nodes"].values())
    mib = 2**20
    # What the cluster had (persistent); anything not set is put back to unset (None).
    had = client.cluster.get_settings(flat_settings=True)["persistent"]
    others = ("cluster.info.update.interval", f"{DISK}.threshold_enabled")

    def restore_watermarks() -> None:
        client.cluster.put_settings(persistent={key: had.get(key) for key in WATERMARKS})

    state: dict[str, Any] = {"restore": restore_watermarks}
    try:
        client.cluster.put_settings(
            persistent={
                "cluster.info.update.interval": "10s",  # the minimum (default 30 s)
                f"{DISK}.threshold_enabled": True,
                # Absolute values are free space: low > high > flood, all above what is free.
                WATERMARKS[0]: f"{(free + 30 * 2**30) // mib}mb",
                WATERMARKS[1]: f"{(free + 20 * 2**30) // mib}mb",
                WATERMARKS[2]: f"{(free + 10 * 2**30) // mib}mb",
            }
        )
        yield state
    finally:
        restore_watermarks()
        # Elasticsearch releases its own blocks only while the threshold is on: wait for that.
        deadline = time.monotonic() + 40
        while blocked(client) - before and time.monotonic() < deadline:
            time.sleep(1)
        client.cluster.put_settings(persistent={key: had.get(key) for key in others})
        left = sorted(blocked(client) - before)
        if left:  # not released in time: lift what this window set, nothing else
            client.indices.put_settings(index=",".join(left), settings={BLOCK: None})


def wait_until(predicate: Any, timeout_s: float, alive: Any) -> float:
    """Seconds until ``predicate()`` held; fails after ``timeout_s``."""
    started = time.monotonic()
    assert h.wait_for(predicate, timeout_s, alive), f"not within {timeout_s}s"
    return time.monotonic() - started


def test_disk_flood_stage_blocks_writes_until_disk_is_freed(
    isolated: tuple[dict[str, str], Settings], tmp_path: Path
) -> None:
    env, settings = isolated
    client = make_client(settings.elastic)
    alias = settings.elastic.alias
    index = index_for(settings.elastic, FIRST_SEEN)
    before, during = articles(0, 40), articles(500, 80)
    want = {a.article_id for a in before + during}
    log = tmp_path / "index.log"
    with h.worker("index", env, log) as proc:

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        worker = Worker(env, settings, alive)
        produce(settings, before)
        wait_until(lambda: len(indexed(client, alias)[0]) >= len(before), 120, alive)
        with flood_stage(client) as flood:
            block_s = wait_until(lambda: index in blocked(client), 60, alive)
            produce(settings, during)
            report = worker.wait_refused("write_block")
            problem = report["problems"]["elasticsearch"]
            assert "read-only-allow-delete" in problem and "cluster_block_exception" in problem, (
                problem
            )
            time.sleep(3)  # the retries go on: nothing dead-lettered, nothing skipped
            assert worker.dead_letters() == []
            assert sorted(indexed(client, alias)[0]) == sorted(a.article_id for a in before)

            flood["restore"]()  # disk "freed": Elasticsearch must lift the block by itself
            released = time.monotonic()
            release_s = wait_until(lambda: index not in blocked(client), 60, alive)
            wait_until(lambda: set(indexed(client, alias)[0]) >= want, 90, alive)
            indexed_s = time.monotonic() - released
        lag = LagReader(settings)
        try:
            group, topic = group_id(settings, "index"), topics.ENRICHED.topic_name(settings.topics)
            wait_until(lambda: sum(lag.lag(group, topic).values()) == 0, 60, alive)
        finally:
            lag.close()
        wait_until(lambda: worker.ready()[0] == 200, 30, alive)
        ready_s = time.monotonic() - released
        assert worker.refused_gauge("write_block") == 0.0
        time.sleep(2)
        assert worker.dead_letters() == []
    ids, count = indexed(client, alias)
    print(
        f"\nflood stage: block set by Elasticsearch {block_s:.1f}s after the watermarks; "
        f"lifted by it {release_s:.1f}s after they were restored; all {len(want)} articles "
        f"indexed {indexed_s:.1f}s and the worker ready {ready_s:.1f}s after the restore"
    )
    assert sorted(ids) == sorted(want)
    assert count == len(want)
    client.close()


def test_elasticsearch_slower_than_the_request_timeout(
    isolated: tuple[dict[str, str], Settings], tmp_path: Path
) -> None:
    env, settings = isolated
    client = make_client(settings.elastic)
    alias = settings.elastic.alias
    batch = articles(0, 60)
    want = {a.article_id for a in batch}
    plan = FaultPlan([], 0)
    plan.bulk_delay_s = 5.0  # > the 2 s request timeout: every bulk times out, applied anyway
    with fault_proxy(settings.elastic.url, plan) as url:
        slow = {**env, "NEWSFLOW_ELASTIC__URL": url, "NEWSFLOW_ELASTIC__REQUEST_TIMEOUT_S": "2"}
        log = tmp_path / "index.log"
        with h.worker("index", slow, log) as proc:

            def alive() -> None:
                assert proc.poll() is None, log.read_text()[-4000:]

            worker = Worker(env, settings, alive)
            produce(settings, batch)

            def timed_out() -> bool:
                status, report = worker.ready()
                problem = str(report.get("problems", {}).get("elasticsearch", "")).lower()
                said = "timed out" in problem or "timeout" in problem
                return status == 503 and said and len(plan.bulk_ids) >= 3

            wait_until(timed_out, 90, alive)
            slow_attempts = len(plan.bulk_ids)
            # Elasticsearch applied the timed-out bulks: the documents are there already, yet
            # the worker has not acked them (it never saw an answer) and keeps retrying.
            assert worker.dead_letters() == []
            plan.bulk_delay_s = 0.0
            fixed = time.monotonic()
            lag = LagReader(settings)
            try:
                group = group_id(settings, "index")
                topic = topics.ENRICHED.topic_name(settings.topics)
                wait_until(lambda: sum(lag.lag(group, topic).values()) == 0, 90, alive)
            finally:
                lag.close()
            acked_s = time.monotonic() - fixed
            wait_until(lambda: worker.ready()[0] == 200, 30, alive)
            ready_s = time.monotonic() - fixed
            time.sleep(2)
            assert worker.dead_letters() == []
    ids, count = indexed(client, alias)
    sent = Counter(i for bulk in plan.bulk_ids for i in bulk)
    versions = client.search(index=alias, size=1000, source=False, version=True)["hits"]["hits"]
    rewritten = sum(1 for hit in versions if hit["_version"] > 1)
    print(
        f"\nslow Elasticsearch (answers 5 s, timeout 2 s): {slow_attempts} bulk attempts while "
        f"slow, {len(plan.bulk_ids)} in all; items sent {sum(sent.values())} for {len(want)} "
        f"articles (max {max(sent.values())} per article); {rewritten} documents written more "
        f"than once by Elasticsearch (timed-out bulks applied); after the delay was removed all "
        f"acked in {acked_s:.1f}s, ready in {ready_s:.1f}s"
    )
    assert sorted(ids) == sorted(want)
    assert count == len(want)  # retried writes are overwrites of the same _id: no duplicate
    assert slow_attempts >= 3
    client.close()
