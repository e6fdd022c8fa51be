"""A worker SIGKILLed mid-stream, against the real broker: how much its replacement redoes and
how soon it resumes (issue 14.7).

The worker runs a test-only relay stage (``python -m tests.integration.test_delivery_kill``):
the real stage runner, the real faust app of ``streams.app.create_app`` (so the consumer
session timeout and the commit policy are the product's), a plain ``process`` that sleeps per
batch in the worker thread as enrichment does. Each input record is forwarded once per time
it is processed, so the output topic counts the work per article id: an id seen twice was
redone after the kill.

Targets: at most one batch redone per input partition -- here at most one batch in all: only
the batch being finished at the kill (progress is committed after every batch, not at faust's
2.8 s tick nor only when a worker stops), and the replacement resumes within seconds of the kill
(the dead member is dropped after ``faust.session_timeout_s``, not faust's 60 s default).

Test-only knobs: NEWSFLOW_TEST_DELAY_S (seconds per batch), NEWSFLOW_TEST_BATCH (batch size).
The figures are printed (``pytest -s``) for the record.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path

import pytest

from streams.kafka_clients import client_options
from streams.schema import RawArticle, decode, encode
from streams.settings import Settings
from streams.topics import TopicSpec
from tests.integration import stage_helpers as h
from tests.integration import test_runner_rebalance as relay

PARTITIONS = 3
IN = TopicSpec("kill.in.v1", "Test input of the kill relay.", RawArticle)
OUT = TopicSpec(
    "kill.out.v1", "Test output of the kill relay: one record per processing.", RawArticle
)


# ---- the worker (runs in a subprocess) -------------------------------------------------------


if __name__ == "__main__":
    relay._relay_worker("killrelay", IN, OUT)
    sys.exit(0)


# ---- the test ---------------------------------------------------------------------------------


def _produce(settings: Settings, topic: str, raws: list[RawArticle]) -> dict[str, int]:
    """Each record to partition ``i % PARTITIONS``; returns article id -> input partition."""
    from kafka import KafkaProducer

    producer = KafkaProducer(**client_options(settings.kafka), acks="all")
    where = {}
    for i, raw in enumerate(raws):
        where[raw.article_id] = i % PARTITIONS
        producer.send(
            topic, key=raw.article_id.encode(), value=encode(raw), partition=i % PARTITIONS
        )
    producer.flush(30)
    producer.close()
    return where


def _outputs(settings: Settings, topic: str) -> list[tuple[str, float]]:
    """(article id, broker timestamp in seconds) of every output record so far."""
    from kafka import KafkaConsumer

    from streams.topic_range import assign_all, batches_until

    consumer = KafkaConsumer(**client_options(settings.kafka))
    try:
        parts, end = assign_all(consumer, topic)
        consumer.seek_to_beginning(*parts)
        return [
            (decode(RawArticle, bytes(m.value)).article_id, m.timestamp / 1000.0)
            for batch in batches_until(consumer, parts, end)
            for records in batch.values()
            for m in records
        ]
    finally:
        consumer.close()


def test_sigkill_mid_stream_redoes_at_most_a_batch_per_partition_and_resumes_fast(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.conftest import make_raw

    batch = int(os.environ.get("NEWSFLOW_TEST_BATCH", "32"))
    env = h.isolated_env(kafka, unique, tmp_path)
    env["NEWSFLOW_TEST_DELAY_S"] = os.environ.get("NEWSFLOW_TEST_DELAY_S", "0.25")
    env["NEWSFLOW_TEST_BATCH"] = str(batch)
    settings = h.settings_for(env, monkeypatch)
    relay._create_topics(settings, (IN, OUT), PARTITIONS)
    source, sink = IN.topic_name(settings.topics), OUT.topic_name(settings.topics)
    now = datetime.now(UTC)
    raws = [make_raw(i, now=now) for i in range(1500)]
    where = _produce(settings, source, raws)
    command = [sys.executable, "-m", "tests.integration.test_delivery_kill"]

    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"
    with h.process(command, env, first_log) as first:

        def first_alive() -> None:
            assert first.poll() is None, first_log.read_text()[-4000:]

        # Mid-stream: a third of the records are through, batches are in flight.
        assert h.wait_for(lambda: len(_outputs(settings, sink)) >= 500, 180, first_alive)
        killed_at = time.time()
        first.send_signal(signal.SIGKILL)
        first.wait(30)
        done_before = len(_outputs(settings, sink))

    with h.process(command, env, second_log) as second:

        def second_alive() -> None:
            assert second.poll() is None, second_log.read_text()[-4000:]

        finished = h.wait_for(
            lambda: {i for i, _ in _outputs(settings, sink)} >= set(where), 240, second_alive
        )
        time.sleep(2)  # anything more would be a duplicate of the replacement's own
        outputs = _outputs(settings, sink)
        log = second_log.read_text()[-4000:]
    assert finished, f"the replacement did not finish\n{log}"

    counts = Counter(i for i, _ in outputs)
    redone = Counter(where[i] for i, n in counts.items() for _ in range(n - 1))
    resumed = [ts for _, ts in outputs if ts > killed_at]
    resume_s = min(resumed) - killed_at if resumed else float("inf")
    print(
        f"\nkill relay: {len(raws)} records, batch {batch}, {PARTITIONS} partitions; "
        f"{done_before} output before the kill; redone after the kill: {sum(redone.values())} "
        f"(per partition {dict(sorted(redone.items()))}); first output {resume_s:.1f} s after "
        "the kill"
    )
    assert set(counts) == set(where)  # nothing lost
    # faust's leader topic is off: no "[ERROR] Topic ...-__assignor-__leader not found" at start.
    for worker_log in (first_log, second_log):
        assert "__assignor" not in worker_log.read_text()
    # Only the batch being finished at the kill may be redone: at most one batch in all, so
    # a fortiori at most one batch per partition.
    assert sum(redone.values()) <= batch, f"redone per partition {dict(redone)}"
    assert resume_s < 25, f"resumed {resume_s:.1f} s after the kill\n{log}"
