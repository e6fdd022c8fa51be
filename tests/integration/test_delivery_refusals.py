"""Elasticsearch refusing writes for an operator's reason, against a real index worker, real
Kafka and real Elasticsearch (issue 14.9): a write block, then rejected credentials (401) and
a missing privilege (403). No article may be dead-lettered: they wait and are retried, the
worker reports not ready with the reason and raises ``newsflow_elastic_writes_refused``; once
the operator fixes it, exactly the articles fed are indexed and the worker is ready again.

The write blocks are real, on the monthly index the articles go to: ``index.blocks.write``
(Elasticsearch answers each bulk item 403 cluster_block_exception) and
``index.blocks.read_only_allow_delete``, the block the flood-stage disk watermark sets (429
cluster_block_exception).

401/403 come from the real HTTP fault proxy (``fault_proxy``) in front of the real
Elasticsearch, answering
``_bulk`` the way a secured cluster does (status, ``security_exception`` body,
``WWW-Authenticate`` on 401) for as long as the test says, and forwarding everything else. Why
not the real thing: the shared local Elasticsearch runs with security off, and turning it on
means restarting the cluster every other engineer's tests are using, with new credentials for
all of them. The worker cannot tell the proxy's answers from a secured cluster's; the
classification sees the same status, error type and headers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from streams import topics
from streams.schema import encode
from streams.settings import Settings
from streams.sinks.elastic import index_for, make_client
from tests.integration import stage_helpers as h
from tests.integration.conftest import StageSetup
from tests.integration.fault_proxy import FaultPlan, fault_proxy

FIRST_SEEN = datetime(2026, 10, 7, tzinfo=UTC)

# What a secured Elasticsearch answers (bodies as the cluster writes them).
REFUSALS: dict[int, tuple[dict[str, Any], dict[str, str]]] = {
    401: (
        {
            "error": {
                "root_cause": [
                    {
                        "type": "security_exception",
                        "reason": "unable to authenticate with provided credentials and "
                        "anonymous access is not allowed for this request",
                    }
                ],
                "type": "security_exception",
                "reason": "unable to authenticate with provided credentials and anonymous "
                "access is not allowed for this request",
            },
            "status": 401,
        },
        {"WWW-Authenticate": 'Basic realm="security", charset="UTF-8", ApiKey'},
    ),
    403: (
        {
            "error": {
                "root_cause": [
                    {
                        "type": "security_exception",
                        "reason": "action [indices:data/write/bulk] is unauthorized for user "
                        "[newsflow] with effective roles [viewer]",
                    }
                ],
                "type": "security_exception",
                "reason": "action [indices:data/write/bulk] is unauthorized for user "
                "[newsflow] with effective roles [viewer]",
            },
            "status": 403,
        },
        {},
    ),
}


@pytest.fixture
def isolated(stage_setup: StageSetup) -> tuple[dict[str, str], Settings]:
    return stage_setup()


class Worker:
    """The index worker's health and metrics pages, and its dead letters."""

    def __init__(self, env: dict[str, str], settings: Settings, alive: Callable[[], None]):
        self.base = f"http://127.0.0.1:{env['NEWSFLOW_FAUST__WEB_PORT']}"
        self.settings = settings
        self.alive = alive

    def ready(self) -> tuple[int, dict[str, Any]]:
        status, body = h.http_get(self.base + "/health/ready")
        return status, (json.loads(body) if status in (200, 503) else {})

    def refused_gauge(self, reason: str) -> float | None:
        status, body = h.http_get(self.base + "/metrics")
        for line in body.splitlines() if status == 200 else ():
            if (
                line.startswith("newsflow_elastic_writes_refused{")
                and f'reason="{reason}"' in line
                and 'stage="index"' in line
            ):
                return float(line.rsplit(" ", 1)[1])
        return None

    def wait_refused(self, reason: str) -> dict[str, Any]:
        """Until /health/ready says 503 naming ``reason`` and the gauge is 1; the report."""
        seen: dict[str, Any] = {}

        def refused() -> bool:
            status, report = self.ready()
            seen.update(report)
            problem = str(report.get("problems", {}).get("elasticsearch", ""))
            return status == 503 and reason in problem and self.refused_gauge(reason) == 1.0

        assert h.wait_for(refused, 90, self.alive), f"not reported as {reason}: {seen}"
        return seen

    def dead_letters(self) -> list[Any]:
        dlq = topics.DLQ_INDEX.topic_name(self.settings.topics)
        return h.read_all(self.settings, dlq, 0, 3, self.alive)


def _indexed_ids(client: Elasticsearch, alias: str) -> list[str]:
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, size=1000, source=False)["hits"]["hits"]
    return [hit["_id"] for hit in hits]


@pytest.mark.parametrize(
    "block",
    [
        "index.blocks.write",  # an operator's block: items answer 403
        "index.blocks.read_only_allow_delete",  # what the flood-stage watermark sets: 429
    ],
)
def test_write_block_waits_reports_and_resumes(
    isolated: tuple[dict[str, str], Settings], tmp_path: Path, block: str
) -> None:
    env, settings = isolated
    client = make_client(settings.elastic)
    alias = settings.elastic.alias
    index = index_for(settings.elastic, FIRST_SEEN)
    client.indices.create(index=index)  # from the template, with the alias
    client.indices.put_settings(index=index, settings={block: True})
    articles = h.index_articles(FIRST_SEEN, range(60))
    h.produce(
        settings,
        topics.ENRICHED.topic_name(settings.topics),
        [(a.article_id.encode(), encode(a)) for a in articles],
    )
    log = tmp_path / "index.log"
    try:
        with h.worker("index", env, log) as proc:

            def alive() -> None:
                assert proc.poll() is None, log.read_text()[-4000:]

            worker = Worker(env, settings, alive)
            report = worker.wait_refused("write_block")
            time.sleep(3)  # retries go on; nothing may be dead-lettered or skipped meanwhile
            assert worker.dead_letters() == []
            assert _indexed_ids(client, alias) == []
            assert "cluster_block_exception" in report["problems"]["elasticsearch"]

            client.indices.put_settings(index=index, settings={block: False})

            def all_indexed() -> bool:
                return len(_indexed_ids(client, alias)) >= len(articles)

            assert h.wait_for(all_indexed, 90, alive), log.read_text()[-4000:]
            assert h.wait_for(lambda: worker.ready()[0] == 200, 30, alive), worker.ready()
            assert worker.refused_gauge("write_block") == 0.0
            time.sleep(2)
            assert worker.dead_letters() == []
    finally:
        client.indices.put_settings(index=index, settings={block: False})
    assert sorted(_indexed_ids(client, alias)) == sorted(a.article_id for a in articles)
    client.close()


def test_rejected_credentials_and_missing_privilege_wait_and_resume(
    isolated: tuple[dict[str, str], Settings], tmp_path: Path
) -> None:
    env, settings = isolated
    client = make_client(settings.elastic)
    alias = settings.elastic.alias
    articles = h.index_articles(FIRST_SEEN, range(60))
    h.produce(
        settings,
        topics.ENRICHED.topic_name(settings.topics),
        [(a.article_id.encode(), encode(a)) for a in articles],
    )
    plan = FaultPlan([], 0)
    plan.refusal = (401, *REFUSALS[401])  # an expired API key
    with fault_proxy(settings.elastic.url, plan) as url:
        log = tmp_path / "index.log"
        with h.worker("index", {**env, "NEWSFLOW_ELASTIC__URL": url}, log) as proc:

            def alive() -> None:
                assert proc.poll() is None, log.read_text()[-4000:]

            worker = Worker(env, settings, alive)
            worker.wait_refused("credentials")
            plan.refusal = (403, *REFUSALS[403])  # a new key, without the write privilege
            worker.wait_refused("privileges")
            assert worker.refused_gauge("credentials") == 0.0  # the current cause only
            assert worker.dead_letters() == []
            assert _indexed_ids(client, alias) == []
            refused = plan.refused

            plan.refusal = None  # the right key

            def all_indexed() -> bool:
                return len(_indexed_ids(client, alias)) >= len(articles)

            assert h.wait_for(all_indexed, 90, alive), log.read_text()[-4000:]
            assert h.wait_for(lambda: worker.ready()[0] == 200, 30, alive), worker.ready()
            assert worker.refused_gauge("privileges") == 0.0
            time.sleep(2)
            assert worker.dead_letters() == []
    assert refused >= 4  # it kept retrying (with backoff) while refused
    assert sorted(_indexed_ids(client, alias)) == sorted(a.article_id for a in articles)
    client.close()
