"""Shared fixtures: settings, and the real services (Kafka, Elasticsearch).

A test that needs a service asks for `kafka` or `elastic`. When the service is not reachable the
test is skipped with the reason, except under CI=true, where it fails: CI must never hide a
missing service behind a skip.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from streams.kafka_clients import client_options
from streams.schema import FeedRef, PipelineInfo, RawArticle, Source, StageStamp
from streams.schema.ids import article_id
from streams.settings import Settings

IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _unavailable(what: str, exc: BaseException) -> None:
    message = (
        f"{what} is not reachable ({type(exc).__name__}: {exc}); start it with `newsflow infra up`"
    )
    if IN_CI:
        pytest.fail("CI=true: " + message, pytrace=False)
    pytest.skip(message)


@pytest.fixture(scope="session")
def settings() -> Settings:
    return Settings()


@pytest.fixture(scope="session")
def kafka(settings: Settings) -> Settings:
    from kafka import KafkaAdminClient

    try:
        admin = KafkaAdminClient(
            **client_options(settings.kafka),
            request_timeout_ms=5000,
            client_id="newsflow-tests",
        )
        admin.list_topics()
        admin.close()
    except Exception as exc:
        _unavailable(f"Kafka at {settings.kafka.bootstrap_servers}", exc)
    return settings


@pytest.fixture(scope="session")
def elastic(settings: Settings) -> Iterator[Settings]:
    from streams.sinks.elastic import make_client

    client = make_client(settings.elastic)
    try:
        client.cluster.health(wait_for_status="yellow", timeout="5s")
    except Exception as exc:
        client.close()
        _unavailable(f"Elasticsearch at {settings.elastic.url}", exc)
    client.close()
    yield settings


# Every suffix this session handed out: only those namespaces' topics are ours to delete (a
# second pytest session on the same broker must not lose its topics when this one ends).
HANDED_OUT: set[str] = set()


@pytest.fixture
def unique() -> str:
    """A short unique suffix: each test gets its own topics and indices."""
    suffix = uuid.uuid4().hex[:10]
    HANDED_OUT.add(suffix)
    return suffix


def make_raw(
    n: int = 0,
    *,
    title: str = "Syria and Turkey sign defence deal",
    hint: str | None = "en",
    now: datetime | None = None,
) -> RawArticle:
    now = now or datetime.now(UTC)
    url = f"https://example.org/news/{n}"
    return RawArticle(
        article_id=article_id(url),
        source=Source(
            feed=FeedRef(feed_id="test-feed", url="https://example.org/feed.xml", name="Test"),
            url=url,
            title=f"{title} #{n}",
            summary=f"Summary {n} about Ankara and Damascus.",
            language_hint=hint,
            fetched_at=now,
            first_seen_at=now,
        ),
        pipeline=PipelineInfo(stages=(StageStamp(stage="connector", at=now, version="test"),)),
    )


@pytest.fixture(scope="session", autouse=True)
def _drop_test_topics(settings: Settings) -> Iterator[None]:
    """Delete the `test.<suffix>.*` topics of the suffixes this session handed out, so a
    developer's broker does not accumulate hundreds of them (each costs start-up time)."""
    from kafka import KafkaAdminClient

    def topics_now() -> set[str] | None:
        host, _, port = settings.kafka.bootstrap_servers.split(",")[0].rpartition(":")
        try:  # a quick probe first: without a broker the admin client waits for a minute
            socket.create_connection((host, int(port)), timeout=1).close()
        except OSError:
            return None
        try:
            admin = KafkaAdminClient(
                **client_options(settings.kafka),
                request_timeout_ms=5000,
                client_id="newsflow-tests",
            )
        except Exception:
            return None
        try:
            return set(admin.list_topics())
        finally:
            admin.close()

    before = topics_now()
    yield
    after = topics_now()
    if before is None or after is None:
        return
    created = sorted(
        t for t in after - before if t.startswith("test.") and t.split(".")[1] in HANDED_OUT
    )
    if created:
        from kafka import KafkaAdminClient

        admin = KafkaAdminClient(
            **client_options(settings.kafka),
            request_timeout_ms=30000,
            client_id="newsflow-tests",
        )
        try:
            admin.delete_topics(created)
        finally:
            admin.close()


def require_tool(name: str, found: str | None = None) -> str:
    """The path of a Prometheus tool, or skip (outside CI) / fail (CI=true) with the reason."""
    import shutil

    path = found or shutil.which(name)
    if path is None:
        message = (
            f"{name} is not installed (Debian/Ubuntu: "
            "`apt-get install --no-install-recommends prometheus`; .ci/run installs it)"
        )
        if IN_CI:
            pytest.fail("CI=true: " + message, pytrace=False)
        pytest.skip(message)
    return path


def promtool_check_metrics(text: str) -> None:
    """`promtool check metrics` on an endpoint's output: lint problems fail the test."""
    import subprocess

    promtool = require_tool("promtool")
    res = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert res.returncode == 0, res.stdout + res.stderr
