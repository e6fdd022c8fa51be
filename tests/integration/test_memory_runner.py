"""The stage runner retains nothing per record, against the real broker (issue 14 item 8).

A relay worker process (the real runner and faust, the stage of test_runner_rebalance with no
delay) gets rounds of ~4 KB articles; after each round is out, the memory probe loaded into it
(bench/memprobe, as ``bench/bench_memory.py --probe`` uses it) reports the live Python objects
(``gc.get_objects()`` after a collection). Between the second round and the last, a worker
that kept anything per record (events, messages, futures, per-offset bookkeeping) grows by
thousands of objects; a bounded one does not. (tracemalloc made the worker too slow here.)

NEWSFLOW_TEST_LEAK=1 makes the worker's runner keep every batch it began: the test then fails
(that is how it was checked to be able to fail; the enrich worker's growth was in the taggers'
word caches, see tests/unit/test_memory.py).
"""

from __future__ import annotations

import json
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from streams.kafka_clients import client_options
from streams.schema import encode
from streams.settings import Settings
from tests.integration import stage_helpers as h
from tests.integration import test_runner_rebalance as relay

ROUND = 1500
ROUNDS = 5
PROBE = Path(__file__).resolve().parents[2] / "bench" / "memprobe"
# Multilingual filler of ~4 KB, as a long article's body.
BODY = (
    "وقال المتحدث باسم الوزارة إن الاجتماع سيعقد في الرياض الأسبوع المقبل. "
    "Le ministre a annoncé un nouveau plan pour les transports publics à Lyon. "
    "Der Stadtrat in Leipzig beschloss am Dienstag einen neuen Haushalt. "
    "Hükümet, Ankara'daki toplantının ardından yeni bir açıklama yaptı. "
) * 14


def _leaky_worker() -> None:
    """The relay worker; with NEWSFLOW_TEST_LEAK=1 its runner keeps every batch (a leak)."""
    if os.environ.get("NEWSFLOW_TEST_LEAK") == "1":
        from streams.stages import runner

        kept: list[Any] = []
        begin = runner.Runner._begin

        def keeping(self: Any, events: list[Any]) -> Any:
            batch = begin(self, events)
            kept.append(batch)
            return batch

        runner.Runner._begin = keeping  # type: ignore[method-assign]
    relay._relay_worker()


if __name__ == "__main__":
    _leaky_worker()
    sys.exit(0)


def _ask(folder: Path, n: int, what: str, alive: Any) -> dict[str, Any]:
    (folder / f"{n:08d}.req").write_text(what)
    answer = folder / f"{n:08d}.json"
    assert h.wait_for(answer.exists, 120, alive), "the memory probe did not answer"
    got: dict[str, Any] = json.loads(answer.read_text())
    assert "error" not in got, got
    return got


def test_runner_retains_nothing_per_record(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: Any
) -> None:
    from tests.conftest import make_raw

    env = h.isolated_env(kafka, unique, tmp_path)
    env["NEWSFLOW_TEST_DELAY_S"] = "0"
    env["NEWSFLOW_TEST_BATCH"] = "64"
    probe = tmp_path / "probe"
    probe.mkdir()
    env["NEWSFLOW_MEMPROBE"] = str(probe)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(PROBE), env.get("PYTHONPATH")) if p)
    settings = h.settings_for(env, monkeypatch)
    relay._create_topics(settings)
    source, sink = relay.IN.topic_name(settings.topics), relay.OUT.topic_name(settings.topics)
    now = datetime.now(UTC)
    log = tmp_path / "relay.log"
    command = [sys.executable, "-m", "tests.integration.test_memory_runner"]
    answers: list[dict[str, Any]] = []
    with h.process(command, env, log) as proc:

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        for rnd in range(ROUNDS):
            records = []
            for i in range(rnd * ROUND, (rnd + 1) * ROUND):
                raw = make_raw(i, now=now)
                raw = raw.model_copy(
                    update={"source": raw.source.model_copy(update={"content": f"{i} {BODY}"})}
                )
                records.append((raw.article_id.encode(), encode(raw)))
            h.produce(settings, source, records)
            target = (rnd + 1) * ROUND
            started = time.monotonic()
            assert h.wait_for(
                lambda t=target: _count(settings, sink) >= t,  # type: ignore[misc]
                300,
                alive,
            ), f"round {rnd}: output stopped short\n{log.read_text()[-3000:]}"
            time.sleep(1)  # the last batch's ack and commit
            answers.append(_ask(probe, target, "counts", alive))
            print(
                f"round {rnd}: {time.monotonic() - started:.1f}s, {answers[-1]['objects']} "
                f"objects, malloc in use {answers[-1]['malloc'].get('in_use_mb', 0):.1f} MB"
            )
    base, end = answers[1], answers[-1]
    grown = end["objects"] - base["objects"]
    records_between = (ROUNDS - 2) * ROUND
    top = {t: c for t, c in end["top_types"][:12]}
    # A leak of one object per record is 4,500 objects (a kept event or batch is several).
    assert grown < records_between // 4, f"{grown} more objects over {records_between}: {top}"


def _count(settings: Settings, topic: str) -> int:
    """Records in ``topic`` (the sum of its partitions' end offsets)."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**client_options(settings.kafka))
    try:
        parts = [TopicPartition(topic, p) for p in range(relay.PARTITIONS)]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()
