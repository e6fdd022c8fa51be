"""A real faust worker process consumes contract records from the real broker and produces
contract records; kafka-python on both ends checks every record arrived exactly as sent."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

from kafka import KafkaConsumer, KafkaProducer

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.kafka_clients import client_options
from streams.schema import Article, RawArticle, decode, encode
from streams.settings import Settings
from tests.conftest import make_raw

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_faust_worker_relays_contract_models(kafka: Settings, unique: str, tmp_path: Path) -> None:
    tin, tout = f"test.faust.in.{unique}", f"test.faust.out.{unique}"
    ensure_topics(
        kafka,
        lambda _m: None,
        specs=(topics.TopicSpec(tin, "in", RawArticle), topics.TopicSpec(tout, "out", Article)),
    )
    env = {
        **os.environ,
        "NEWSFLOW_TEST_IN": tin,
        "NEWSFLOW_TEST_OUT": tout,
        "NEWSFLOW_FAUST__DATADIR": str(tmp_path / "faust"),
        "NEWSFLOW_FAUST__WEB_PORT": str(_free_port()),
    }
    log = open(tmp_path / "worker.log", "wb")  # noqa: SIM115 - closed in finally
    worker = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.integration.faust_relay",
            "worker",
            "-l",
            "info",
            "--without-web",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        sent = [make_raw(i, title="Ankara Damascus") for i in range(25)]
        producer = KafkaProducer(**client_options(kafka.kafka), acks="all")
        for raw in sent:
            producer.send(tin, key=raw.article_id.encode(), value=encode(raw))
        producer.flush(30)
        producer.close()

        consumer = KafkaConsumer(
            tout,
            **client_options(kafka.kafka),
            group_id=f"check-{unique}",
            auto_offset_reset="earliest",
            enable_auto_commit=False,
            consumer_timeout_ms=1000,
        )
        received: dict[str, Article] = {}
        deadline = time.monotonic() + 120
        while len(received) < len(sent) and time.monotonic() < deadline:
            assert worker.poll() is None, (tmp_path / "worker.log").read_text()[-3000:]
            for message in consumer:
                article = decode(Article, message.value)
                assert message.key.decode() == article.article_id
                received[article.article_id] = article
        consumer.close()
        assert set(received) == {r.article_id for r in sent}, (tmp_path / "worker.log").read_text()[
            -3000:
        ]
        for raw in sent:
            art = received[raw.article_id]
            assert art.source == raw.source
            assert [s.stage for s in art.pipeline.stages] == ["connector", "relay"]
            assert art.language.method == "declared"
    finally:
        worker.terminate()
        try:
            worker.wait(30)
        except subprocess.TimeoutExpired:
            worker.kill()
            worker.wait()
        log.close()
