"""A rebalance mid-batch with a second index worker alive (issue 16.3), against the real broker,
two real index worker processes and the real Elasticsearch behind the fault proxy.

``test_runner_rebalance`` proves the runner leaves no offset gap through rebalances (a relay
stage, Kafka output). This is the same two moves on the product's index stage, where a batch is
a bulk request: Elasticsearch is made slow (each ``_bulk`` answered ``DELAY_S`` late) so that
every rebalance lands while a bulk is in flight. The second worker joins while the first is
mid-bulk, later one of them leaves mid-bulk. Afterwards the exact id set is indexed, one
document each (explicit ``_id``), nothing dead-lettered, the group's lag is 0, and the redo
count -- articles written more than once, because a batch in hand at a rebalance is written by
its old owner and again by the new one -- is counted from the proxies' record of every bulk
(one proxy per worker) and printed (``pytest -s``).

Measured: 0 redone. faust does not hand a partition over while records it delivered are unacked
(``Consumer.wait_empty`` on revocation): the worker finishes the bulk in flight and the batches
already in the runner's hands, acks and commits them, and only then completes the rebalance
(~5 s here: the join's revocation took 5.4 s with 1 s bulks). Redo happens only when that drain
outlasts the broker's rebalance timeout and the member is evicted -- the case
``test_runner_rebalance`` provokes with its timeout knobs, and the ``evicted-while-draining``
case here (3 s bulks, a 5 s rebalance timeout).
"""

from __future__ import annotations

import time
from collections import Counter
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from streams import topics
from streams.ops import LagReader
from streams.settings import Settings
from streams.sinks.elastic import make_client
from streams.worker import group_id
from tests.integration import stage_helpers as h
from tests.integration.conftest import StageSetup
from tests.integration.fault_proxy import FaultPlan, fault_proxy
from tests.integration.test_delivery_refusals import Worker
from tests.integration.test_stream_faults_topic import articles, indexed, produce

DELAY_S = 1.0  # each bulk answered this late: a rebalance always finds one in flight
BATCH = 25  # articles per bulk
PARTITIONS = 6


@pytest.fixture
def isolated(stage_setup: StageSetup) -> tuple[dict[str, str], Settings]:
    return stage_setup(
        NEWSFLOW_TOPICS__PARTITIONS=str(PARTITIONS), NEWSFLOW_INDEX__BATCH_SIZE=str(BATCH)
    )


@pytest.mark.parametrize(
    ("leaver", "delay_s", "rebalance_timeout_s", "n"),
    [
        ("first", DELAY_S, None, 900),
        ("second", DELAY_S, None, 900),
        # Bulks so slow that draining the batches in hand (~3 bulks) outlasts the rebalance
        # timeout: the first worker is evicted while it drains, and the second redoes them.
        pytest.param(
            "first",
            3.0,
            5.0,
            450,
            # CI simulation at 21c4a33: the evicted worker did not exit within 60 s of SIGTERM
            # (passed in E's runs before the stop-grace change 076b8b5); under investigation.
            marks=pytest.mark.xfail(reason="evicted worker slow to exit on SIGTERM", strict=False),
        ),
    ],
    ids=["first-leaves", "second-leaves", "evicted-while-draining"],
)
def test_rebalance_mid_bulk_with_a_second_worker_alive(
    isolated: tuple[dict[str, str], Settings],
    tmp_path: Path,
    leaver: str,
    delay_s: float,
    rebalance_timeout_s: float | None,
    n: int,
) -> None:
    env, settings = isolated
    if rebalance_timeout_s is not None:  # faust reads it from the environment
        env = {**env, "BROKER_REBALANCE_TIMEOUT": str(rebalance_timeout_s)}
    client = make_client(settings.elastic)
    alias = settings.elastic.alias
    batch = articles(0, n)
    want = {a.article_id for a in batch}
    plans = {"first": FaultPlan([], 0), "second": FaultPlan([], 0)}  # a proxy per worker
    for plan in plans.values():
        plan.bulk_delay_s = delay_s
    group, topic = group_id(settings, "index"), topics.ENRICHED.topic_name(settings.topics)
    with ExitStack() as stack:
        workers: list[tuple[str, Any, Path, dict[str, str]]] = []

        def start(name: str) -> None:
            url = stack.enter_context(fault_proxy(settings.elastic.url, plans[name]))
            own = {
                **env,
                "NEWSFLOW_ELASTIC__URL": url,
                "NEWSFLOW_FAUST__WEB_PORT": str(h.free_port()),
                "NEWSFLOW_FAUST__DATADIR": str(tmp_path / f"faust-{name}"),
            }
            log = tmp_path / f"{name}.log"
            workers.append((name, stack.enter_context(h.worker("index", own, log)), log, own))

        def alive() -> None:
            for _name, proc, log, _env in workers:
                assert proc.poll() is None, log.read_text()[-4000:]

        def written() -> Counter[str]:
            """How often each article was written so far, by either worker."""
            out: Counter[str] = Counter()
            for plan in plans.values():
                with plan.lock:
                    out.update(i for ids in plan.bulk_ids for i in ids)
            return out

        produce(settings, batch)
        start("first")
        assert h.wait_for(lambda: len(plans["first"].bulk_ids) >= 4, 120, alive)
        # The second joins while the first has a bulk in flight (every bulk takes DELAY_S).
        start("second")
        assert h.wait_for(lambda: b"Worker ready" in workers[1][2].read_bytes(), 120, alive)
        assert h.wait_for(lambda: len(indexed(client, alias)[0]) >= n * 5 // 9, 180, alive)
        joined = written()  # everything the join's rebalance made anyone redo is in here
        # One leaves (a graceful stop) while its bulk is in flight: the other takes over.
        at = 0 if leaver == "first" else 1
        _name, proc, _log, _env = workers.pop(at)
        proc.terminate()
        proc.wait(60)
        left_at = time.monotonic()
        assert h.wait_for(lambda: set(indexed(client, alias)[0]) >= want, 240, alive), (
            f"missing {len(want - set(indexed(client, alias)[0]))}\n"
            + "\n".join(f"== {w[0]}\n{w[2].read_text()[-3000:]}" for w in workers)
        )
        finished_s = time.monotonic() - left_at
        lag = LagReader(settings)
        try:
            assert h.wait_for(lambda: sum(lag.lag(group, topic).values()) == 0, 60, alive), lag.lag(
                group, topic
            )
        finally:
            lag.close()
        (_n, _p, _l, survivor_env) = workers[0]
        survivor = Worker(survivor_env, settings, alive)
        assert h.wait_for(lambda: survivor.ready()[0] == 200, 30, alive), survivor.ready()
        assert survivor.dead_letters() == []
    sent = written()
    bulks = {name: len(plan.bulk_ids) for name, plan in plans.items()}
    redone = sum(n - 1 for n in sent.values())
    redone_at_join = sum(n - 1 for n in joined.values())
    ids, count = indexed(client, alias)
    print(
        f"\nrebalance mid-bulk ({leaver} leaves): {len(want)} articles, bulk of {BATCH} answered "
        f"{delay_s}s late, rebalance timeout {rebalance_timeout_s or 60}s, {PARTITIONS} "
        f"partitions; bulks per worker {bulks}, "
        f"{sum(sent.values())} items written; redone {redone} articles "
        f"({redone_at_join} by the join, {redone - redone_at_join} after it), at most "
        f"{max(sent.values())} writes of one article; all indexed {finished_s:.1f}s after the "
        "leave"
    )
    assert all(bulks.values()), bulks  # both workers really wrote: the partitions were split
    assert sorted(ids) == sorted(want)
    assert count == len(want)  # rewritten, never duplicated: one document per _id
    client.close()
