"""One broker of the secure three-broker cluster SIGKILLed under load, and later restarted
(issue 16.2, the done-when's broker fault).

The stack is ``secure_stack`` (tests/integration/secure_stack.py): three KRaft brokers with a
SASL_SSL (SCRAM-SHA-512) listener and an Elasticsearch with security on (HTTPS, file-realm
user). The pipeline is the real one as processes (tests/e2e/pipeline.py): ``newsflow connect``
polling a local feed server, ``newsflow worker extract``, ``enrich`` and ``index``, topics made
by the real bootstrap with replication factor 3 and ``min.insync.replicas`` 2, every producer
acks=all.

Load: 20 feeds of 25 items served at the start, then, once the first documents are indexed,
5 more items per feed each time the connector has fetched every feed (at most every 4 s, so the
load spans the outage and the restart), up to 2,000 articles. Three steps later the broker
leading the most partitions of the pipeline's topics is killed with SIGKILL (its whole process
group, as a lost node), left dead for 20 s while the load goes on, then started again with the
real `newsflow infra up` (which starts only the missing broker).

Checked: every process stays alive; the connector, enrich and index all make progress while the
broker is dead; partitions are under-replicated during the outage and none are after the
restart; every consumer group's lag returns to 0; Elasticsearch holds exactly the ids of every
feed body served, each once (no duplicate across the alias), nothing dead-lettered.

Measured and printed (``pytest -s``): records redone per stage (records in the stage's output
topic beyond one per id, and documents written more than once), seconds from the kill to the
first progress of each stage, how long the restart took, seconds from the restart until every
partition's ISR is full again, the lag at the kill and when the broker was back, and from the
restart (and the last load step) until lag 0.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaAdminClient
from kafka.admin import ConfigResource, ConfigResourceType

from streams import topics
from streams.infra import kafka as cluster
from streams.infra import secrets
from streams.kafka_clients import client_options
from streams.settings import Settings
from streams.sinks.elastic import make_client
from tests.e2e.pipeline import Pipeline, pipeline, wait_until
from tests.integration.secure_stack import ensure_up

pytestmark = [pytest.mark.cluster, pytest.mark.timeout(480)]

FEEDS, ITEMS = 20, 25  # 500 articles at the start
STEP, LAST_GENERATION = 5, 75  # then 5 new items per feed per step: 2,000 in all
STEP_EVERY_S = 4.0  # at most one step per 4 s: the load spans the outage and the restart
OUTAGE_S = 20.0
PIPELINE_TOPICS = (topics.RAW, topics.EXTRACTED, topics.ENRICHED)
# stage -> the topic it writes (its redone work shows as records beyond one per key)
OUTPUTS = {"connector": topics.RAW, "extract": topics.EXTRACTED, "enrich": topics.ENRICHED}


class Admin:
    """The cluster as the metadata says: leaders, ISR, topic configs."""

    def __init__(self, settings: Settings) -> None:
        self.client = KafkaAdminClient(
            **client_options(settings.kafka),
            request_timeout_ms=5000,
            client_id="test-cluster-broker-kill",
        )

    def partitions(self, names: list[str]) -> list[dict[str, Any]]:
        return [
            {**p, "topic": t["name"]}
            for t in self.client.describe_topics(names)
            for p in t["partitions"]
        ]

    def leaders(self, names: list[str]) -> Counter[int]:
        return Counter(p["leader_id"] for p in self.partitions(names))

    def under_replicated(self, names: list[str]) -> int:
        return sum(len(p["isr_nodes"]) < len(p["replica_nodes"]) for p in self.partitions(names))

    def topic_config(self, name: str) -> dict[str, str]:
        found = self.client.describe_configs([ConfigResource(ConfigResourceType.TOPIC, name)])
        return {k: v["value"] for k, v in found["topic"][name].items()}

    def close(self) -> None:
        self.client.close()


@contextlib.contextmanager
def admin(settings: Settings) -> Iterator[Admin]:
    view = Admin(settings)
    try:
        yield view
    finally:
        view.close()


class Feeder:
    """Publishes the next ``STEP`` generations each time the connector fetched every feed
    since the last publish: the load never pauses on its own, and no generation is skipped
    (so the union of the bodies served is exactly what must be indexed)."""

    def __init__(self, pipe: Pipeline) -> None:
        self.pipe = pipe
        self.done_at = 0.0  # wall clock of the last step
        self.stepped_at = 0.0

    @property
    def done(self) -> bool:
        return self.pipe.generation >= LAST_GENERATION

    def tick(self) -> None:
        pipe = self.pipe
        if self.done or time.time() - self.stepped_at < STEP_EVERY_S:
            return
        if all(pipe.server.hits[p] > n for p, n in pipe._marks.items()):
            self.stepped_at = time.time()
            pipe.publish(min(LAST_GENERATION, pipe.generation + STEP))
            if self.done:
                self.done_at = time.time()


class Sampler(threading.Thread):
    """Documents in the index every 0.25 s (Elasticsearch does not depend on the broker, so a
    sample is never held up by the outage)."""

    def __init__(self, pipe: Pipeline) -> None:
        super().__init__(daemon=True, name="index-sampler")
        self.alias = pipe.settings.elastic.alias
        self.es = make_client(pipe.settings.elastic)
        self.samples: list[tuple[float, int]] = []  # (wall clock, count)
        self.stop = threading.Event()

    def count(self) -> int:
        try:
            found = self.es.options(ignore_status=404).count(index=self.alias)
            return int(found.get("count") or 0)
        except Exception:  # a missed sample, not a failure
            return self.samples[-1][1] if self.samples else 0

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.samples.append((time.time(), self.count()))
                self.stop.wait(0.25)
        finally:
            self.es.close()

    @property
    def last(self) -> int:
        return self.samples[-1][1] if self.samples else 0

    def count_at(self, at: float) -> int:
        before = [n for t, n in self.samples if t <= at]
        return before[-1] if before else 0

    def first_rise_after(self, at: float) -> float | None:
        base = self.count_at(at)
        return next((t for t, n in self.samples if t > at and n > base), None)


class LagSampler(threading.Thread):
    """Every consumer group's total lag, sampled about once a second."""

    def __init__(self, pipe: Pipeline) -> None:
        super().__init__(daemon=True, name="lag-sampler")
        self.pipe = pipe
        self.samples: list[tuple[float, int]] = []  # (wall clock when answered, lag)
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            with contextlib.suppress(Exception):  # a broker just died: next time
                self.samples.append((time.time(), _lag(self.pipe)))
            self.stop.wait(1.0)

    def at(self, when: float) -> int | None:
        before = [n for t, n in self.samples if t <= when]
        return before[-1] if before else None

    def first_zero_after(self, when: float) -> float | None:
        return next((t for t, n in self.samples if t > when and n == 0), None)


def _stamps(pipe: Pipeline, spec: topics.TopicSpec) -> list[tuple[bytes | None, float]]:
    """(key, producer timestamp in seconds) of every record of ``spec`` now."""
    return [(m.key, m.timestamp / 1000.0) for m in pipe.read_topic(spec)]


def _lag(pipe: Pipeline) -> int:
    return sum(sum(per_topic.values()) for per_topic in pipe.lags().values())


def _kill_broker(pid: int) -> None:
    """SIGKILL the broker's process group (the JVM and nothing else: it was started in a
    session of its own)."""
    os.killpg(pid, signal.SIGKILL)


@pytest.fixture
def stack_whole_afterwards(secure_stack: Settings) -> Iterator[Settings]:
    """``secure_stack``, with every broker running again at the end even when the test failed
    between the kill and the restart (the next tests share the stack)."""
    yield secure_stack
    ensure_up(secure_stack.infra)


def test_one_broker_killed_under_load_and_restarted_loses_and_duplicates_nothing(
    stack_whole_afterwards: Settings, unique: str, tmp_path: Path
) -> None:
    infra = stack_whole_afterwards.infra
    began = time.monotonic()

    def stamp(what: str) -> None:
        print(f"[{time.monotonic() - began:6.1f}s] {what}", flush=True)

    env = {
        **secrets.client_env(infra),
        # The synthetic feeds link to a host that does not exist here: no page fetches.
        "NEWSFLOW_EXTRACT__FETCH_PAGES": "false",
    }
    with (
        pipeline(
            tmp_path,
            unique,
            bootstrap_servers=env["NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS"],
            elastic_url=env["NEWSFLOW_ELASTIC__URL"],
            feeds=FEEDS,
            items=ITEMS,
            seed=5,
            env=env,
        ) as pipe,
        admin(pipe.settings) as view,
    ):
        pipe.start()
        names = [pipe.topic(spec) for spec in topics.ALL]
        flow = [pipe.topic(spec) for spec in PIPELINE_TOPICS]
        for name in flow:  # what the real bootstrap made on this cluster
            parts = view.partitions([name])
            assert {len(p["replica_nodes"]) for p in parts} == {3}, parts
            assert view.topic_config(name).get("min.insync.replicas") == "2"
        # Whole before the fault (on a shared machine another session may have restarted a
        # broker just now).
        ensure_up(infra)
        wait_until(
            "every partition's ISR full before the kill",
            lambda: view.under_replicated([*names, "__consumer_offsets"]) == 0,
            180,
            pipe.alive,
        )
        stamp("pipeline started on the secure cluster (RF 3, min.insync.replicas 2)")

        sampler, lags = Sampler(pipe), LagSampler(pipe)
        sampler.start()
        lags.start()
        # The load steps begin once every stage works (first documents indexed).
        wait_until("the first documents indexed", lambda: sampler.last > 0, 240, pipe.alive)
        stamp(f"{sampler.last} indexed")
        feeder = Feeder(pipe)

        def drive() -> None:
            pipe.alive()
            feeder.tick()

        wait_until("three load steps", lambda: pipe.generation >= 3 * STEP, 90, drive)

        # The broker that leads the most partitions of the pipeline's topics.
        leaders = view.leaders(flow)
        victim_id = max((n for n in leaders if n is not None and n >= 0), key=leaders.__getitem__)
        victim = cluster.brokers(infra)[victim_id - 1]
        tracked = victim.pidfile.read()
        assert tracked is not None and tracked.alive(), f"{victim.name} is not running"
        raw_at_kill = pipe.end_offsets(topics.RAW)
        indexed_at_kill = sampler.last
        killed_at = time.time()
        _kill_broker(tracked.pid)
        wait_until(f"{victim.name} to be gone", lambda: not tracked.alive(), 30, interval_s=0.1)
        stamp(
            f"SIGKILL {victim.name} (node {victim_id}, leader of {leaders[victim_id]} of "
            f"{sum(leaders.values())} pipeline partitions) at generation {pipe.generation}; "
            f"{raw_at_kill} raw records, {indexed_at_kill} indexed"
        )

        under_seen = 0

        def outage_tick() -> None:
            nonlocal under_seen
            drive()
            with contextlib.suppress(Exception):  # metadata may lag the kill by seconds
                under_seen = max(under_seen, view.under_replicated(flow))

        wait_until("the outage", lambda: time.time() - killed_at >= OUTAGE_S, 60, outage_tick)
        indexed_at_restart = sampler.last
        # What an operator sees meanwhile (printed, not asserted: readiness is 16.4's).
        for stage in ("enrich", "index"):
            status, report = pipe.ready(stage)
            said = {k: v for k, v in report.items() if k in ("problems", "warnings", "kafka")}
            print(f"{stage} /health/ready during the outage: {status} {said}")
        generation_at_restart = pipe.generation
        stamp(
            f"after {OUTAGE_S:.0f} s down: {indexed_at_restart} indexed, generation "
            f"{generation_at_restart}, under-replicated partitions seen {under_seen}"
        )

        # Restart with the real `newsflow infra up` (only the missing broker starts) while the
        # load and the sampling go on.
        restart: dict[str, Any] = {}

        def do_restart() -> None:
            t0 = time.time()
            try:
                ensure_up(infra, timeout_s=300)
            except Exception as exc:  # reported by the main thread
                restart["error"] = exc
            restart["began"], restart["ready"] = t0, time.time()

        restarter = threading.Thread(target=do_restart, name="infra-up", daemon=True)
        restarter.start()
        restart_began = time.time()
        wait_until("`newsflow infra up`", lambda: not restarter.is_alive(), 300, drive)
        assert "error" not in restart, restart["error"]
        back_at = restart["ready"]
        again = victim.pidfile.read()
        assert again is not None and again.alive(), f"{victim.name} did not start again"
        stamp(f"{victim.name} restarted and in the metadata after {back_at - restart_began:.1f} s")

        wait_until(
            "every partition's ISR to be full again",
            lambda: view.under_replicated([*names, "__consumer_offsets"]) == 0,
            120,
            drive,
            interval_s=0.25,
        )
        isr_full_at = time.time()
        stamp(f"ISR full {isr_full_at - back_at:.1f} s after the broker was back")

        wait_until("the last load step", lambda: feeder.done, 120, drive)
        pipe.wait_fetched(60)
        expected = pipe.expected_ids()
        assert len(expected) == FEEDS * (ITEMS + LAST_GENERATION)
        lag_zero_after = wait_until(
            "every group's lag to reach 0 with every id indexed",
            lambda: _lag(pipe) == 0 and sampler.last >= len(expected),
            180,
            pipe.alive,
        )
        lag_zero_at = time.time()
        stamp(f"lag 0, {sampler.last} indexed")
        verdict = pipe.wait_settled(expected, timeout_s=60)
        sampler.stop.set()
        lags.stop.set()
        stamp(f"settled: {verdict.summary()}")
        assert verdict.ok, f"{verdict.summary()}\n{pipe.logs()}"

        # Progress while the broker was dead, per stage, and the work done twice.
        outputs = {stage: _stamps(pipe, spec) for stage, spec in OUTPUTS.items()}
        restart_at = restart["began"]
        figures = {}
        for stage, records in outputs.items():
            keys = Counter(k for k, _ in records)
            after = sorted(ts for _, ts in records if ts > killed_at)
            during = sum(killed_at < ts < back_at for _, ts in records)
            figures[stage] = {
                "records": len(records),
                "ids": len(keys),
                "redone": len(records) - len(keys),
                "first_after_kill_s": round(after[0] - killed_at, 2) if after else None,
                "during_outage": during,
            }
        first_doc = sampler.first_rise_after(killed_at)
        figures["index"] = {
            "documents": sum(verdict.index.by_id.values()),
            "redone": verdict.index.rewritten,  # documents written more than once
            "first_after_kill_s": round(first_doc - killed_at, 2) if first_doc else None,
            "during_outage": sampler.count_at(back_at) - sampler.count_at(killed_at),
        }
        settled_from = max(back_at, feeder.done_at)
        lag_zero = lags.first_zero_after(settled_from) or lag_zero_at
        noise = {
            name: proc.log.read_text(errors="replace").count("[ERROR]")
            for name, proc in pipe.procs.items()
        }
        print(
            f"\nbroker kill on the secure 3-broker cluster: {len(expected)} articles, killed "
            f"{victim.name} (leader of {leaders[victim_id]}/{sum(leaders.values())} pipeline "
            f"partitions): down {back_at - killed_at:.1f} s (restart began after "
            f"{restart_at - killed_at:.1f} s); under-replicated partitions seen "
            f"{under_seen}\n"
            + "".join(f"  {stage}: {fig}\n" for stage, fig in figures.items())
            + f"  restart (`infra up`) {back_at - restart_at:.1f} s; ISR full "
            f"{isr_full_at - back_at:.1f} s after the broker was back "
            f"({isr_full_at - killed_at:.1f} s after the kill); lag {lags.at(killed_at)} at "
            f"the kill, {lags.at(back_at)} when the broker was back; last load step "
            f"{feeder.done_at - killed_at:.1f} s after the kill; lag 0 "
            f"{lag_zero - settled_from:.1f} s after the broker was back and the load over "
            f"(waited {lag_zero_after:.1f} s at the end); [ERROR] lines in the logs {noise}; total "
            f"{time.monotonic() - began:.0f} s; load average {os.getloadavg()[0]:.1f}"
        )
        assert under_seen > 0, "the kill never showed as under-replicated partitions"
        for stage in ("connector", "extract", "enrich", "index"):
            assert figures[stage]["during_outage"] > 0, f"{stage} made no progress: {figures}"
