"""The index stage's write loop against real Elasticsearch behind a fault-injecting proxy:
429/503 answers and item-level rejections are retried in place until everything is written;
nothing is dead-lettered for a transient fault, nothing is written twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

import pytest
from elasticsearch import Elasticsearch

from streams.commands.bootstrap import ensure_elastic
from streams.schema import Article, LanguageInfo
from streams.settings import RetrySettings, Settings
from streams.sinks.elastic import ElasticSink, write_until_settled
from tests.conftest import make_raw
from tests.integration.fault_proxy import FaultPlan, fault_proxy


@pytest.fixture
def isolated(isolated_es: tuple[Settings, Elasticsearch]) -> tuple[Settings, Elasticsearch]:
    settings, client = isolated_es
    ensure_elastic(settings, lambda _m: None, client=client)
    return settings, client


def _articles(n: int) -> list[Article]:
    out = []
    for i in range(n):
        raw = make_raw(i)
        out.append(
            Article(
                article_id=raw.article_id,
                source=raw.source,
                language=LanguageInfo(code="en", confidence=1.0, method="text"),
            )
        )
    return out


def test_transient_faults_are_retried_until_written(
    isolated: tuple[Settings, Elasticsearch],
) -> None:
    settings, client = isolated
    plan = FaultPlan(request_errors=[503, 429, 503], item_429_rounds=2)
    articles = _articles(25)
    with fault_proxy(settings.elastic.url, plan) as url:
        sink = ElasticSink(settings.elastic.model_copy(update={"url": url}))
        sink.start()
        bulk = sink.prepare(articles, datetime.now(UTC))
        retry = RetrySettings(initial_s=0.05, max_s=0.2)
        settled = asyncio.run(write_until_settled(sink, bulk, retry, "index"))
        sink.close()
    assert len(settled) == len(articles)  # one result per article, in order
    assert all(s.indexed for s in settled)
    # The client retries the refused requests itself (one send); then item 0 is refused
    # twice (429) and written in the third send: attempts count the sink's sends per item.
    assert [s.attempts for s in settled] == [3] + [1] * (len(articles) - 1)
    assert plan.bulk_calls == 3 + 2 + 1  # three refused requests, two partial, one clean
    client.indices.refresh(index=settings.elastic.alias)
    assert client.count(index=settings.elastic.alias)["count"] == len(articles)


def test_unreachable_elasticsearch_waits_instead_of_skipping(
    isolated: tuple[Settings, Elasticsearch],
) -> None:
    settings, _client = isolated
    sink = ElasticSink(
        settings.elastic.model_copy(update={"url": "http://127.0.0.1:9", "request_timeout_s": 1.0})
    )
    sink.start()
    bulk = sink.prepare(_articles(1), datetime.now(UTC))
    retry = RetrySettings(initial_s=0.05, max_s=0.1)

    async def bounded() -> None:
        await asyncio.wait_for(write_until_settled(sink, bulk, retry, "index"), 2.0)

    with pytest.raises(TimeoutError):  # still retrying after 2 s: it never gives up or skips
        asyncio.run(bounded())
    sink.close()
