"""Identity from link AND guid through the real connector: a local feed server, the poller's
parse processes and the real Kafka broker (issue 14.3). Exact counts from the raw topic."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from pathlib import Path
from typing import Any
from xml.sax.saxutils import escape

import pytest
from kafka import KafkaConsumer

from connectors.feed_state import SqliteFeedStateStore
from connectors.feeds import FeedList, FeedSpec
from connectors.producer import ArticleProducer
from connectors.rss.poller import Connector
from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.kafka_clients import client_options
from streams.schema.models import RawArticle, decode
from streams.settings import Settings
from streams.topic_range import assign_all, batches_until
from tests.integration.feed_server import FeedServer

PAGE = "https://diary.example/2008/06/26.html"
SHARED = "https://news.example/world/ankara-talks"


def rss(items: Sequence[tuple[str | None, str, str]]) -> bytes:
    parts = []
    for link, guid, title in items:
        link_xml = f"<link>{escape(link)}</link>" if link is not None else ""
        parts.append(
            f"<item><title>{escape(title)}</title>{link_xml}"
            f"<guid isPermaLink='false'>{escape(guid)}</guid>"
            f"<description>{escape(title)}.</description></item>"
        )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<link>https://diary.example/</link>{''.join(parts)}</channel></rss>"
    ).encode()


@pytest.fixture
def env(kafka: Settings, unique: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("NEWSFLOW_TOPICS__NAMESPACE", f"test.{unique}.")
    monkeypatch.setenv("NEWSFLOW_TOPICS__PARTITIONS", "3")
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__STATE_PATH", str(tmp_path / "state.sqlite"))
    monkeypatch.setenv("NEWSFLOW_CONNECTOR__METRICS_PORT", "0")
    settings = Settings()
    ensure_topics(settings, lambda _m: None, (topics.RAW,))
    return settings


def raw_records(settings: Settings) -> list[RawArticle]:
    consumer = KafkaConsumer(
        **client_options(settings.kafka), group_id=None, enable_auto_commit=False
    )
    try:
        parts, end = assign_all(consumer, topics.RAW.topic_name(settings.topics))
        consumer.seek_to_beginning(*parts)
        return [
            decode(RawArticle, m.value)
            for batch in batches_until(consumer, parts, end)
            for ms in batch.values()
            for m in ms
        ]
    finally:
        consumer.close()


def run_once(settings: Settings, flist: FeedList) -> Any:
    store = SqliteFeedStateStore(settings.connector.state_path)
    producer = ArticleProducer(settings)
    try:
        connector = Connector(settings.connector, flist, store, producer)
        connector.recover(settings)
        return asyncio.run(connector.run_once(every_feed=True))
    finally:
        producer.close()
        store.close()


def test_posts_sponsor_links_and_shared_articles_get_the_right_number_of_ids(
    env: Settings,
) -> None:
    diary = [
        (f"{PAGE}#a0806{n:02d}", f"post-0806{n:02d}", f"Eintrag {n}: Notiz") for n in range(50)
    ]
    news = [
        (SHARED + "?utm_source=rss", "n-1", "Görüşmeler Ankara'da sürüyor"),
        (SHARED, "n-2", "Sponsored: travel to Ankara"),  # a sponsor post reusing the link
        (None, "urn:uuid:77", "Без ссылки"),  # a GUID, no link
    ]
    wire = [(SHARED + "#comments", "https://wire.example/?p=9", "Talks go on in Ankara")]
    agency = [(SHARED, "agency-4471", "Ankara talks continue")]  # the same article, own GUID
    with FeedServer() as server:
        server.set_feed("/diary.xml", rss(diary))
        server.set_feed("/news.xml", rss(news))
        server.set_feed("/wire.xml", rss(wire))
        server.set_feed("/agency.xml", rss(agency))
        flist = FeedList(
            allow_private_addresses=True,
            feeds=tuple(
                FeedSpec(id=name, url=server.url(f"/{name}.xml"))
                for name in ("diary", "news", "wire", "agency")
            ),
        )
        summary = run_once(env, flist)
    records = raw_records(env)
    by_feed: dict[str, list[RawArticle]] = {}
    for raw in records:
        by_feed.setdefault(raw.source.feed.feed_id, []).append(raw)
    assert len(by_feed["diary"]) == 50
    assert len({r.article_id for r in by_feed["diary"]}) == 50
    assert {r.source.url for r in by_feed["diary"]} == {f"{PAGE}#a0806{n:02d}" for n in range(50)}
    assert len({r.article_id for r in by_feed["news"]}) == 3
    (no_link,) = [r for r in by_feed["news"] if r.source.guid == "urn:uuid:77"]
    assert no_link.source.url is None
    # The wire's lone item is the same article as nothing in "news" (there two distinct items
    # shared the link, so both carry their GUID in their identity), and keyed by the URL alone.
    (wired,) = by_feed["wire"]
    assert wired.source.url == SHARED
    # Two feeds, their own GUIDs, one link: one article id (one document downstream).
    assert [r.article_id for r in by_feed["agency"]] == [wired.article_id]
    assert len(records) == 55 and summary.articles["new"] == 55
