"""`newsflow status` against a real extract worker: the FULL TEXT figures it prints (and its
``--json`` carries) are the worker's own counts of the pages it handled here, exactly.

The worker runs on web port W; `newsflow status` is pointed at web port W - 2, so the worker is
the process it looks for as ``extract`` (web + 2). Pages are served on loopback by local
servers; one of them answers 429 with Retry-After, which leaves that host in backoff.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from streams.schema import RawArticle
from streams.settings import Settings
from tests.integration import stage_helpers as h
from tests.integration.feed_server import FeedServer
from tests.integration.test_extract_stage import extract_worker, page_html, raw_for

pytestmark = pytest.mark.timeout(300)


@pytest.fixture
def sites() -> Iterator[dict[str, FeedServer]]:
    with ExitStack() as stack:
        yield {name: stack.enter_context(FeedServer()) for name in ("news", "throttle")}


def item(url: str, n: int, feed: str, feed_url: str, full_text: str = "auto") -> RawArticle:
    raw = raw_for(url, n, full_text=full_text)
    ref = raw.source.feed.model_copy(update={"feed_id": feed, "url": feed_url})
    return raw.model_copy(update={"source": raw.source.model_copy(update={"feed": ref})})


def newsflow_status(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "status", "--sample-s", "0.2", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_status_shows_the_extract_workers_outcomes_latency_and_backoff(
    kafka: Settings,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    sites: dict[str, FeedServer],
) -> None:
    news, throttle = sites["news"], sites["throttle"]
    html = "text/html"
    news.set_response(
        "/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"
    )
    for i in range(5):
        news.set_response(f"/a/{i}.html", page_html(f"Ferry story {i}"), content_type=html)
    news.set_response("/b/gone.html", b"gone", status=404, content_type=html)
    news.set_response("/private/p.html", page_html("Private"), content_type=html)
    throttle.set_response("/t.html", page_html("Throttled"), content_type=html)
    throttle.set_throttle("/t.html", 429, retry_after="300")
    own = news.url("/feed.xml")
    raws = [
        *(item(news.url(f"/a/{i}.html"), i, "site-a", own) for i in range(3)),
        item(news.url("/a/3.html"), 3, "site-a", own, full_text="never"),  # skipped
        item(news.url("/a/4.html"), 4, "site-b", own),
        item(news.url("/b/gone.html"), 5, "site-b", own),  # http_4xx
        item(news.url("/private/p.html"), 6, "site-b", own),  # robots_denied
        item(throttle.url("/t.html"), 7, "throttled", throttle.url("/feed.xml")),  # 429
        item(news.url("/a/0.html?agg"), 8, "aggregator", "https://agg.example.net/f.xml"),
        item("tag:velmora.example,2026:9", 9, "site-a", own),  # no_url
    ]
    web = h.free_port()
    with extract_worker(
        kafka, unique, tmp_path, monkeypatch, {"NEWSFLOW_FAUST__WEB_PORT": str(web)}
    ) as worker:
        worker.produce(raws)
        assert len(worker.extracted(len(raws))) == len(raws), worker.log.read_text()[-3000:]
        env = {
            **h.isolated_env(kafka, unique, tmp_path),
            "NEWSFLOW_FAUST__WEB_PORT": str(web - 2),
            "NEWSFLOW_CONNECTOR__METRICS_PORT": str(h.free_port()),  # nobody's connector
            "NEWSFLOW_CONNECTOR__FEEDS_FILE": str(tmp_path / "no-feeds.yaml"),
        }
        res = newsflow_status(env, "--json")
        human = newsflow_status(env).stdout
        log = worker.log.read_text()

    assert res.returncode == 0, res.stderr[-3000:]
    status: dict[str, Any] = json.loads(res.stdout)
    (proc,) = [p for p in status["processes"] if p["process"] == "extract"]
    assert proc["up"] and proc["port"] == web, (status["processes"], log[-3000:])
    x = status["extract"]
    assert x["outcomes"] == {
        "http_4xx": 2,  # the 404 and the 429
        "no_url": 1,
        "ok": 5,
        "robots_denied": 1,
        "skipped": 1,
    }, log[-3000:]
    assert x["host_classes"] == {"cross_site": 1, "none": 1, "same_site": 8}
    # Fetch calls: every page wanted (8; the robots-denied one is refused inside the call,
    # before any request of the page); extracted: the five pages that came back 200.
    assert x["fetch"]["count"] == 8 and x["fetch"]["p95_s"] is not None
    assert x["extract"]["count"] == 5 and 0 < x["extract"]["p50_s"] < 5
    assert x["hosts_in_backoff"] == 1  # the throttled host: Retry-After 300 s
    assert x["failing_feeds"] == [
        {"feed": "throttled", "ok": 0, "failed": 1, "failure_ratio": 1.0},
        {"feed": "site-b", "ok": 1, "failed": 2, "failure_ratio": 0.667},
    ]
    assert "FULL TEXT" in human, human
    assert "  outcomes    http_4xx 2  no_url 1  ok 5  robots_denied 1  skipped 1" in human
    assert "  hosts in backoff  1" in human
    assert "throttled" in human and "1/1 pages failed (100%)" in human
