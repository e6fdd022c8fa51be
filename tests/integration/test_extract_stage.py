"""The extract stage as a real worker process against the real broker: raw articles in, one
extracted record per article out (body from the page, the feed's summary kept, the reason in
``extraction.status``), poison to news.dlq.extract; and page faults (down, slow, hanging,
robots.txt 5xx and 404, redirect loops, a 20 MB page, 429 with Retry-After) that lose nothing
and leave the other hosts alone. Exact id sets throughout.

The pages are served by local servers, one per "host" (the pacing key is host:port), written
here; no network beyond loopback.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import pytest

from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.deadletter import parse_headers
from streams.schema import ExtractedArticle, RawArticle, decode, encode
from streams.schema.ids import article_id
from streams.settings import PageFetchSettings, Settings
from streams.stages.extract import decide, host_policy
from tests.conftest import make_raw
from tests.integration import stage_helpers as h
from tests.integration.feed_server import FeedServer

pytestmark = pytest.mark.timeout(300)

LEAD = "Harbour officials in Velmora said on Monday that the night ferry will run again."
BODY_PARAGRAPHS = (
    "The night ferry between Velmora and the island of Ostrin will resume in April after "
    "two winters out of service, the harbour authority said on Monday.",
    "Harbour master Ilse Varnhagen told reporters that the repaired vessel passed its sea "
    "trials last week and that the crew of the Ostrin Line had been trained on the new "
    "engines supplied by Kordel Marine Works.",
    "Residents of Ostrin had campaigned for the return of the service, which carried "
    "nearly ninety thousand passengers a year before the breakdown.",
    "Tickets go on sale at the Velmora terminal and online from the first of March.",
)


def page_html(title: str, paragraphs: tuple[str, ...] = BODY_PARAGRAPHS) -> bytes:
    """A news page with the furniture real pages carry around the article."""
    nav = "".join(f'<li><a href="/section/{s}">{s.title()}</a></li>' for s in ("world", "sport"))
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>"
        f"<title>{title} | Velmora Courier</title>"
        "<meta property='og:image' content='/img/ferry.jpg'>"
        "<meta name='author' content='Tomas Reel'></head><body>"
        f"<header><nav><ul>{nav}</ul></nav></header>"
        "<div class='cookie'>We use cookies. <button>OK</button></div>"
        f"<main><article><h1>{title}</h1><p class='byline'>By Tomas Reel</p>{body}</article>"
        "<aside><h3>Related</h3><ul><li><a href='/a'>Port fees rise</a></li></ul></aside></main>"
        "<footer>© Velmora Courier · <a href='/contact'>Contact</a></footer></body></html>"
    ).encode()


def raw_for(url: str, n: int, *, summary: str = LEAD, full_text: str = "auto") -> RawArticle:
    base = make_raw(n, title="Night ferry to Ostrin returns")
    feed = base.source.feed.model_copy(update={"full_text": full_text})
    src = base.source.model_copy(update={"url": url, "summary": summary, "feed": feed})
    return base.model_copy(update={"article_id": article_id(url), "source": src})


@pytest.fixture
def servers() -> Iterator[dict[str, FeedServer]]:
    names = ("good", "slow", "hang", "robots5xx", "robots404", "loop", "big", "throttle")
    with ExitStack() as stack:
        yield {name: stack.enter_context(FeedServer()) for name in names}


class Worker:
    """An extract worker of the test's own namespace, and what it wrote."""

    def __init__(self, settings: Settings, alive: Any, log: Path) -> None:
        self.settings, self.alive, self.log = settings, alive, log
        self.started = time.monotonic()

    def produce(
        self, raws: list[RawArticle], extra: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        records = [(r.article_id.encode(), encode(r)) for r in raws] + list(extra or [])
        h.produce(self.settings, topics.RAW.topic_name(self.settings.topics), records)

    def extracted(self, expect: int) -> list[Any]:
        topic = topics.EXTRACTED.topic_name(self.settings.topics)
        return h.read_all(self.settings, topic, expect, 120, self.alive)

    def letters(self) -> list[Any]:
        topic = topics.DLQ_EXTRACT.topic_name(self.settings.topics)
        return h.read_all(self.settings, topic, 0, 1, self.alive)


@contextmanager
def extract_worker(
    kafka: Settings,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    extra: dict[str, str] | None = None,
) -> Iterator[Worker]:
    env = {
        **h.isolated_env(kafka, unique, tmp_path),
        "NEWSFLOW_PAGE_FETCH__ALLOW_PRIVATE": "true",  # the page servers are on 127.0.0.1
        "NEWSFLOW_PAGE_FETCH__MIN_SPACING_S": "0.1",
        **(extra or {}),
    }
    settings = h.settings_for(env, monkeypatch)
    ensure_topics(settings, lambda _m: None)
    log = tmp_path / "extract.log"
    with h.worker("extract", env, log) as proc:

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        yield Worker(settings, alive, log)


def test_extract_worker_round_trip(
    kafka: Settings,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, FeedServer],
) -> None:
    srv = servers["good"]
    srv.set_response(
        "/robots.txt", b"User-agent: *\nDisallow: /private/\n", content_type="text/plain"
    )
    srv.set_response(
        "/news/ferry.html", page_html("Night ferry to Ostrin returns"), content_type="text/html"
    )
    srv.set_response("/news/gone.html", b"gone", status=404, content_type="text/html")
    srv.set_response("/private/p.html", page_html("Private"), content_type="text/html")
    fetched = raw_for(srv.url("/news/ferry.html"), 1)
    long_feed = raw_for(srv.url("/news/long.html"), 2, summary=LEAD * 10)  # >= 600 chars
    never = raw_for(srv.url("/news/never.html"), 3, full_text="never")
    no_url = raw_for("tag:velmora.example,2026:4", 4)
    gone = raw_for(srv.url("/news/gone.html"), 5)
    denied = raw_for(srv.url("/private/p.html"), 6)
    always = raw_for(srv.url("/news/always.html"), 7, summary=LEAD * 10, full_text="always")
    srv.set_response("/news/always.html", page_html("Ferry"), content_type="text/html")
    raws = [fetched, long_feed, never, no_url, gone, denied, always, fetched]  # fetched twice
    poison = [(b"poison", b'{"schema_version": "1.2", "article_id": 7}')]
    with extract_worker(kafka, unique, tmp_path, monkeypatch) as worker:
        worker.produce(raws[:2], poison)
        worker.produce(raws[2:])
        out = worker.extracted(len(raws))
        letters = worker.letters()
        log = worker.log.read_text()

    got = [decode(ExtractedArticle, bytes(m.value)) for m in out]
    assert len(got) == len(raws), log[-3000:]  # none lost, none duplicated
    assert sorted(a.article_id for a in got) == sorted(r.article_id for r in raws)
    assert all(bytes(m.key) == a.article_id.encode() for m, a in zip(out, got, strict=True))
    by_id = {a.article_id: a for a in got}
    status = {r.source.url: by_id[r.article_id].extraction.status for r in raws}  # type: ignore[union-attr]
    assert status == {
        fetched.source.url: "ok",
        long_feed.source.url: "skipped",
        never.source.url: "skipped",
        no_url.source.url: "no_url",
        gone.source.url: "http_4xx",
        denied.source.url: "robots_denied",
        always.source.url: "ok",
    }, status
    ok = by_id[fetched.article_id]
    assert ok.body is not None and "Ilse Varnhagen" in ok.body and "Kordel Marine Works" in ok.body
    assert "cookies" not in ok.body and "Contact" not in ok.body  # page furniture left out
    assert ok.source == fetched.source  # the feed's own title and summary are kept
    info = ok.extraction
    assert info is not None and info.chars == len(ok.body) and info.http_status == 200
    assert info.method and info.fetched_at is not None and info.final_url == fetched.source.url
    assert [s.stage for s in ok.pipeline.stages] == ["connector", "extract"]
    assert "extractor" in ok.pipeline.models
    for raw in (long_feed, never, no_url, gone, denied):
        article = by_id[raw.article_id]
        assert article.body is None and article.source == raw.source
    assert by_id[gone.article_id].extraction.http_status == 404  # type: ignore[union-attr]
    # Once per article: the duplicate was not fetched again; skipped pages never at all.
    assert srv.hits["/news/ferry.html"] == 1, dict(srv.hits)
    assert srv.hits["/robots.txt"] == 1 and "/news/long.html" not in srv.hits
    assert "/news/never.html" not in srv.hits and "/private/p.html" not in srv.hits
    assert len(letters) == 1 and bytes(letters[0].key) == b"poison"
    headers = parse_headers(letters[0].headers)
    assert headers["stage"] == "extract" and headers["error-class"] == "ValidationError"


def test_page_faults_lose_nothing_and_leave_other_hosts_alone(
    kafka: Settings,
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    servers: dict[str, FeedServer],
) -> None:
    html = "text/html"
    good = servers["good"]
    for i in range(8):
        good.set_response(f"/n/{i}.html", page_html(f"Good story {i}"), content_type=html)
    servers["slow"].set_feed("/n/slow.html", page_html("Slow"), content_type=html, delay_s=2.0)
    servers["hang"].set_hang("/n/hang.html")
    servers["robots5xx"].set_response("/robots.txt", b"oops", status=503, content_type="text/plain")
    servers["robots5xx"].set_response("/n/r5.html", page_html("R5"), content_type=html)
    servers["robots404"].set_response("/n/r4.html", page_html("R4"), content_type=html)
    servers["loop"].set_redirect("/n/a.html", "/n/b.html", 302)
    servers["loop"].set_redirect("/n/b.html", "/n/a.html", 302)
    big = b"<html><body>" + b"<p>news</p>" * (20 * 2**20 // 11) + b"</body></html>"
    servers["big"].set_response("/n/big.html", big, content_type=html, chunked=True)
    servers["throttle"].set_response("/n/t1.html", page_html("T1"), content_type=html)
    servers["throttle"].set_response("/n/t2.html", page_html("T2"), content_type=html)
    servers["throttle"].set_throttle("/n/t1.html", 429, retry_after="120")
    down = f"http://127.0.0.1:{h.free_port()}/n/down.html"  # nothing listens there

    expected = {
        **{good.url(f"/n/{i}.html"): "ok" for i in range(8)},
        servers["slow"].url("/n/slow.html"): "ok",
        servers["hang"].url("/n/hang.html"): "timeout",
        servers["robots5xx"].url("/n/r5.html"): "robots_denied",
        servers["robots404"].url("/n/r4.html"): "ok",
        servers["loop"].url("/n/a.html"): "redirect_loop",
        servers["big"].url("/n/big.html"): "too_large",
        servers["throttle"].url("/n/t1.html"): "http_4xx",  # the 429 itself
        down: "network_error",
    }
    raws = [raw_for(url, i) for i, url in enumerate(expected)]
    # After the 429 the host backs off 120 s, far beyond the page deadline: the next page of
    # that host is not requested at all and passes on as "backoff".
    later = raw_for(servers["throttle"].url("/n/t2.html"), 99)
    deadline = 6.0
    env = {"NEWSFLOW_EXTRACT__PAGE_DEADLINE_S": str(deadline)}
    with extract_worker(kafka, unique, tmp_path, monkeypatch, env) as worker:
        worker.produce(raws)
        out = worker.extracted(len(raws))
        took = time.monotonic() - worker.started
        # The throttled host is backing off now (Retry-After: 120 s, beyond the deadline): its
        # next page is not requested at all and passes on with its summary as "backoff".
        worker.produce([later])
        again = worker.extracted(len(raws) + 1)
        letters = worker.letters()
        log = worker.log.read_text()
    got = {a.article_id: a for a in (decode(ExtractedArticle, bytes(m.value)) for m in out)}
    assert len(out) == len(raws), log[-4000:]  # nothing lost, nothing twice
    assert set(got) == {r.article_id for r in raws}
    status = {r.source.url: got[r.article_id].extraction.status for r in raws}  # type: ignore[union-attr]
    assert status == expected, status
    for raw in raws:
        article = got[raw.article_id]
        assert article.source == raw.source  # every article keeps its summary
        info = article.extraction
        assert info is not None
        if info.status == "ok":
            assert article.body and "Ilse Varnhagen" in article.body
        else:
            assert article.body is None and info.reason
    # The good host was served once per page, however the others misbehaved, and the batch
    # took about one page deadline (the hanging host), not longer (start-up included).
    assert all(good.hits[f"/n/{i}.html"] == 1 for i in range(8)), dict(good.hits)
    assert servers["robots5xx"].hits["/n/r5.html"] == 0  # robots.txt 5xx: host disallowed
    assert servers["big"].hits["/n/big.html"] == 1
    assert took < 45, took
    assert len(again) == len(raws) + 1
    (last,) = [
        a
        for a in (decode(ExtractedArticle, bytes(m.value)) for m in again)
        if a.article_id == later.article_id
    ]
    assert last.source == later.source
    assert last.extraction is not None and last.extraction.status == "backoff", last.extraction
    assert servers["throttle"].hits["/n/t2.html"] == 0
    assert letters == []


def test_decide_follows_the_feed_policy() -> None:
    short = raw_for("https://velmora.example/a", 1)
    assert decide(short, 600) is None
    assert decide(short, 600, fetch_pages=False) == ("skipped", "extract.fetch_pages is off")
    long_ = raw_for("https://velmora.example/b", 2, summary="x" * 600)
    assert decide(long_, 600) is not None and decide(long_, 600)[0] == "skipped"  # type: ignore[index]
    assert (
        decide(raw_for("https://velmora.example/c", 3, summary="x" * 600, full_text="always"), 600)
        is None
    )
    assert decide(raw_for("https://velmora.example/d", 4, full_text="never"), 600)[0] == "skipped"  # type: ignore[index]
    assert decide(raw_for("mailto:desk@velmora.example", 5), 600)[0] == "no_url"  # type: ignore[index]


def test_feed_pacing_overrides_the_defaults_per_part() -> None:
    from streams.schema import PagePolicy

    defaults = PageFetchSettings()
    assert host_policy(None, defaults) is None
    assert host_policy(PagePolicy(), defaults) is None
    mixed = host_policy(PagePolicy(min_spacing_s=5), defaults)
    assert mixed is not None and (mixed.per_host, mixed.min_spacing_s) == (defaults.per_host, 5)
