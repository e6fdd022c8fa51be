"""The stage runner through consumer-group rebalances, against the real broker.

Two worker processes of one stage share a consumer group: the second joins while the first is
mid-batch (a rebalance), then one of them leaves (another rebalance). Whatever was buffered or
in ``process`` at those moments, every record must come out at least once and the group's
committed offsets must reach the end of every partition (lag 0): a record acked against the
wrong assignment, or never acked, leaves a gap that stops faust's commits for good.

The worker runs a test-only stage (``python -m tests.integration.test_runner_rebalance``): the
real runner and real faust, a plain ``process`` that sleeps per batch in the worker thread (as
enrichment does) so that rebalances land while batches are in flight and queued.

Test-only knobs (environment of the pytest run): NEWSFLOW_TEST_DELAY_S (0.5 s per batch),
NEWSFLOW_TEST_BATCH (16), and NEWSFLOW_TEST_REBALANCE_TIMEOUT_S / NEWSFLOW_TEST_SESSION_TIMEOUT_S
to make a worker's revocation outlast the broker's rebalance timeout (it is evicted while it
still drains its batches, as a slow enrich batch on a loaded machine can be), e.g. 3 / 16 / 4 / 10.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from streams.kafka_clients import client_options
from streams.schema import RawArticle, decode
from streams.settings import Settings
from streams.stages.runner import Forward, Outcome, Record
from streams.topics import TopicSpec
from tests.integration import stage_helpers as h

PARTITIONS = 6
IN = TopicSpec("rebalance.in.v1", "Test input of the rebalance relay.", RawArticle)
OUT = TopicSpec("rebalance.out.v1", "Test output of the rebalance relay.", RawArticle)


# ---- the worker (runs in a subprocess) -------------------------------------------------------


def _decode(record: Record) -> RawArticle:
    return decode(RawArticle, record.value)


def _relay_worker(name: str = "relay", source: TopicSpec = IN, sink: TopicSpec = OUT) -> None:
    """The relay stage ``name`` from ``source`` to ``sink`` (also the kill and memory tests')."""
    import faust
    from faust.serializers import codecs

    from streams.app import create_app
    from streams.serde import ContractCodec, codec_name
    from streams.stages import runner

    settings = Settings()
    delay = float(os.environ["NEWSFLOW_TEST_DELAY_S"])
    size = int(os.environ["NEWSFLOW_TEST_BATCH"])

    def process(items: list[RawArticle]) -> Sequence[Outcome]:
        time.sleep(delay)  # in the worker thread, as enrichment's CPU work
        return [Forward(item, item.article_id.encode()) for item in items]

    stage = runner.Stage(
        name=name,
        input=(source,),
        output=sink,
        batch=runner.BatchPolicy(size, 0.01, 0.5),
        decode=_decode,
        process=process,
        done="relayed",
    )
    # A rebalance timeout shorter than draining the batches in hand: the broker completes the
    # rebalance without this worker while it still finishes them (as a slow enrich batch can).
    timeouts = {
        f"broker_{name}_timeout": float(os.environ[f"NEWSFLOW_TEST_{name.upper()}_TIMEOUT_S"])
        for name in ("rebalance", "session")
        if f"NEWSFLOW_TEST_{name.upper()}_TIMEOUT_S" in os.environ
    }
    app = create_app(settings, app_id=f"{settings.faust.app_id}-{name}", **timeouts)
    codecs.register(codec_name(sink), ContractCodec(model=RawArticle))  # not a product topic
    runner.register(app, stage, settings)
    faust.Worker(app, loglevel="info", redirect_stdouts=False).execute_from_commandline()


if __name__ == "__main__":
    _relay_worker()
    sys.exit(0)


# ---- the test ---------------------------------------------------------------------------------


def _lags(settings: Settings, group: str, topic: str) -> dict[int, int]:
    """End offset minus the group's committed offset, per partition of ``topic``."""
    from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition

    parts = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    admin = KafkaAdminClient(**client_options(settings.kafka))
    consumer = KafkaConsumer(**client_options(settings.kafka))
    try:
        committed = admin.list_group_offsets({group: parts}).get(group, {})
        ends = consumer.end_offsets(parts)
    finally:
        consumer.close()
        admin.close()
    out = {}
    for tp in parts:
        meta = committed.get(tp)
        done = meta.offset if meta is not None and meta.offset >= 0 else 0
        out[tp.partition] = ends[tp] - done
    return out


def _output_ids(settings: Settings, topic: str) -> list[str]:
    from kafka import KafkaConsumer

    from streams.topic_range import assign_all, batches_until

    consumer = KafkaConsumer(**client_options(settings.kafka))
    try:
        parts, end = assign_all(consumer, topic)
        consumer.seek_to_beginning(*parts)
        return [
            decode(RawArticle, bytes(m.value)).article_id
            for batch in batches_until(consumer, parts, end)
            for records in batch.values()
            for m in records
        ]
    finally:
        consumer.close()


@contextmanager
def _relay(env: dict[str, str], tmp: Path, name: str) -> Iterator[Any]:
    """One relay worker process with its own web port and data directory."""
    own = {
        **env,
        "NEWSFLOW_FAUST__WEB_PORT": str(h.free_port()),
        "NEWSFLOW_FAUST__DATADIR": str(tmp / f"faust-{name}"),
    }
    log = tmp / f"{name}.log"
    with h.process(
        [sys.executable, "-m", "tests.integration.test_runner_rebalance"], own, log
    ) as proc:
        yield proc, log


def _create_topics(
    settings: Settings, specs: Sequence[TopicSpec] = (IN, OUT), partitions: int = PARTITIONS
) -> None:
    from kafka import KafkaAdminClient
    from kafka.admin import NewTopic

    admin = KafkaAdminClient(**client_options(settings.kafka))
    try:
        admin.create_topics(
            [NewTopic(spec.topic_name(settings.topics), partitions, 1) for spec in specs]
        )
    finally:
        admin.close()


@pytest.mark.parametrize("leaver", ["first", "second"])
def test_rebalances_mid_batch_leave_no_gap(
    kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, leaver: str
) -> None:
    from streams.schema import encode
    from tests.conftest import make_raw

    env = h.isolated_env(kafka, unique, tmp_path)
    env["NEWSFLOW_TEST_DELAY_S"] = os.environ.get("NEWSFLOW_TEST_DELAY_S", "0.5")
    env["NEWSFLOW_TEST_BATCH"] = os.environ.get("NEWSFLOW_TEST_BATCH", "16")
    settings = h.settings_for(env, monkeypatch)
    _create_topics(settings)
    source, sink = IN.topic_name(settings.topics), OUT.topic_name(settings.topics)
    group = f"{settings.faust.app_id}-relay"
    now = datetime.now(UTC)
    raws = [make_raw(i, now=now) for i in range(1200)]
    expected = {r.article_id for r in raws}
    h.produce(settings, source, [(r.article_id.encode(), encode(r)) for r in raws[:900]])

    with ExitStack() as stack:
        first, first_log = stack.enter_context(_relay(env, tmp_path, "first"))
        logs = [first_log]
        workers = [(first, first_log)]

        def alive() -> None:
            for proc, log in workers:
                assert proc.poll() is None, log.read_text()[-4000:]

        assert h.wait_for(lambda: len(_output_ids(settings, sink)) >= 32, 120, alive)
        # The second worker joins while the first has a batch in process and more queued.
        second, second_log = stack.enter_context(_relay(env, tmp_path, "second"))
        workers.append((second, second_log))
        logs.append(second_log)
        assert h.wait_for(lambda: b"Worker ready" in second_log.read_bytes(), 120, alive)
        h.produce(settings, source, [(r.article_id.encode(), encode(r)) for r in raws[900:]])
        assert h.wait_for(lambda: len(_output_ids(settings, sink)) >= 800, 180, alive)
        # One leaves mid-flow: its partitions go to the other (a graceful leave, a rebalance).
        gone = workers.pop(0 if leaver == "first" else 1)
        gone[0].terminate()
        gone[0].wait(60)

        # Slow batches drain slowly: fail on a stall (no commit progress for a minute), not on
        # a deadline.
        progress = {"lag": sum(_lags(settings, group, source).values()), "at": time.monotonic()}

        def drained() -> bool:
            lag = sum(_lags(settings, group, source).values())
            if lag < progress["lag"]:
                progress.update(lag=lag, at=time.monotonic())
            assert time.monotonic() - progress["at"] < 60, "stalled"
            return lag == 0

        try:
            settled = h.wait_for(drained, 600, alive)
        except AssertionError:
            settled = False
        lags = _lags(settings, group, source)
        ids = _output_ids(settings, sink)
        tails = "\n".join(f"== {log.name}\n{log.read_text()[-3000:]}" for log in logs)
        assert settled, f"committed offsets stopped short of the end: lag {lags}\n{tails}"
    # Each processing forwards a record once: an id seen twice was redone after a rebalance.
    print(f"\nrebalance relay ({leaver} leaves): {len(ids) - len(set(ids))} records redone")
    assert set(ids) == expected, f"missing {len(expected - set(ids))}\n{tails}"
    assert len(ids) >= len(expected)
