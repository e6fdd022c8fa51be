"""The connector against a local HTTP feed server and the real Kafka broker: exact counts.

Each test gets its own raw topic (namespace) and state file; records are read back from the
topic up to its end offsets, so every count is exact, duplicates included.
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from kafka import KafkaConsumer

from connectors.feed_state import SqliteFeedStateStore
from connectors.feeds import FeedList, FeedSpec, save_feed_list
from connectors.producer import FEED_HEADER, SCHEMA_HEADER, ArticleProducer
from connectors.rss.poller import Connector
from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.kafka_clients import client_options
from streams.schema.models import SCHEMA_VERSION, RawArticle, decode
from streams.settings import Settings
from streams.topic_range import assign_all, batches_until
from tests.conftest import promtool_check_metrics
from tests.integration.feed_server import FeedServer
from tests.integration.stage_helpers import ROOT

BASE = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def rss(feed_no: int, items: range, *, edited: set[int] | None = None) -> bytes:
    edited = edited or set()
    parts = []
    for n in items:
        title = (
            f"خبر رقم {n} من المصدر {feed_no}" if feed_no % 2 else f"Story {n} of feed {feed_no}"
        )
        summary = f"Summary {n}." + (" Corrected." if n in edited else "")
        when = (BASE - timedelta(minutes=n)).strftime("%a, %d %b %Y %H:%M:%S +0000")
        parts.append(
            f"<item><title>{escape(title)}</title>"
            f"<link>https://news.example/{feed_no}/{n}?utm_source=rss#top</link>"
            f"<guid isPermaLink='false'>g-{feed_no}-{n}</guid>"
            f"<description>{escape(summary)}</description><pubDate>{when}</pubDate></item>"
        )
    return (
        f"<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Feed {feed_no}</title><link>https://news.example/{feed_no}/</link>"
        f"{''.join(parts)}</channel></rss>"
    ).encode()


@pytest.fixture
def env(kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("NEWSFLOW_TOPICS__NAMESPACE", f"test.{unique}.")
    monkeypatch.setenv("NEWSFLOW_TOPICS__PARTITIONS", "3")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__STATE_PATH", str(tmp_path / "state.sqlite"))
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__METRICS_PORT", "0")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__COMMIT_INTERVAL_S", "0.2")
    settings = Settings()
    ensure_topics(settings, lambda _m: None, (topics.RAW,))
    return settings


def topic_records(settings: Settings) -> list[Any]:
    consumer = KafkaConsumer(
        **client_options(settings.kafka), group_id=None, enable_auto_commit=False
    )
    try:
        parts, end = assign_all(consumer, topics.RAW.topic_name(settings.topics))
        consumer.seek_to_beginning(*parts)
        return [
            m for batch in batches_until(consumer, parts, end) for ms in batch.values() for m in ms
        ]
    finally:
        consumer.close()


def run_once(settings: Settings, flist: FeedList, *, every_feed: bool = True) -> Any:
    store = SqliteFeedStateStore(settings.connector.state_path)
    producer = ArticleProducer(settings)
    try:
        connector = Connector(settings.connector, flist, store, producer)
        connector.recover(settings)
        return asyncio.run(connector.run_once(every_feed=every_feed))
    finally:
        producer.close()
        store.close()


def feed_list(server: FeedServer, n: int) -> FeedList:
    return FeedList(
        allow_private_addresses=True,
        feeds=tuple(
            FeedSpec(
                id=f"f{i}", url=server.url(f"/feeds/{i}.xml"), language="ar" if i % 2 else "en"
            )
            for i in range(n)
        ),
    )


def test_first_poll_produces_every_item_once_with_keys_and_headers(env: Settings) -> None:
    with FeedServer() as server:
        for i in range(3):
            server.set_feed(f"/feeds/{i}.xml", rss(i, range(10)))
        summary = run_once(env, feed_list(server, 3))
    records = topic_records(env)
    assert len(records) == 30
    assert summary.articles["new"] == 30 and summary.results["new"] == 3
    articles = [decode(RawArticle, r.value) for r in records]
    assert {r.key.decode() for r in records} == {a.article_id for a in articles}
    assert len({a.article_id for a in articles}) == 30
    for record, article in zip(records, articles, strict=True):
        headers = dict(record.headers)
        assert headers[FEED_HEADER].decode() == article.source.feed.feed_id
        assert headers[SCHEMA_HEADER].decode() == SCHEMA_VERSION
        assert article.source.url.startswith("https://news.example/")
        assert "utm_source" not in article.source.url and "#" not in article.source.url
        assert article.source.published_at is not None
        assert article.source.language_hint == (
            "ar" if article.source.feed.feed_id in {"f1"} else "en"
        )
        assert article.pipeline.stages[0].stage == "connector"
    # One article always lands in one partition: its key decides.
    by_key = {r.key: r.partition for r in records}
    assert len(by_key) == 30


def test_unchanged_feeds_produce_nothing_changes_produce_updates_in_place(env: Settings) -> None:
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", rss(0, range(10)))
        server.set_feed("/feeds/1.xml", rss(1, range(10)))
        flist = feed_list(server, 2)
        run_once(env, flist)
        first = {
            decode(RawArticle, r.value).article_id: decode(RawArticle, r.value)
            for r in topic_records(env)
        }
        assert len(first) == 20

        again = run_once(env, flist)  # ETag -> 304 for both
        assert again.results == Counter({"not_modified": 2})
        assert len(topic_records(env)) == 20

        # Feed 0: two items edited, one new item; feed 1: unchanged.
        server.set_feed("/feeds/0.xml", rss(0, range(-1, 10), edited={3, 4}))
        third = run_once(env, flist)
        assert third.articles["new"] == 1 and third.articles["updated"] == 2
    versions: dict[str, list[RawArticle]] = {}
    for record in topic_records(env):  # one key, one partition: offsets order the versions
        article = decode(RawArticle, record.value)
        versions.setdefault(article.article_id, []).append(article)
    assert sum(len(v) for v in versions.values()) == 23
    assert len(versions) == 21
    updated = {k: v for k, v in versions.items() if len(v) == 2}
    assert len(updated) == 2
    for old, new in updated.values():  # an update keeps its id and its first_seen_at
        assert new.source.first_seen_at == old.source.first_seen_at
        assert new.source.content_hash != old.source.content_hash
        assert new.source.summary.endswith("Corrected.")
        assert not old.source.summary.endswith("Corrected.")


def test_lying_validators_are_caught_by_the_unconditional_check(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__UNCONDITIONAL_EVERY", "3")
    settings = Settings()
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", rss(0, range(5)))
        flist = feed_list(server, 1)
        run_once(settings, flist)
        # The server now answers 304 to any conditional request although the body changes.
        server.set_feed("/feeds/0.xml", rss(0, range(-3, 5)), lie=True)
        polls = [run_once(settings, flist) for _ in range(3)]
    results = [next(iter(p.results)) for p in polls]
    assert results[:2] == ["not_modified", "not_modified"]
    assert results[2] == "new"  # every third poll is unconditional
    assert len(topic_records(settings)) == 8


def test_failing_feed_does_not_stop_the_others(env: Settings) -> None:
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", rss(0, range(4)))
        server.set_feed(
            "/feeds/1.xml", b"<html><body>not a feed</body></html>", content_type="text/html"
        )
        flist = FeedList(
            allow_private_addresses=True,
            feeds=(
                *feed_list(server, 2).feeds,
                FeedSpec(id="gone", url=server.url("/missing.xml")),
            ),
        )
        summary = run_once(env, flist)
    assert summary.articles["new"] == 4
    assert summary.errors == Counter({"not_a_feed": 1, "http_404": 1})
    assert set(summary.failing_feeds) == {"f1", "gone"}
    store = SqliteFeedStateStore(env.connector.state_path)
    states = store.load_all()
    store.close()
    assert states["gone"].consecutive_failures == 1
    assert states["gone"].next_poll_at > time.time() + 20  # backing off


def test_private_addresses_are_refused_unless_the_list_allows_them(env: Settings) -> None:
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", rss(0, range(3)))
        flist = FeedList(feeds=(FeedSpec(id="f0", url=server.url("/feeds/0.xml")),))
        summary = run_once(env, flist)
        assert server.hits["/feeds/0.xml"] == 0
    assert summary.errors == Counter({"blocked_address": 1})
    assert topic_records(env) == []


def test_killed_mid_run_restart_loses_nothing_and_repeats_nothing(
    env: Settings, tmp_path: Path
) -> None:
    feeds = 120
    with FeedServer() as server:
        for i in range(feeds):
            server.set_feed(f"/feeds/{i}.xml", rss(i, range(25)), delay_s=0.05)
        flist = feed_list(server, feeds)
        path = tmp_path / "feeds.yaml"
        save_feed_list(path, flist)
        proc_env = dict(os.environ)
        proc_env["NEWSFLOW_CONNECTOR__CONCURRENCY"] = "4"
        cmd = [
            sys.executable,
            "-m",
            "streams.commands.cli",
            "connect",
            "--once",
            "--all",
            "--feeds",
            str(path),
        ]
        log = tmp_path / "connect.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                cmd, cwd=ROOT, env=proc_env, stdout=out, stderr=subprocess.STDOUT
            )
            deadline = time.monotonic() + 60
            while len(topic_records(env)) < 500 and time.monotonic() < deadline:
                assert proc.poll() is None, log.read_text()
                time.sleep(0.2)
            proc.send_signal(signal.SIGKILL)
            proc.wait()
        before = len(topic_records(env))
        assert 500 <= before < feeds * 25, "the kill must land mid-run"
        done = subprocess.run(
            [*cmd, "--json"], cwd=ROOT, env=proc_env, capture_output=True, timeout=180
        )
        assert done.returncode == 0, done.stderr.decode()[-2000:]
    records = topic_records(env)
    ids = Counter(r.key for r in records)
    assert len(ids) == feeds * 25  # nothing lost
    assert max(ids.values()) == 1  # nothing produced twice


def test_hostile_feeds_fail_alone_with_their_reason_and_exact_counts(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__TOTAL_TIMEOUT_S", "1.5")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__READ_TIMEOUT_S", "1")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__MAX_BODY_BYTES", str(4 * 2**20))
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__MAX_REDIRECTS", "3")
    settings = Settings()
    with FeedServer() as server:
        server.set_feed("/good.xml", rss(0, range(7)))
        server.set_feed("/moved.xml", rss(1, range(3)))
        server.set_redirect("/old.xml", server.url("/moved.xml"), status=301)
        server.set_throttle("/busy.xml", 429, retry_after="600", times=5)
        server.set_redirect("/loop-a.xml", server.url("/loop-b.xml"))
        server.set_redirect("/loop-b.xml", server.url("/loop-a.xml"))
        server.set_redirect_chain("/chain.xml", 6, server.url("/good.xml"))
        server.set_slow_drip("/drip.xml", interval_s=0.2)
        server.set_hang("/hang.xml")
        server.set_bomb("/bomb.xml", "gzip")
        server.set_feed(
            "/page.xml", b"<!doctype html><html><body>Hi</body></html>", content_type="text/html"
        )
        server.set_response("/empty.xml", b"", status=200)
        server.set_redirect("/meta.xml", "http://169.254.169.254/latest/meta-data/")
        paths = [
            "good",
            "old",
            "busy",
            "loop-a",
            "chain",
            "drip",
            "hang",
            "bomb",
            "page",
            "empty",
            "meta",
        ]
        flist = FeedList(
            allow_private_addresses=True,
            feeds=tuple(FeedSpec(id=p, url=server.url(f"/{p}.xml")) for p in paths),
        )
        summary = run_once(settings, flist)
    assert summary.articles["new"] == 10  # 7 good + 3 behind a permanent redirect
    assert len(topic_records(settings)) == 10
    assert summary.errors == Counter(
        {
            "http_429": 1,
            "redirect_loop": 1,
            "too_many_redirects": 1,
            "timeout": 2,
            "too_large": 1,
            "not_a_feed": 1,
            "empty_body": 1,
            "blocked_address": 1,
        }
    )
    store = SqliteFeedStateStore(settings.connector.state_path)
    states = store.load_all()
    store.close()
    assert states["old"].url == server.url("/moved.xml")  # permanent redirect remembered
    assert states["busy"].next_poll_at >= time.time() + 590  # Retry-After honoured
    assert states["good"].consecutive_failures == 0 and states["good"].produced == 7


def test_oversized_records_are_trimmed_and_flagged_not_dropped(
    env: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__MAX_RECORD_BYTES", "20000")
    settings = Settings()
    long_text = escape("<p>" + "جملة طويلة جدا. " * 4000 + "</p>")
    body = (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0' "
        "xmlns:content='http://purl.org/rss/1.0/modules/content/'><channel><title>T</title>"
        "<item><title>Long</title><link>https://news.example/long</link>"
        f"<description>Short summary.</description><content:encoded>{long_text}"
        "</content:encoded></item>"
        "<item><title>Short</title><link>https://news.example/short</link>"
        "<description>Fine.</description></item></channel></rss>"
    ).encode()
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", body)
        summary = run_once(settings, feed_list(server, 1))
    assert summary.articles == Counter({"new": 2, "trimmed": 1, "updated": 0})
    records = {decode(RawArticle, r.value).source.title: r for r in topic_records(settings)}
    long = decode(RawArticle, records["Long"].value)
    assert long.source.truncated is True and len(records["Long"].value) <= 20000
    assert long.source.content and long.source.content.startswith("جملة طويلة جدا.")
    assert long.source.summary == "Short summary."
    assert decode(RawArticle, records["Short"].value).source.truncated is False


def test_long_running_connect_follows_new_items_serves_metrics_and_stops_cleanly(
    env: Settings, tmp_path: Path
) -> None:
    import urllib.request

    from tests.integration.stage_helpers import free_port

    port = free_port()
    proc_env = {
        **os.environ,
        "NEWSFLOW_CONNECTOR__MIN_INTERVAL_S": "1",
        "NEWSFLOW_CONNECTOR__MAX_INTERVAL_S": "2",
        "NEWSFLOW_CONNECTOR__METRICS_PORT": str(port),
    }
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", rss(0, range(5)))
        server.set_feed("/feeds/1.xml", rss(1, range(5)))
        path = tmp_path / "feeds.yaml"
        save_feed_list(path, feed_list(server, 2))
        log = tmp_path / "connect.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "streams.commands.cli",
                    "connect",
                    "--feeds",
                    str(path),
                    "--log-format",
                    "json",
                ],
                cwd=ROOT,
                env=proc_env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
            try:
                deadline = time.monotonic() + 60
                while len(topic_records(env)) < 10 and time.monotonic() < deadline:
                    assert proc.poll() is None, log.read_text()
                    time.sleep(0.3)
                server.set_feed("/feeds/0.xml", rss(0, range(-2, 5)))  # two new items
                while len(topic_records(env)) < 12 and time.monotonic() < deadline:
                    assert proc.poll() is None, log.read_text()
                    time.sleep(0.3)
                # The counters move when a commit saved the poll, just after Kafka has the records.
                want = 'newsflow_articles_total{outcome="new",stage="connector"} 12.0'
                metrics = ""
                while want not in metrics and time.monotonic() < deadline:
                    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics") as resp:
                        metrics = resp.read().decode()
                    time.sleep(0.2)
            finally:
                proc.send_signal(signal.SIGTERM)
                code = proc.wait(30)
        assert code == 0, log.read_text()[-2000:]
        assert len(topic_records(env)) == 12
        # "ok" after the poll that found the items; "not-modified" once the next poll (1 s
        # later, a 304) is confirmed too: on a loaded machine the scrape can land after it.
        assert any(
            f'newsflow_feed_status{{feed="f0",status="{status}"}} 1.0' in metrics
            for status in ("ok", "not-modified")
        )
        promtool_check_metrics(metrics)
        assert 'newsflow_articles_total{outcome="new",stage="connector"} 12.0' in metrics
        assert 'newsflow_feed_polls_total{error="",feed="f1",result="new"} 1.0' in metrics
        lines = [json.loads(x) for x in log.read_text().splitlines() if x.startswith("{")]
        assert any(x["msg"].startswith("connector started") for x in lines)
        # State was saved on the way out: a one-off poll now finds nothing new.
        again = run_once(env, feed_list(server, 2))
    assert again.articles["new"] == 0 and len(topic_records(env)) == 12


def test_a_dead_parser_process_is_replaced_and_the_feed_retried(env: Settings) -> None:
    with FeedServer() as server:
        server.set_feed("/feeds/0.xml", rss(0, range(4)))
        flist = feed_list(server, 1)
        store = SqliteFeedStateStore(env.connector.state_path)
        producer = ArticleProducer(env)
        connector = Connector(env.connector, flist, store, producer)

        async def scenario() -> tuple[int, int]:
            from streams.net.fetch import Fetcher

            with connector._parsers():
                pool = connector._pool
                assert pool is not None
                pool.submit(int, 1).result()  # the worker processes exist now
                for proc in list(pool._processes.values()):  # what an OOM kill would do
                    os.kill(proc.pid, signal.SIGKILL)
                    proc.join()
                async with Fetcher(user_agent="t") as fetcher:
                    await connector._poll(fetcher, flist.feeds[0])  # fails: pool broken
                    assert connector._pool is not pool  # replaced
                    first = connector.summary.errors["internal_BrokenProcessPool"]
                    connector.states["f0"].next_poll_at = 0
                    await connector._poll(fetcher, flist.feeds[0])
                    await connector.drain(30)  # commit() no longer waits on Kafka
                    return first, connector.summary.articles["new"]

        try:
            broken, produced = asyncio.run(scenario())
        finally:
            producer.close()
            store.close()
    assert (broken, produced) == (1, 4)
    assert len(topic_records(env)) == 4
