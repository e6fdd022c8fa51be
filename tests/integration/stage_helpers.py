"""Helpers for stage tests: an isolated namespace (topics, index, consumer groups) per test,
a worker subprocess, and readers for output and dead-letter topics."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, KafkaProducer

from streams.commands.bootstrap import ensure_elastic, ensure_topics
from streams.kafka_clients import client_options
from streams.schema import Article, LanguageInfo
from streams.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def isolated_env(settings: Settings, unique: str, tmp: Path) -> dict[str, str]:
    return {
        **os.environ,
        "NEWSFLOW_TOPICS__NAMESPACE": f"test.{unique}.",
        "NEWSFLOW_TOPICS__PARTITIONS": "3",
        "NEWSFLOW_ELASTIC__ALIAS": f"test-articles-{unique}",
        "NEWSFLOW_ELASTIC__INDEX_PREFIX": f"test-articles-v1-{unique}",
        "NEWSFLOW_FAUST__APP_ID": f"test-{unique}",
        "NEWSFLOW_FAUST__DATADIR": str(tmp / "faust"),
        "NEWSFLOW_FAUST__WEB_PORT": str(free_port()),
        "NEWSFLOW_RETRY__INITIAL_S": "0.2",
        "NEWSFLOW_RETRY__MAX_S": "2",
    }


def settings_for(env: dict[str, str], monkeypatch: Any) -> Settings:
    for key, value in env.items():
        if key.startswith("NEWSFLOW_"):
            monkeypatch.setenv(key, value)
    return Settings()


def bootstrap_isolated(settings: Settings) -> None:
    ensure_topics(settings, lambda _m: None)
    ensure_elastic(settings, lambda _m: None)


@contextmanager
def worker(stage: str, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    command = [sys.executable, "-m", "streams.commands.cli", "worker", stage, "-l", "info"]
    with process(command, env, log) as proc:
        yield proc


@contextmanager
def process(
    command: list[str], env: dict[str, str], log: Path
) -> Iterator[subprocess.Popen[bytes]]:
    """``command`` as a subprocess of the checkout (output in ``log``), terminated on exit."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
        try:
            yield proc
        finally:
            proc.terminate()
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def produce(settings: Settings, topic: str, records: list[tuple[bytes, bytes]]) -> None:
    producer = KafkaProducer(**client_options(settings.kafka), acks="all")
    for key, value in records:
        producer.send(topic, key=key, value=value)
    producer.flush(30)
    producer.close()


def read_all(
    settings: Settings, topic: str, expect: int, timeout_s: float, alive: Callable[[], None]
) -> list[Any]:
    """Read ``topic`` from the start until ``expect`` records arrived (or the timeout)."""
    consumer = KafkaConsumer(
        topic,
        **client_options(settings.kafka),
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=1000,
    )
    records: list[Any] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(records) < expect and time.monotonic() < deadline:
            alive()
            records.extend(consumer)
        # Anything beyond the expected count would be a duplicate: read a little longer.
        end = time.monotonic() + 2
        while time.monotonic() < end:
            records.extend(consumer)
    finally:
        consumer.close()
    return records


def wait_for(predicate: Callable[[], bool], timeout_s: float, alive: Callable[[], None]) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        alive()
        if predicate():
            return True
        time.sleep(0.5)
    return False


def index_articles(
    first_seen: datetime, ids: range, lang: str = "en", title: str | None = None
) -> list[Article]:
    """Articles ready for the index stage (language set, no entities): ``make_raw(i)`` for
    every ``i`` in ``ids``, first seen at ``first_seen`` (which picks the monthly index)."""
    from tests.conftest import make_raw

    extra = {} if title is None else {"title": title}
    out = []
    for i in ids:
        raw = make_raw(i, now=first_seen, **extra)
        language = LanguageInfo(code=lang, confidence=0.9, method="text", script="Latn")
        out.append(Article(article_id=raw.article_id, source=raw.source, language=language))
    return out


def http_get(url: str) -> tuple[int, str]:
    """(status, body) of a worker's health or metrics page; (0, error) while it is not up."""
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as err:
        return err.code, err.read().decode()
    except OSError as exc:  # the worker's web server is not up yet
        return 0, str(exc)
