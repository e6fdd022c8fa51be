"""The real ``PageFetcher`` against real local HTTP servers (``FeedServer``, one per "host"):
robots.txt, per-host spacing and concurrency, 429 backoff, hanging hosts, redirect loops and
oversized pages, with exact request counts on the server side.

No Kafka or Elasticsearch needed; nothing here may skip. Two servers on 127.0.0.1 with
different ports are two hosts (the politeness key is host:port). Pages live on loopback, so
``allow_private=True`` except in the SSRF test.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing as mp
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from multiprocessing.connection import Connection
from typing import Any, TypeVar

import pytest
from aiohttp import web

from streams.net.pages import PageFetcher, PageResult
from streams.settings import HostPolicy, PageFetchSettings
from tests.integration.feed_server import FeedServer

T = TypeVar("T")

HTML = b"<!doctype html><html><head><title>t</title></head><body><p>hello</p></body></html>"


def settings(**kw: Any) -> PageFetchSettings:
    base: dict[str, Any] = {
        "user_agent": "newsflow/0.1 (tests)",
        "allow_private": True,
        "per_host": 2,
        "min_spacing_s": 0.0,
        "deadline_s": 10.0,
        "connect_timeout_s": 2.0,
        "read_timeout_s": 2.0,
        "total_timeout_s": 3.0,
        "robots_timeout_s": 2.0,
        "max_wire_bytes": 1 << 20,
        "max_page_bytes": 1 << 20,
    }
    base.update(kw)
    return PageFetchSettings(**base)


def run(body: Callable[[PageFetcher], Awaitable[T]], **kw: Any) -> T:
    async def go() -> T:
        async with PageFetcher(settings(**kw)) as pages:
            return await body(pages)

    return asyncio.run(go())


def fetch_one(url: str, **kw: Any) -> PageResult:
    return run(lambda p: p.fetch(url), **kw)


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


@pytest.fixture
def other() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def timed_page(server: FeedServer, path: str, starts: list[float], body: bytes = HTML) -> None:
    """Serve ``body`` at ``path`` and note when each request arrived (monotonic clock)."""

    async def serve(request: web.Request) -> web.StreamResponse:
        starts.append(time.monotonic())
        return web.Response(body=body, content_type="text/html", charset="utf-8")

    server.route(path, serve)


# ------------------------------------------------------------------ robots.txt


def test_robots_disallow_is_respected_and_robots_is_fetched_once(srv: FeedServer) -> None:
    srv.set_response(
        "/robots.txt",
        b"User-agent: *\nDisallow: /\n\nUser-agent: newsflow\nDisallow: /private/\n",
        content_type="text/plain",
    )
    srv.set_response("/private/a.html", HTML, content_type="text/html")
    srv.set_response("/news/a.html", HTML, content_type="text/html; charset=ISO-8859-1")

    async def body(pages: PageFetcher) -> list[PageResult]:
        return list(
            await asyncio.gather(
                pages.fetch(srv.url("/private/a.html")),
                pages.fetch(srv.url("/news/a.html")),
                pages.fetch(srv.url("/news/a.html?x=1")),
            )
        )

    denied, ok, ok2 = run(body)
    assert denied.status == "robots_denied" and denied.body is None
    assert "disallows" in (denied.error_message or "")
    assert ok.status == "fetched" and ok.body == HTML and ok2.status == "fetched"
    assert ok.http_status == 200 and ok.charset == "iso-8859-1"
    assert ok.headers["content-type"] == "text/html; charset=ISO-8859-1"
    # robots.txt once for three concurrent pages; the disallowed page never requested
    assert srv.hits == {"/robots.txt": 1, "/news/a.html": 2}
    assert all(r.headers.get("User-Agent") == "newsflow/0.1 (tests)" for r in srv.requests)
    accept = {r.path: r.headers.get("Accept", "") for r in srv.requests}
    assert accept["/robots.txt"].startswith("text/plain")
    assert accept["/news/a.html"].startswith("text/html")


def test_robots_404_allows_everything(srv: FeedServer) -> None:
    srv.set_response("/a.html", HTML, content_type="text/html")
    r = fetch_one(srv.url("/a.html"))
    assert r.status == "fetched"
    assert srv.hits == {"/robots.txt": 1, "/a.html": 1}


def test_robots_5xx_disallows_the_host_for_a_while_then_asks_again(srv: FeedServer) -> None:
    srv.set_response("/robots.txt", b"down", status=503, content_type="text/plain")
    srv.set_response("/a.html", HTML, content_type="text/html")

    async def body(pages: PageFetcher) -> list[PageResult]:
        first = await pages.fetch(srv.url("/a.html"))
        second = await pages.fetch(srv.url("/a.html"))  # within robots_error_ttl_s: cached
        srv.set_response("/robots.txt", b"User-agent: *\nAllow: /\n", content_type="text/plain")
        await asyncio.sleep(0.7)  # past robots_error_ttl_s
        third = await pages.fetch(srv.url("/a.html"))
        return [first, second, third]

    # a 503 on robots.txt also backs the host off (like any 503): keep that short here
    first, second, third = run(body, robots_error_ttl_s=0.5, backoff_initial_s=0.3)
    assert first.status == second.status == "robots_denied"
    assert "unreachable (http_503)" in (first.error_message or "")
    assert third.status == "fetched"
    assert srv.hits == {"/robots.txt": 2, "/a.html": 1}


def test_unreachable_robots_keeps_the_earlier_good_copy(srv: FeedServer) -> None:
    srv.set_response("/robots.txt", b"User-agent: *\nDisallow: /x\n", content_type="text/plain")
    srv.set_response("/a.html", HTML, content_type="text/html")
    srv.set_response("/x.html", HTML, content_type="text/html")

    async def body(pages: PageFetcher) -> list[PageResult]:
        first = await pages.fetch(srv.url("/a.html"))
        srv.set_response("/robots.txt", b"down", status=500, content_type="text/plain")
        await asyncio.sleep(0.4)  # the good copy expired (robots_ttl_s)
        return [first, await pages.fetch(srv.url("/a.html")), await pages.fetch(srv.url("/x"))]

    first, during_outage, still_denied = run(body, robots_ttl_s=0.3)
    assert first.status == during_outage.status == "fetched"
    assert still_denied.status == "robots_denied"
    assert srv.hits == {"/robots.txt": 2, "/a.html": 2}


def test_robots_of_a_redirect_target_host_is_checked(srv: FeedServer, other: FeedServer) -> None:
    other.set_response("/robots.txt", b"User-agent: *\nDisallow: /\n", content_type="text/plain")
    other.set_response("/a.html", HTML, content_type="text/html")
    srv.set_redirect("/r", other.url("/a.html"), 302)
    r = fetch_one(srv.url("/r"))
    assert r.status == "robots_denied"
    assert r.final_url == other.url("/a.html")
    assert other.hits == {"/robots.txt": 1}


# ------------------------------------------------------------------ per-host pacing


def test_one_host_is_spaced_while_another_host_is_served_meanwhile(
    srv: FeedServer, other: FeedServer
) -> None:
    slow: list[float] = []
    fast: list[float] = []
    for i in range(3):
        timed_page(srv, f"/s{i}", slow)
        timed_page(other, f"/f{i}", fast)

    async def body(pages: PageFetcher) -> list[PageResult]:
        calls = [pages.fetch(srv.url(f"/s{i}")) for i in range(3)]
        # the fast host's own policy for this call: no spacing (as a feed setting would)
        calls += [
            pages.fetch(other.url(f"/f{i}"), host_policy=HostPolicy(per_host=2, min_spacing_s=0))
            for i in range(3)
        ]
        return list(await asyncio.gather(*calls))

    results = run(body, min_spacing_s=1.0)
    assert [r.status for r in results] == ["fetched"] * 6
    assert len(slow) == 3 and len(fast) == 3
    slow.sort()
    gaps = [b - a for a, b in itertools.pairwise(slow)]
    assert min(gaps) >= 0.98, gaps  # 1 s apart (robots.txt took the slot before them)
    # the other host was done before the slow host's second page was even asked for
    assert max(fast) < slow[1], (fast, slow)
    assert srv.max_in_flight <= 2


def test_per_host_concurrency_is_capped(srv: FeedServer) -> None:
    srv.set_response("/robots.txt", b"", content_type="text/plain")
    for i in range(6):
        srv.set_feed(f"/p{i}", HTML, content_type="text/html", delay_s=0.2)

    async def body(pages: PageFetcher) -> list[PageResult]:
        return list(await asyncio.gather(*(pages.fetch(srv.url(f"/p{i}")) for i in range(6))))

    results = run(body, per_host=2)
    assert [r.status for r in results] == ["fetched"] * 6
    assert srv.max_in_flight == 2


def test_429_with_retry_after_backs_off_that_host_only(srv: FeedServer, other: FeedServer) -> None:
    for s in (srv, other):
        for p in ("/a", "/b", "/c"):
            s.set_response(p, HTML, content_type="text/html")
    srv.set_throttle("/a", 429, retry_after="2", times=1)

    async def body(pages: PageFetcher) -> dict[str, Any]:
        throttled = await pages.fetch(srv.url("/a"))
        in_backoff = pages.hosts_in_backoff()
        refused = await pages.fetch(srv.url("/b"), deadline_s=1.0)  # backoff outlasts it
        t0 = time.monotonic()
        others = await asyncio.gather(*(pages.fetch(other.url(p)) for p in ("/a", "/b", "/c")))
        others_s = time.monotonic() - t0
        waited = await pages.fetch(srv.url("/c"), deadline_s=5.0)  # waits the backoff out
        return {
            "throttled": throttled,
            "in_backoff": in_backoff,
            "refused": refused,
            "others": others,
            "others_s": others_s,
            "waited": waited,
            "after": pages.hosts_in_backoff(),
        }

    out = run(body)
    throttled: PageResult = out["throttled"]
    assert throttled.status == "http_4xx" and throttled.http_status == 429
    assert throttled.retry_after_s == 2.0
    key = f"127.0.0.1:{srv.port}"
    assert list(out["in_backoff"]) == [key] and 1.5 < out["in_backoff"][key] <= 2.0
    assert out["refused"].status == "backoff"
    assert [r.status for r in out["others"]] == ["fetched"] * 3
    assert out["others_s"] < 1.0  # the other host did not wait for anyone's backoff
    assert out["waited"].status == "fetched"
    assert out["after"] == {}
    assert srv.hits == {"/robots.txt": 1, "/a": 1, "/c": 1}  # /b never reached the server


def test_503_without_retry_after_backs_off_with_the_initial_delay(srv: FeedServer) -> None:
    srv.set_response("/a", b"busy", status=503, content_type="text/plain")

    async def body(pages: PageFetcher) -> tuple[PageResult, dict[str, float]]:
        return await pages.fetch(srv.url("/a")), pages.hosts_in_backoff()

    r, backoff = run(body, backoff_initial_s=7.0)
    assert r.status == "http_5xx" and r.http_status == 503 and r.retry_after_s is None
    assert 6.0 < backoff[f"127.0.0.1:{srv.port}"] <= 7.0


def test_a_hanging_host_times_out_without_stalling_others(
    srv: FeedServer, other: FeedServer
) -> None:
    srv.set_hang("/hang")
    srv.set_response("/next", HTML, content_type="text/html")
    for i in range(4):
        other.set_response(f"/p{i}", HTML, content_type="text/html")

    async def body(pages: PageFetcher) -> tuple[list[PageResult], list[float]]:
        t0 = time.monotonic()
        done: list[float] = []

        async def timed(url: str, **kw: Any) -> PageResult:
            r = await pages.fetch(url, **kw)
            done.append(time.monotonic() - t0)
            return r

        hang = [timed(srv.url("/hang")), timed(srv.url("/hang"), deadline_s=0.8)]
        rest = [timed(other.url(f"/p{i}")) for i in range(4)]
        results = list(await asyncio.gather(*hang, *rest))
        return results, done

    results, done = run(body, per_host=1, total_timeout_s=1.5, read_timeout_s=10.0)
    hung, queued, *rest = results
    assert hung.status == "timeout" and hung.error == "timeout"
    assert 1.4 < hung.elapsed_s < 3.0
    # the second call waits behind the hanging one (per_host=1) and hits its own deadline
    assert queued.status == "timeout" and queued.error == "deadline"
    assert [r.status for r in rest] == ["fetched"] * 4
    assert sorted(done)[3] < 1.0  # the other host's four pages were all done within 1 s
    assert srv.hits["/hang"] == 1


# ------------------------------------------------------------------ guards


def test_redirect_loops_end(srv: FeedServer) -> None:
    srv.set_redirect("/a", "/b", 302)
    srv.set_redirect("/b", "/a", 302)
    srv.set_redirect_chain("/chain", 8, "/end")
    srv.set_response("/end", HTML, content_type="text/html")

    async def body(pages: PageFetcher) -> list[PageResult]:
        return [await pages.fetch(srv.url("/a")), await pages.fetch(srv.url("/chain"))]

    loop_r, chain_r = run(body, max_redirects=5)
    assert loop_r.status == "redirect_loop" and loop_r.error == "redirect_loop"
    assert chain_r.status == "redirect_loop" and chain_r.error == "too_many_redirects"
    assert srv.hits["/a"] == 1 and srv.hits["/b"] == 1 and "/end" not in srv.hits


def _serve_big_page(conn: Connection, chunked: bool) -> None:
    """Child process: serve a 20 MB page, so that only the client's memory is traced."""
    page = b"<html><body>" + b"<p>news</p>" * (20 * 2**20 // 11) + b"</body></html>"
    with FeedServer() as server:
        server.set_response("/big.html", page, content_type="text/html", chunked=chunked)
        server.set_response("/robots.txt", b"", content_type="text/plain")
        conn.send((server.url("/big.html"), len(page)))
        conn.recv()
        conn.send(dict(server.hits))


@pytest.mark.parametrize("chunked", [False, True])
def test_a_20_mb_page_is_refused_with_bounded_memory(chunked: bool) -> None:
    ctx = mp.get_context("spawn")
    ours, theirs = ctx.Pipe()
    child = ctx.Process(target=_serve_big_page, args=(theirs, chunked), daemon=True)
    child.start()
    try:
        assert ours.poll(30), "page server did not start"
        url, size = ours.recv()
        assert size > 20 * 2**20
        tracemalloc.start()
        try:
            started = time.perf_counter()
            r = fetch_one(url, max_wire_bytes=2 << 20, max_page_bytes=2 << 20)
            elapsed = time.perf_counter() - started
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        ours.send("stop")
        assert ours.poll(10)
        hits = ours.recv()
    finally:
        child.join(10)
        if child.is_alive():
            child.kill()
    assert r.status == "too_large" and r.body is None
    if chunked:  # cut while streaming, just past the wire cap
        assert (2 << 20) < r.wire_bytes <= (2 << 20) + (256 << 10)
    else:  # refused on its Content-Length, before reading a byte of it
        assert r.wire_bytes == 0 and "Content-Length" in (r.error_message or "")
    assert peak < 6 << 20, peak  # bounded by the 2 MiB cap, far below the 20 MB page
    assert elapsed < 3
    assert hits == {"/robots.txt": 1, "/big.html": 1}


def test_gzip_bomb_page_is_too_large(srv: FeedServer) -> None:
    srv.set_bomb("/bomb.html", "gzip", size=64 << 20)
    r = fetch_one(srv.url("/bomb.html"), max_page_bytes=1 << 20)
    assert r.status == "too_large" and "after gzip" in (r.error_message or "")


def test_loopback_is_refused_without_allow_private_and_nothing_is_sent(srv: FeedServer) -> None:
    srv.set_response("/a.html", HTML, content_type="text/html")
    r = fetch_one(srv.url("/a.html"), allow_private=False)
    assert r.status == "refused" and r.error == "blocked_address"
    assert srv.hits == {}
    # the per-call override of the address policy
    r = run(lambda p: p.fetch(srv.url("/a.html"), allow_private=True), allow_private=False)
    assert r.status == "fetched"


def test_http_errors_and_bad_urls_are_classified(srv: FeedServer) -> None:
    srv.set_response("/gone", b"", status=410, content_type="text/plain")
    srv.set_response("/boom", b"", status=500, content_type="text/plain")

    async def body(pages: PageFetcher) -> list[PageResult]:
        return [
            await pages.fetch(srv.url("/gone")),
            await pages.fetch(srv.url("/boom")),
            await pages.fetch("ftp://example.org/x"),
            await pages.fetch("http://127.0.0.1:1/nothing-listens"),
        ]

    gone, boom, ftp, closed = run(body)
    assert (gone.status, gone.http_status, gone.error) == ("http_4xx", 410, "http_410")
    assert (boom.status, boom.http_status) == ("http_5xx", 500)
    assert ftp.status == "bad_url"
    # robots.txt of a closed port cannot be read: nothing more is tried, and the page says why
    assert closed.status == "network_error" and closed.error == "connect"
