"""The real ``Fetcher`` against the local ``FeedServer``: conditional GET, decoding caps,
redirects, timeouts, throttling, the SSRF guard and politeness, with exact outcomes.

No Kafka or Elasticsearch needed; nothing here may skip. The server runs on 127.0.0.1, so
fetches that are meant to reach it pass ``allow_private=True``; the SSRF tests show what
happens without it (the server must see zero requests).
"""

from __future__ import annotations

import asyncio
import random
import socket
import time
import tracemalloc
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import pytest
from yarl import URL

from streams.net import addresses as addresses_module
from streams.net.fetch import Fetcher
from streams.net.types import FetchLimits, FetchResult, Validators
from tests.integration.feed_server import FeedServer, encode
from tests.unit.test_fetch_rules import FakeResolver

T = TypeVar("T")

UA = "newsflow-tests/1.0 (+https://example.org/newsflow)"
LIMITS = FetchLimits(
    connect_timeout_s=1.0,
    read_timeout_s=1.0,
    total_timeout_s=2.0,
    max_compressed_bytes=1 << 20,
    max_body_bytes=2 << 20,
    max_redirects=5,
    retry_after_cap_s=3600.0,
)
RSS = b'<?xml version="1.0"?><rss version="2.0"><channel><title>T</title></channel></rss>'
BIG_RSS = RSS + b"<!--" + b"news " * 20_000 + b"-->"


@pytest.fixture
def srv() -> Iterator[FeedServer]:
    with FeedServer() as server:
        yield server


def run(coro: Awaitable[T]) -> T:
    async def wrapper() -> T:
        return await coro

    return asyncio.run(wrapper())


def fetch(
    url: str,
    validators: Validators | None = None,
    *,
    allow_private: bool = True,
    limits: FetchLimits = LIMITS,
    **fetcher_kw: Any,
) -> FetchResult:
    """One fetch with a fresh Fetcher (fresh connections: no keep-alive effects on hits)."""

    async def go() -> FetchResult:
        async with Fetcher(user_agent=UA, limits=limits, **fetcher_kw) as f:
            return await f.fetch(url, validators, allow_private=allow_private)

    return asyncio.run(go())


def with_fetcher(
    body: Callable[[Fetcher], Awaitable[T]], *, limits: FetchLimits = LIMITS, **kw: Any
) -> T:
    async def go() -> T:
        async with Fetcher(user_agent=UA, limits=limits, **kw) as f:
            return await body(f)

    return asyncio.run(go())


def assert_error(result: FetchResult, error: str) -> None:
    assert (result.status, result.error) == ("error", error), result
    assert result.error_message and "\n" not in result.error_message
    assert result.body is None


# ===================================================================== conditional GET


def test_ok_returns_body_validators_type_and_max_age(srv: FeedServer) -> None:
    feed = srv.set_feed("/f.xml", RSS, cache_control="public, max-age=300")
    r = fetch(srv.url("/f.xml"))
    assert r.status == "ok" and r.http_status == 200 and r.error is None
    assert r.body == RSS
    assert r.url == srv.url("/f.xml") and r.permanent_url is None
    assert r.content_type == "application/rss+xml"
    assert r.validators == Validators(etag=feed.etag, last_modified=feed.last_modified)
    assert r.validators.etag and r.validators.last_modified
    assert r.cache_max_age_s == 300
    assert r.bytes_compressed == len(RSS)
    assert 0 < r.elapsed_s < 1
    assert srv.hits["/f.xml"] == 1


def test_polite_request_headers(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS)
    fetch(srv.url("/f.xml"))
    headers = srv.requests[0].headers
    assert headers["User-Agent"] == UA
    assert headers["Accept"].startswith("application/rss+xml, application/atom+xml")
    assert headers["Accept-Encoding"] == "gzip, deflate, br"
    assert "If-None-Match" not in headers and "If-Modified-Since" not in headers


def test_unchanged_feed_is_not_modified_and_keeps_validators(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS, cache_control="max-age=60")
    first = fetch(srv.url("/f.xml"))
    second = fetch(srv.url("/f.xml"), first.validators)
    assert second.status == "not_modified" and second.http_status == 304
    assert second.body is None and second.bytes_compressed == 0
    assert second.validators == first.validators
    assert second.cache_max_age_s == 60
    sent = srv.requests[1].headers
    assert sent["If-None-Match"] == first.validators.etag
    assert sent["If-Modified-Since"] == first.validators.last_modified
    assert srv.hits["/f.xml"] == 2


def test_last_modified_alone_gives_not_modified(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS, etag=False)
    first = fetch(srv.url("/f.xml"))
    assert first.validators.etag is None and first.validators.last_modified
    second = fetch(srv.url("/f.xml"), first.validators)
    assert second.status == "not_modified"
    assert "If-None-Match" not in srv.requests[1].headers


def test_changed_feed_returns_new_body_and_validators(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS)
    first = fetch(srv.url("/f.xml"))
    srv.set_feed("/f.xml", BIG_RSS)
    second = fetch(srv.url("/f.xml"), first.validators)
    assert second.status == "ok" and second.body == BIG_RSS
    assert second.validators.etag != first.validators.etag
    assert second.validators.last_modified != first.validators.last_modified


def test_304_without_validators_keeps_the_requests(srv: FeedServer) -> None:
    srv.set_response("/f.xml", status=304, content_type=None)
    sent = Validators(etag='"abc"', last_modified="Sun, 01 Mar 2026 12:00:00 GMT")
    r = fetch(srv.url("/f.xml"), sent)
    assert r.status == "not_modified" and r.validators == sent


def test_304_validators_from_the_response_win(srv: FeedServer) -> None:
    srv.set_response("/f.xml", status=304, content_type=None, headers={"ETag": '"new"'})
    sent = Validators(etag='"old"', last_modified="Sun, 01 Mar 2026 12:00:00 GMT")
    r = fetch(srv.url("/f.xml"), sent)
    assert r.validators == Validators(etag='"new"', last_modified=sent.last_modified)


def test_304_to_an_unconditional_request_is_an_error(srv: FeedServer) -> None:
    srv.set_response("/f.xml", status=304, content_type=None)
    r = fetch(srv.url("/f.xml"))
    assert_error(r, "http_304")
    assert r.http_status == 304


def test_lying_304_is_believed_until_an_unconditional_fetch(srv: FeedServer) -> None:
    """A server that answers 304 whatever changed: HTTP cannot tell; only an unconditional
    GET (the poller's periodic refresh) sees the new body."""
    srv.set_feed("/f.xml", RSS, lie=True)
    first = fetch(srv.url("/f.xml"))
    srv.set_feed("/f.xml", BIG_RSS, lie=True)
    assert fetch(srv.url("/f.xml"), first.validators).status == "not_modified"
    fresh = fetch(srv.url("/f.xml"))
    assert fresh.status == "ok" and fresh.body == BIG_RSS


def test_same_etag_for_different_bodies_is_believed(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS, etag='"static"', last_modified=False)
    first = fetch(srv.url("/f.xml"))
    srv.set_feed("/f.xml", BIG_RSS, etag='"static"', last_modified=False)
    second = fetch(srv.url("/f.xml"), first.validators)
    assert second.status == "not_modified" and second.validators.etag == '"static"'
    assert fetch(srv.url("/f.xml")).body == BIG_RSS


def test_html_page_served_as_a_feed_is_fetched_as_is(srv: FeedServer) -> None:
    html = b"<!doctype html><html><body>Subscribe!</body></html>"
    srv.set_response("/f.xml", html, content_type="text/html; charset=utf-8")
    r = fetch(srv.url("/f.xml"))
    assert r.status == "ok" and r.body == html  # deciding it is not a feed is parse's job
    assert r.content_type == "text/html; charset=utf-8"


def test_empty_200_is_ok_with_an_empty_body(srv: FeedServer) -> None:
    srv.set_response("/f.xml", b"")
    r = fetch(srv.url("/f.xml"))
    assert r.status == "ok" and r.body == b"" and r.bytes_compressed == 0


# ===================================================================== encodings and caps


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "raw-deflate", "br"])
def test_compressed_feeds_are_decoded(srv: FeedServer, encoding: str) -> None:
    srv.set_feed("/f.xml", BIG_RSS, encoding=encoding)
    r = fetch(srv.url("/f.xml"))
    assert r.status == "ok" and r.body == BIG_RSS
    assert r.bytes_compressed == len(encode(BIG_RSS, encoding)) < len(BIG_RSS) // 10


def test_unknown_content_encoding_is_bad_encoding(srv: FeedServer) -> None:
    srv.set_response("/f.xml", RSS, headers={"Content-Encoding": "zstd"})
    assert_error(fetch(srv.url("/f.xml")), "bad_encoding")


def test_corrupt_gzip_is_bad_encoding(srv: FeedServer) -> None:
    srv.set_response(
        "/f.xml", b"\x1f\x8b\x08\x00garbage" * 10, headers={"Content-Encoding": "gzip"}
    )
    assert_error(fetch(srv.url("/f.xml")), "bad_encoding")


@pytest.mark.parametrize("encoding", ["gzip", "br"])
def test_compression_bomb_stops_at_the_body_cap(srv: FeedServer, encoding: str) -> None:
    wire = srv.set_bomb("/bomb.xml", encoding)  # 1 GiB of zeros
    assert wire < LIMITS.max_compressed_bytes * 2
    limits = FetchLimits(max_compressed_bytes=4 << 20, max_body_bytes=1 << 20)
    tracemalloc.start()
    try:
        started = time.perf_counter()
        r = fetch(srv.url("/bomb.xml"), limits=limits)
        elapsed = time.perf_counter() - started
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert_error(r, "too_large")
    assert "after" in (r.error_message or "")  # the decoded cap, not the wire cap
    assert r.bytes_compressed <= 256 << 10  # stopped within the first socket reads
    assert peak < 8 << 20  # never inflated far past the 1 MiB cap
    assert elapsed < 2


def test_declared_length_over_the_wire_cap_is_refused_before_reading(srv: FeedServer) -> None:
    srv.set_response("/f.xml", bytes(LIMITS.max_compressed_bytes + 1))
    r = fetch(srv.url("/f.xml"))
    assert_error(r, "too_large")
    assert r.bytes_compressed == 0 and "Content-Length" in (r.error_message or "")


def test_chunked_body_over_the_wire_cap_is_cut_while_streaming(srv: FeedServer) -> None:
    srv.set_response("/f.xml", bytes(3 * LIMITS.max_compressed_bytes), chunked=True)
    r = fetch(srv.url("/f.xml"))
    assert_error(r, "too_large")
    assert (
        LIMITS.max_compressed_bytes
        < r.bytes_compressed
        <= LIMITS.max_compressed_bytes + (256 << 10)
    )


def test_compressed_body_over_the_wire_cap_is_too_large(srv: FeedServer) -> None:
    noise = random.Random(0).randbytes(2 << 20)  # does not compress
    srv.set_feed("/f.xml", noise, encoding="gzip")
    assert_error(fetch(srv.url("/f.xml")), "too_large")


def test_plain_body_over_the_body_cap_is_too_large(srv: FeedServer) -> None:
    limits = FetchLimits(max_compressed_bytes=1 << 20, max_body_bytes=1000)
    srv.set_response("/ok.xml", bytes(1000))
    srv.set_response("/big.xml", bytes(1001))
    assert fetch(srv.url("/ok.xml"), limits=limits).body == bytes(1000)
    assert_error(fetch(srv.url("/big.xml"), limits=limits), "too_large")


# ===================================================================== redirects


@pytest.mark.parametrize(
    ("code", "permanent"), [(301, True), (308, True), (302, False), (303, False), (307, False)]
)
def test_redirect_is_followed(srv: FeedServer, code: int, permanent: bool) -> None:
    srv.set_feed("/new.xml", RSS)
    srv.set_redirect("/old.xml", "/new.xml", code)
    r = fetch(srv.url("/old.xml"))
    assert r.status == "ok" and r.body == RSS
    assert r.url == srv.url("/new.xml")
    assert r.permanent_url == (srv.url("/new.xml") if permanent else None)
    assert srv.hits == {"/old.xml": 1, "/new.xml": 1}


def test_permanent_url_needs_every_hop_permanent(srv: FeedServer) -> None:
    srv.set_feed("/end.xml", RSS)
    srv.set_redirect_chain("/a", 3, "/end.xml", [301, 308, 301])
    assert fetch(srv.url("/a")).permanent_url == srv.url("/end.xml")
    srv.set_redirect_chain("/b", 3, "/end.xml", [301, 302, 301])
    r = fetch(srv.url("/b"))
    assert r.status == "ok" and r.url == srv.url("/end.xml") and r.permanent_url is None


def test_chain_up_to_max_redirects_is_followed(srv: FeedServer) -> None:
    srv.set_feed("/end.xml", RSS)
    srv.set_redirect_chain("/c", LIMITS.max_redirects, "/end.xml", 302)
    r = fetch(srv.url("/c"))
    assert r.status == "ok" and srv.hits["/end.xml"] == 1


def test_chain_longer_than_max_redirects_is_refused(srv: FeedServer) -> None:
    srv.set_feed("/end.xml", RSS)
    paths = srv.set_redirect_chain("/c", LIMITS.max_redirects + 1, "/end.xml", 302)
    r = fetch(srv.url("/c"))
    assert_error(r, "too_many_redirects")
    assert srv.hits["/end.xml"] == 0
    assert all(srv.hits[p] == 1 for p in paths)


def test_redirect_loop_is_detected(srv: FeedServer) -> None:
    srv.set_redirect("/ping", "/pong", 302)
    srv.set_redirect("/pong", "/ping", 302)
    srv.set_redirect("/self", "/self", 301)
    r = fetch(srv.url("/ping"))
    assert_error(r, "redirect_loop")
    assert srv.hits == {"/ping": 1, "/pong": 1}
    assert_error(fetch(srv.url("/self")), "redirect_loop")


@pytest.mark.parametrize(
    ("location", "expected_path"),
    [
        ("new.xml", "/dir/new.xml"),
        ("../top.xml", "/top.xml"),
        ("/abs.xml?x=1", "/abs.xml"),
        ("//127.0.0.1:{port}/proto-relative.xml", "/proto-relative.xml"),
        ("http://127.0.0.1:{port}/absolute.xml#frag", "/absolute.xml"),
    ],
)
def test_relative_locations_are_resolved(
    srv: FeedServer, location: str, expected_path: str
) -> None:
    srv.set_feed(expected_path, RSS)
    srv.set_redirect("/dir/old.xml", location.format(port=srv.port), 302)
    r = fetch(srv.url("/dir/old.xml"))
    assert r.status == "ok" and r.body == RSS and srv.hits[expected_path] == 1
    assert "#" not in r.url


@pytest.mark.parametrize(
    "location",
    [
        "ftp://127.0.0.1/feed.xml",
        "file:///etc/passwd",
        "javascript:alert(1)",
        "gopher://127.0.0.1:70/",
        "mailto:feeds@example.org",
    ],
)
def test_redirect_to_a_non_http_url_is_refused(srv: FeedServer, location: str) -> None:
    srv.set_redirect("/f.xml", location)
    assert_error(fetch(srv.url("/f.xml")), "bad_redirect")


def test_redirect_without_location_is_refused(srv: FeedServer) -> None:
    srv.set_response("/f.xml", status=302)
    assert_error(fetch(srv.url("/f.xml")), "bad_redirect")


def test_validators_follow_the_redirect(srv: FeedServer) -> None:
    feed = srv.set_feed("/new.xml", RSS)
    srv.set_redirect("/old.xml", "/new.xml", 301)
    sent = Validators(etag=feed.etag, last_modified=feed.last_modified)
    r = fetch(srv.url("/old.xml"), sent)
    assert r.status == "not_modified" and r.permanent_url == srv.url("/new.xml")
    assert srv.requests[1].headers["If-None-Match"] == feed.etag


# ===================================================================== SSRF guard


def test_loopback_server_is_blocked_without_allow_private(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS)
    r = fetch(srv.url("/f.xml"), allow_private=False)
    assert_error(r, "blocked_address")
    assert "loopback" in (r.error_message or "")
    assert sum(srv.hits.values()) == 0
    assert fetch(srv.url("/f.xml"), allow_private=True).status == "ok"


def test_hostname_resolving_to_loopback_is_blocked(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS)
    r = fetch(f"http://localhost:{srv.port}/f.xml", allow_private=False)
    assert_error(r, "blocked_address")
    assert sum(srv.hits.values()) == 0


@pytest.mark.parametrize(
    "host",
    ["[::1]", "[::ffff:127.0.0.1]", "0x7f.0.0.1", "127.0.0.2", "0.0.0.0"],
)
def test_loopback_spellings_are_blocked(srv: FeedServer, host: str) -> None:
    srv.set_feed("/f.xml", RSS)
    assert_error(fetch(f"http://{host}:{srv.port}/f.xml", allow_private=False), "blocked_address")
    assert sum(srv.hits.values()) == 0


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0177.0.0.1", "127.0.0.1."])
def test_legacy_numeric_hosts_are_bad_urls(srv: FeedServer, host: str) -> None:
    assert_error(fetch(f"http://{host}:{srv.port}/f.xml", allow_private=False), "bad_url")
    assert sum(srv.hits.values()) == 0


@pytest.mark.parametrize("allow_private", [False, True])
def test_metadata_endpoint_is_blocked_immediately(allow_private: bool) -> None:
    for url in ("http://169.254.169.254/latest/meta-data/", "http://[fd00:ec2::254]/latest/"):
        started = time.perf_counter()
        r = fetch(url, allow_private=allow_private)
        assert_error(r, "blocked_address")
        assert "metadata" in (r.error_message or "")
        assert r.elapsed_s == 0.0 and time.perf_counter() - started < 0.5


@pytest.mark.parametrize(
    "target",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://0.0.0.0:{port}/f.xml",
        "http://[::ffff:169.254.169.254]/",
    ],
)
def test_redirect_to_always_blocked_address_is_refused_even_with_allow_private(
    srv: FeedServer, target: str
) -> None:
    srv.set_feed("/f.xml", RSS)
    srv.set_redirect("/r.xml", target.format(port=srv.port), 302)
    r = fetch(srv.url("/r.xml"), allow_private=True)
    assert_error(r, "blocked_address")
    assert r.url == str(URL(target.format(port=srv.port)))
    assert srv.hits == {"/r.xml": 1}


def test_redirect_to_a_private_address_is_refused_when_guarded(
    srv: FeedServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The guard runs on every hop: pretend the server's own address is public, then let it
    redirect to another loopback address."""
    real = addresses_module.forbidden_address
    monkeypatch.setattr(
        addresses_module, "forbidden_address", lambda ip: None if ip == "127.0.0.1" else real(ip)
    )
    srv.set_feed("/f.xml", RSS)
    srv.set_redirect("/r.xml", f"http://127.0.0.2:{srv.port}/f.xml", 302)
    assert fetch(srv.url("/f.xml"), allow_private=False).status == "ok"
    r = fetch(srv.url("/r.xml"), allow_private=False)
    assert_error(r, "blocked_address")  # not "connect": nothing was dialled
    assert srv.hits == {"/f.xml": 1, "/r.xml": 1}


def test_dns_answers_are_checked_before_connecting(srv: FeedServer) -> None:
    """A name the attacker controls resolves to the metadata address (DNS rebinding): the
    check runs on the resolved address inside the connector, for first hops and redirects."""
    resolver = FakeResolver({"evil.test": ["169.254.169.254"], "intranet.test": ["10.0.0.7"]})
    r = fetch("http://evil.test/feed.xml", allow_private=True, resolver=resolver)
    assert_error(r, "blocked_address")
    assert "169.254.169.254: metadata" in (r.error_message or "")
    assert_error(
        fetch("http://intranet.test/", allow_private=False, resolver=resolver), "blocked_address"
    )
    srv.set_redirect("/r.xml", "http://evil.test/feed.xml", 302)
    r = fetch(srv.url("/r.xml"), allow_private=True, resolver=resolver)
    assert_error(r, "blocked_address")
    assert resolver.calls == ["evil.test", "intranet.test", "evil.test"]


# ===================================================================== throttling and errors


def test_429_with_retry_after_then_ok(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS)
    srv.set_throttle("/f.xml", 429, retry_after="120", times=1)
    r = fetch(srv.url("/f.xml"))
    assert_error(r, "http_429")
    assert r.http_status == 429 and r.retry_after_s == 120.0
    assert fetch(srv.url("/f.xml")).status == "ok"
    assert srv.hits["/f.xml"] == 2


def test_503_with_http_date_retry_after(srv: FeedServer) -> None:
    from email.utils import formatdate

    srv.set_throttle("/f.xml", 503, retry_after=formatdate(time.time() + 90, usegmt=True))
    r = fetch(srv.url("/f.xml"))
    assert_error(r, "http_503")
    assert r.retry_after_s is not None and 85 <= r.retry_after_s <= 90


def test_retry_after_is_capped_and_optional(srv: FeedServer) -> None:
    limits = FetchLimits(retry_after_cap_s=60.0)
    srv.set_throttle("/a", 429, retry_after="86400")
    srv.set_throttle("/b", 429, retry_after=None)
    srv.set_throttle("/c", 503, retry_after="Sun, 01 Jan 2000 00:00:00 GMT")
    assert fetch(srv.url("/a"), limits=limits).retry_after_s == 60.0
    assert fetch(srv.url("/b"), limits=limits).retry_after_s is None
    assert fetch(srv.url("/c"), limits=limits).retry_after_s == 0.0


@pytest.mark.parametrize("code", [400, 401, 403, 404, 410, 500, 502, 206])
def test_other_statuses_are_http_errors(srv: FeedServer, code: int) -> None:
    srv.set_response("/f.xml", b"nope", status=code)
    r = fetch(srv.url("/f.xml"))
    assert_error(r, f"http_{code}")
    assert r.http_status == code and r.retry_after_s is None


@pytest.mark.parametrize(
    "url", ["not a url", "ftp://example.org/feed.xml", "http:///feed.xml", "", "file:///etc/hosts"]
)
def test_bad_urls(url: str) -> None:
    assert_error(fetch(url), "bad_url")


def test_dns_failure() -> None:
    r = fetch("http://nowhere.test/feed.xml", resolver=FakeResolver({}))
    assert_error(r, "dns")


def test_connection_refused() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    assert_error(fetch(f"http://127.0.0.1:{port}/"), "connect")


def test_server_hanging_up_without_answer_is_disconnected(srv: FeedServer) -> None:
    srv.set_drop("/f.xml")
    assert_error(fetch(srv.url("/f.xml")), "disconnected")
    # aiohttp retries an idempotent request once after a disconnect (RFC 9112 §9.3.1)
    assert srv.hits["/f.xml"] == 2


@pytest.mark.parametrize(
    "raw",
    [
        b"garbage\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\nabc",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nabc",
    ],
)
def test_malformed_http_is_bad_response(srv: FeedServer, raw: bytes) -> None:
    srv.set_raw("/f.xml", raw)
    assert_error(fetch(srv.url("/f.xml")), "bad_response")


def test_truncated_body_is_disconnected(srv: FeedServer) -> None:
    srv.set_truncated("/f.xml", RSS[:20], declared_length=len(RSS))
    r = fetch(srv.url("/f.xml"))
    assert_error(r, "disconnected")
    assert r.http_status == 200 and r.bytes_compressed == 20


# ===================================================================== timeouts


def test_slow_drip_is_cut_by_the_total_timeout(srv: FeedServer) -> None:
    srv.set_slow_drip("/f.xml", interval_s=0.05)  # never silent for the 1 s read timeout
    limits = FetchLimits(read_timeout_s=1.0, total_timeout_s=0.5)
    started = time.perf_counter()
    r = fetch(srv.url("/f.xml"), limits=limits)
    assert_error(r, "timeout")
    assert "total timeout" in (r.error_message or "")
    assert 0 < r.bytes_compressed < 20
    assert 0.5 <= r.elapsed_s < 1.0 and time.perf_counter() - started < 2.0


def test_total_timeout_spans_redirects(srv: FeedServer) -> None:
    # Each hop alone (0.3 s) fits in the 0.5 s total; the two together do not.
    srv.route("/r.xml", _delayed_redirect(0.3, "/slow.xml"))
    srv.set_feed("/slow.xml", RSS, delay_s=0.3)
    r = fetch(srv.url("/r.xml"), limits=FetchLimits(total_timeout_s=0.5, read_timeout_s=5))
    assert_error(r, "timeout")
    assert r.url == srv.url("/slow.xml")
    assert 0.5 <= r.elapsed_s < 1.0


def _delayed_redirect(delay: float, location: str) -> Callable[..., Awaitable[Any]]:
    from aiohttp import web

    async def serve(request: web.Request) -> web.StreamResponse:
        await asyncio.sleep(delay)
        return web.Response(status=302, headers={"Location": location})

    return serve


def test_silent_server_hits_the_read_timeout(srv: FeedServer) -> None:
    srv.set_hang("/f.xml")
    r = fetch(srv.url("/f.xml"), limits=FetchLimits(read_timeout_s=0.3, total_timeout_s=5))
    assert_error(r, "timeout")
    assert "total" not in (r.error_message or "")
    assert 0.3 <= r.elapsed_s < 1.0
    assert srv.hits["/f.xml"] == 1


def test_unanswered_connect_hits_the_connect_timeout() -> None:
    # A listener with a full backlog: the kernel drops further SYNs, so connect() just waits.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(3):
            c = socket.socket()
            c.setblocking(False)
            c.connect_ex(("127.0.0.1", port))
            fillers.append(c)
        try:
            time.sleep(0.05)
            r = fetch(
                f"http://127.0.0.1:{port}/",
                limits=FetchLimits(connect_timeout_s=0.3, total_timeout_s=5),
            )
        finally:
            for c in fillers:
                c.close()
    assert_error(r, "timeout")
    assert 0.3 <= r.elapsed_s < 1.0


# ===================================================================== contract and politeness


def test_cancellation_propagates(srv: FeedServer) -> None:
    srv.set_hang("/f.xml")

    async def body(f: Fetcher) -> None:
        task = asyncio.create_task(f.fetch(srv.url("/f.xml"), allow_private=True))
        await asyncio.sleep(0.1)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    with_fetcher(body, limits=FetchLimits(read_timeout_s=10, total_timeout_s=10))


def test_closed_fetcher_returns_an_error_instead_of_raising(srv: FeedServer) -> None:
    async def go() -> FetchResult:
        f = Fetcher(user_agent=UA)
        return await f.fetch(srv.url("/f.xml"), allow_private=True)

    assert_error(run(go()), "closed")


def test_per_host_limit(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS, delay_s=0.1)

    async def body(f: Fetcher) -> list[FetchResult]:
        return await asyncio.gather(
            *(f.fetch(srv.url("/f.xml"), allow_private=True) for _ in range(6))
        )

    results = with_fetcher(body, concurrency=64, per_host=2)
    assert [r.status for r in results] == ["ok"] * 6
    assert srv.max_in_flight == 2 and srv.hits["/f.xml"] == 6


def test_global_limit(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS, delay_s=0.1)

    async def body(f: Fetcher) -> list[FetchResult]:
        return await asyncio.gather(
            *(f.fetch(srv.url("/f.xml"), allow_private=True) for _ in range(6))
        )

    results = with_fetcher(body, concurrency=3, per_host=10)
    assert [r.status for r in results] == ["ok"] * 6
    assert srv.max_in_flight == 3


def test_connections_are_reused(srv: FeedServer) -> None:
    srv.set_feed("/f.xml", RSS)

    async def body(f: Fetcher) -> list[FetchResult]:
        first = await f.fetch(srv.url("/f.xml"), allow_private=True)
        return [
            await f.fetch(srv.url("/f.xml"), first.validators, allow_private=True)
            for _ in range(20)
        ]

    results = with_fetcher(body)
    assert {r.status for r in results} == {"not_modified"}
    assert srv.connections == 1
