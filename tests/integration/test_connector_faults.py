"""The connector when Kafka goes away while it polls (issue 16.3), on the real broker.

`newsflow connect` runs as a process whose only way to Kafka is a relay the test cuts
(``kafka_relay``: the shared broker keeps running for everyone else). The feed server keeps
adding items throughout; every count is exact, read back from the raw topic.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from connectors.feeds import save_feed_list
from connectors.rss.parse import parse_feed
from streams.settings import Settings
from tests.integration import stage_helpers as h
from tests.integration.feed_server import FeedServer
from tests.integration.kafka_relay import kafka_relay
from tests.integration.stage_helpers import ROOT, free_port
from tests.integration.test_connector import env, feed_list, rss, topic_records  # noqa: F401

pytestmark = pytest.mark.timeout(300)


def _sample(text: str, name: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


class Publisher:
    """Adds one item to one of the feeds every ``every_s`` seconds, round robin, while on."""

    def __init__(self, server: FeedServer, feeds: int, start: int, every_s: float) -> None:
        self.server, self.feeds, self.every_s = server, feeds, every_s
        self.counts = [start] * feeds
        self.on = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        for i in range(feeds):
            server.set_feed(f"/feeds/{i}.xml", rss(i, range(start)))

    def _run(self) -> None:
        turn = 0
        while not self._stop.wait(self.every_s):
            if not self.on.is_set():
                continue
            i = turn % self.feeds
            turn += 1
            self.counts[i] += 1
            self.server.set_feed(f"/feeds/{i}.xml", rss(i, range(self.counts[i])))

    def __enter__(self) -> Publisher:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def expected_ids(self) -> set[str]:
        ids: set[str] = set()
        for i in range(self.feeds):
            url = self.server.url(f"/feeds/{i}.xml")
            parsed = parse_feed(rss(i, range(self.counts[i])), base_url=url, now=datetime.now(UTC))
            ids.update(item.article_id for item in parsed.items)
        return ids


@pytest.mark.parametrize(
    "delivery_timeout_s",
    [
        pytest.param(86400, id="producer-retries-through-the-outage"),
        # Batches expire during the outage: the producer is replaced and the poller re-sends.
        pytest.param(5, id="records-expire-and-are-re-sent"),
    ],
)
def test_kafka_unreachable_polls_go_on_then_everything_arrives_once(
    env: Settings,  # noqa: F811 - the fixture
    tmp_path: Path,
    delivery_timeout_s: int,
) -> None:
    feeds, start, cap = 3, 5, 100
    port = free_port()
    with FeedServer() as server, kafka_relay(env.kafka.bootstrap_servers) as relay:
        path = tmp_path / "feeds.yaml"
        with Publisher(server, feeds, start, every_s=0.25) as pub:
            save_feed_list(path, feed_list(server, feeds))
            proc_env = {
                **os.environ,
                "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS": relay.address,
                "NEWSFLOW_KAFKA__REQUEST_TIMEOUT_S": "3",
                "NEWSFLOW_CONNECTOR__MIN_INTERVAL_S": "1",
                "NEWSFLOW_CONNECTOR__MAX_INTERVAL_S": "1",
                "NEWSFLOW_CONNECTOR__METRICS_PORT": str(port),
                "NEWSFLOW_CONNECTOR__MAX_HELD_RECORDS": str(cap),
                "NEWSFLOW_CONNECTOR__PARSE_WORKERS": "0",
                "NEWSFLOW_CONNECTOR__DELIVERY_TIMEOUT_S": str(delivery_timeout_s),
            }
            log = tmp_path / "connect.log"
            base = f"http://127.0.0.1:{port}"
            with open(log, "wb") as out:
                proc = subprocess.Popen(
                    [sys.executable, "-m", "streams.commands.cli", "connect", "--feeds", str(path)],
                    cwd=ROOT,
                    env=proc_env,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                )
                try:
                    result = _scenario(proc, log, base, env, server, relay, pub, feeds * start, cap)
                finally:
                    proc.terminate()
                    code = proc.wait(60)
            expected = pub.expected_ids()
    text = log.read_text()
    assert code == 0, text[-3000:]
    keys = Counter(r.key.decode() for r in topic_records(env))
    print(json.dumps({**result, "articles": len(expected), "records": sum(keys.values())}))
    assert set(keys) == expected, (
        f"missing {sorted(expected - set(keys))[:5]}, unexpected {sorted(set(keys) - expected)[:5]}"
    )
    assert max(keys.values()) == 1, [k for k, n in keys.items() if n > 1][:5]  # none twice
    assert "polls are deferred until Kafka confirms them" in text
    assert "kafka confirms records again" in text
    if delivery_timeout_s < 30:  # the outage outlasted it: records failed, were sent again
        assert "kafka producer replaced" in text and result["resent"] > 0, result


def _scenario(
    proc: subprocess.Popen[bytes],
    log: Path,
    base: str,
    settings: Settings,
    server: FeedServer,
    relay: Any,
    pub: Publisher,
    initial: int,
    cap: int,
) -> dict[str, Any]:
    def alive() -> None:
        assert proc.poll() is None, log.read_text()[-3000:]

    deadline = time.monotonic() + 60
    while len(topic_records(settings)) < initial or h.http_get(base + "/health/ready")[0] != 200:
        alive()
        assert time.monotonic() < deadline, log.read_text()[-3000:]
        time.sleep(0.3)

    # Kafka goes away; the feeds keep publishing.
    relay.cut()
    pub.on.set()
    cut_at = time.monotonic()
    hits_at_cut = sum(server.hits.values())
    last_hit, hits = cut_at, hits_at_cut
    not_ready: dict[str, Any] | None = None
    held_max = 0.0
    deferred = 0.0
    while time.monotonic() - cut_at < 90:
        alive()
        now_hits = sum(server.hits.values())
        if now_hits > hits:
            last_hit, hits = time.monotonic(), now_hits
        status, body = h.http_get(base + "/health/ready")
        if status == 503 and not_ready is None:
            not_ready = {"after_s": round(time.monotonic() - cut_at, 1), **json.loads(body)}
        metrics = h.http_get(base + "/metrics")[1]
        held_max = max(held_max, _sample(metrics, "newsflow_connector_records_held") or 0.0)
        deferred = sum(
            float(line.rsplit(" ", 1)[1])
            for line in metrics.splitlines()
            if line.startswith("newsflow_feed_polls_total{") and 'result="deferred"' in line
        )
        if deferred >= 10 and not_ready is not None:
            break
        time.sleep(0.25)
    pub.on.clear()  # the last items, then Kafka comes back
    polled_down_s = last_hit - cut_at
    polls_down = hits - hits_at_cut
    on_kafka = len(topic_records(settings))
    relay.restore()
    restored_at = time.monotonic()
    expected = pub.expected_ids()
    while {r.key.decode() for r in topic_records(settings)} != expected:
        alive()
        assert time.monotonic() - restored_at < 90, log.read_text()[-3000:]
        time.sleep(0.3)
    caught_up_s = time.monotonic() - restored_at
    while h.http_get(base + "/health/ready")[0] != 200:
        alive()
        assert time.monotonic() - restored_at < 60, log.read_text()[-3000:]
        time.sleep(0.3)
    ready_again_s = time.monotonic() - restored_at
    resent = sum(
        float(line.rsplit(" ", 1)[1])
        for line in h.http_get(base + "/metrics")[1].splitlines()
        if line.startswith("newsflow_retries_total{") and 'stage="connector"' in line
    )

    assert not_ready is not None, "/health/ready stayed ready while Kafka was unreachable"
    assert "kafka" in not_ready["problems"], not_ready
    assert polls_down >= 10 and polled_down_s >= 10, (polls_down, polled_down_s)
    assert on_kafka == initial  # nothing got through the cut relay
    assert cap <= held_max <= cap + 20, held_max  # bounded: one poll's items over the cap
    assert deferred >= 10
    return {
        "outage_s": round(restored_at - cut_at, 1),
        "polls_while_down": polls_down,
        "polled_until_s": round(polled_down_s, 1),
        "not_ready_after_s": not_ready["after_s"],
        "not_ready_problem": not_ready["problems"]["kafka"],
        "held_max": held_max,
        "deferred_polls": deferred,
        "added_while_down": len(expected) - initial,
        "resent": resent,
        "caught_up_s": round(caught_up_s, 1),
        "ready_again_s": round(ready_again_s, 1),
    }


def test_once_with_kafka_unreachable_fails_its_polls_and_saves_no_state(
    env: Settings,  # noqa: F811 - the fixture
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`connect --once` while Kafka is away: the run ends after the drain (not after a day of
    retries), counts the unconfirmed polls as delivery failures (exit 3) and saves nothing, so
    the next run produces those items, once."""
    import asyncio

    from connectors.feed_state import SqliteFeedStateStore
    from connectors.producer import ArticleProducer
    from connectors.rss.poller import Connector

    monkeypatch.setenv("NEWSFLOW_CONNECTOR__DELIVERY_TIMEOUT_S", "5")
    monkeypatch.setenv("NEWSFLOW_KAFKA__REQUEST_TIMEOUT_S", "3")
    with FeedServer() as server, kafka_relay(env.kafka.bootstrap_servers) as relay:
        monkeypatch.setenv("NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS", relay.address)
        settings = Settings()
        server.set_feed("/feeds/0.xml", rss(0, range(6)))
        server.set_feed("/feeds/1.xml", rss(1, range(4)))
        flist = feed_list(server, 2)

        def once() -> Any:
            store = SqliteFeedStateStore(settings.connector.state_path)
            producer = ArticleProducer(settings)
            try:
                connector = Connector(settings.connector, flist, store, producer)
                if not relay.down:
                    connector.recover(settings)
                return asyncio.run(connector.run_once(every_feed=True))
            finally:
                producer.close(5)
                store.close()

        store = SqliteFeedStateStore(settings.connector.state_path)
        producer = ArticleProducer(settings)  # connected, then Kafka goes away mid-run
        relay.cut()
        started = time.monotonic()
        try:
            connector = Connector(settings.connector, flist, store, producer)
            down = asyncio.run(connector.run_once(every_feed=True))
        finally:
            producer.close(5)
            store.close()
        took = time.monotonic() - started
        saved = SqliteFeedStateStore(settings.connector.state_path)
        states = saved.load_all()
        saved.close()
        relay.restore()
        again = once()
    assert down.delivery_failures == 2 and set(down.failing_feeds) == {"f0", "f1"}, down
    assert took < 30, took
    assert states == {}  # nothing saved: both feeds are polled from scratch next time
    assert again.delivery_failures == 0 and again.articles["new"] == 10
    keys = Counter(r.key for r in topic_records(env))
    assert len(keys) == 10 and max(keys.values()) == 1, keys
