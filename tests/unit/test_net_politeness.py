"""The page fetcher's pure rules: robots.txt verdicts, host keys, spacing, backoff and
admission (explicit clock values, no sleeping), outcome classes, per-host policy lookup, and
the per-host gate's concurrency and FIFO behaviour on a real event loop (no network)."""

from __future__ import annotations

import asyncio

import pytest
from yarl import URL

from streams.net.decoding import FetchFailure
from streams.net.headers import content_type_charset
from streams.net.pacing import (
    HostPacer,
    HostState,
    Pace,
    admission,
    host_key,
    reserve_start,
    throttle_backoff_s,
)
from streams.net.pages import PAGE_STATUSES, PageFetcher, _Call, page_status
from streams.net.robots import merge_rules, robots_agent, rules_from_fetch
from streams.net.types import FetchResult
from streams.settings import HostPolicy, PageFetchSettings

AGENT = "newsflow"


def ok(body: bytes, status: int = 200) -> FetchResult:
    return FetchResult(status="ok", url="http://h/robots.txt", http_status=status, body=body)


def err(error: str, http_status: int | None = None) -> FetchResult:
    return FetchResult(
        status="error", url="http://h/robots.txt", http_status=http_status, error=error
    )


# ------------------------------------------------------------------ robots.txt


def test_rules_follow_the_group_for_our_token() -> None:
    robots = b"User-agent: *\nDisallow: /\n\nUser-agent: newsflow\nDisallow: /private/\nAllow: /\n"
    rules = rules_from_fetch(ok(robots), now=100.0, ttl_s=60.0, error_ttl_s=5.0)
    assert rules.kind == "rules" and rules.expires_at == 160.0
    assert rules.allows("http://h/news/1.html", AGENT)
    assert not rules.allows("http://h/private/1.html", AGENT)
    assert not rules.allows("http://h/news/1.html", "otherbot")


def test_rules_read_utf8_with_a_bom_and_wildcards() -> None:
    robots = "\ufeffUser-agent: *\nDisallow: /*.pdf$\nDisallow: /über/\n".encode()
    rules = rules_from_fetch(ok(robots), now=0.0, ttl_s=60.0, error_ttl_s=5.0)
    assert not rules.allows("http://h/a/b.pdf", AGENT)
    assert rules.allows("http://h/a/b.pdf.html", AGENT)
    assert not rules.allows("http://h/%C3%BCber/x", AGENT)


def test_empty_robots_allows_all_and_crawl_delay_is_read() -> None:
    assert rules_from_fetch(ok(b""), now=0, ttl_s=1, error_ttl_s=1).allows("http://h/x", AGENT)
    rules = rules_from_fetch(
        ok(b"User-agent: newsflow\nCrawl-delay: 4\n"), now=0, ttl_s=1, error_ttl_s=1
    )
    assert rules.crawl_delay(AGENT) == 4.0
    assert rules.crawl_delay("otherbot") is None


@pytest.mark.parametrize(
    ("result", "kind", "expires"),
    [
        (err("http_404", 404), "allow_all", 160.0),  # unavailable: allowed (RFC 9309)
        (err("http_403", 403), "allow_all", 160.0),
        (err("http_401", 401), "allow_all", 160.0),
        (err("http_410", 410), "allow_all", 160.0),
        (err("redirect_loop"), "allow_all", 160.0),
        (err("too_many_redirects"), "allow_all", 160.0),
        (err("http_429", 429), "disallow_all", 105.0),  # throttled: treat as unreachable
        (err("http_500", 500), "disallow_all", 105.0),  # unreachable: complete disallow
        (err("http_503", 503), "disallow_all", 105.0),
        (err("timeout"), "disallow_all", 105.0),
        (err("dns"), "disallow_all", 105.0),
        (err("connect"), "disallow_all", 105.0),
        (err("too_large"), "disallow_all", 105.0),
        (err("bad_encoding"), "disallow_all", 105.0),
        (err("blocked_address"), "refused", 105.0),  # SSRF: the page is refused, not denied
        (err("bad_url"), "refused", 105.0),
    ],
)
def test_robots_answers_map_to_verdicts(result: FetchResult, kind: str, expires: float) -> None:
    rules = rules_from_fetch(result, now=100.0, ttl_s=60.0, error_ttl_s=5.0)
    assert rules.kind == kind
    assert rules.expires_at == expires
    assert rules.allows("http://h/x", AGENT) is (kind == "allow_all")


def test_an_outage_keeps_the_earlier_good_copy_until_the_next_try() -> None:
    good = rules_from_fetch(ok(b"User-agent: *\nDisallow: /x\n"), now=0, ttl_s=60, error_ttl_s=5)
    outage = rules_from_fetch(err("http_503", 503), now=70, ttl_s=60, error_ttl_s=5)
    kept = merge_rules(good, outage)
    assert kept.kind == "rules" and kept.reason == "stale_copy:http_503"
    assert kept.expires_at == 75
    assert kept.allows("http://h/a", AGENT) and not kept.allows("http://h/x", AGENT)
    # no earlier copy, or an earlier outage: the outage stands
    assert merge_rules(None, outage) is outage
    assert merge_rules(outage, outage) is outage
    # a definitive answer replaces the copy
    gone = rules_from_fetch(err("http_404", 404), now=70, ttl_s=60, error_ttl_s=5)
    assert merge_rules(good, gone) is gone


@pytest.mark.parametrize(
    ("ua", "token"),
    [
        ("newsflow/0.1 (self-hosted news reader)", "newsflow"),
        ("newsflow", "newsflow"),
        ("MyBot (+https://example.org)", "MyBot"),
        ("  spaced/2 x", "spaced"),
    ],
)
def test_robots_agent_is_the_product_token(ua: str, token: str) -> None:
    assert robots_agent(ua) == token


# ------------------------------------------------------------------ pacing rules


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("http://Example.ORG/a", "example.org"),
        ("https://example.org/a", "example.org"),
        ("http://example.org:80/a", "example.org"),
        ("https://example.org:443/a", "example.org"),
        ("http://example.org:8080/a", "example.org:8080"),
        ("https://example.org:80/a", "example.org:80"),
        ("http://127.0.0.1:5000/", "127.0.0.1:5000"),
        ("http://[::1]:5000/", "[::1]:5000"),
        ("http://[2001:db8::1]/", "[2001:db8::1]"),
    ],
)
def test_host_key(url: str, key: str) -> None:
    assert host_key(URL(url)) == key


def test_starts_are_reserved_spacing_apart() -> None:
    state = HostState()
    # three callers arriving at t=10 together start 1 s apart
    assert [reserve_start(state, 10.0, 1.0) for _ in range(3)] == [10.0, 11.0, 12.0]
    # a caller arriving after a quiet spell starts at once
    assert reserve_start(state, 20.0, 1.0) == 20.0
    # one arriving 0.4 s later waits the rest of the second
    assert reserve_start(state, 20.4, 1.0) == 21.0
    # no spacing: every start is "now"
    free = HostState()
    assert [reserve_start(free, 5.0, 0.0) for _ in range(3)] == [5.0, 5.0, 5.0]


def test_backoff_is_retry_after_capped_else_doubling_capped() -> None:
    assert throttle_backoff_s(1, 120.0, initial_s=30, cap_s=3600) == 120.0
    assert throttle_backoff_s(5, 120.0, initial_s=30, cap_s=3600) == 120.0  # server said
    assert throttle_backoff_s(1, 99999.0, initial_s=30, cap_s=3600) == 3600.0
    assert throttle_backoff_s(1, 0.0, initial_s=30, cap_s=3600) == 0.0
    assert [throttle_backoff_s(n, None, initial_s=30, cap_s=200) for n in (1, 2, 3, 4)] == [
        30.0,
        60.0,
        120.0,
        200.0,
    ]


def test_admission_waits_out_a_short_backoff_and_refuses_a_long_one() -> None:
    assert admission(backoff_until=0.0, now=10.0, deadline_at=20.0) == "go"
    assert admission(backoff_until=10.0, now=10.0, deadline_at=20.0) == "go"
    assert admission(backoff_until=15.0, now=10.0, deadline_at=20.0) == "wait"
    assert admission(backoff_until=20.0, now=10.0, deadline_at=20.0) == "wait"
    assert admission(backoff_until=25.0, now=10.0, deadline_at=20.0) == "refuse"


# ------------------------------------------------------------------ the per-host gate


def test_gate_caps_each_host_and_never_blocks_another() -> None:
    async def scenario() -> tuple[int, list[str]]:
        pacer = HostPacer()
        inside: dict[str, int] = {"a": 0, "b": 0}
        peak = 0
        order: list[str] = []
        release_a = asyncio.Event()
        deadline = asyncio.get_running_loop().time() + 30

        async def use(host: str, tag: str, wait: asyncio.Event | None) -> None:
            nonlocal peak
            async with pacer.hold(host, Pace(per_host=2, min_spacing_s=0), deadline):
                inside[host] += 1
                peak = max(peak, inside["a"])
                order.append(tag)
                if wait is not None:
                    await wait.wait()
                inside[host] -= 1

        a_tasks = [asyncio.create_task(use("a", f"a{i}", release_a)) for i in range(5)]
        await asyncio.sleep(0.05)
        # host a is full (2 in, 3 queued); host b goes straight in
        await asyncio.wait_for(use("b", "b0", None), 1)
        assert order == ["a0", "a1", "b0"]
        release_a.set()
        await asyncio.gather(*a_tasks)
        return peak, order

    peak, order = asyncio.run(scenario())
    assert peak == 2
    assert order == ["a0", "a1", "b0", "a2", "a3", "a4"]  # FIFO within a host


def test_a_cancelled_waiter_does_not_leak_a_slot() -> None:
    async def scenario() -> int:
        pacer = HostPacer()
        deadline = asyncio.get_running_loop().time() + 30
        gate = asyncio.Event()
        pace = Pace(per_host=1, min_spacing_s=0)

        async def hold(wait: asyncio.Event | None) -> None:
            async with pacer.hold("h", pace, deadline):
                if wait is not None:
                    await wait.wait()

        first = asyncio.create_task(hold(gate))
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(hold(None))
        await asyncio.sleep(0.01)
        waiter.cancel()
        await asyncio.gather(waiter, return_exceptions=True)
        gate.set()
        await first
        await asyncio.wait_for(hold(None), 1)  # the slot came back
        return pacer._hosts["h"].in_flight

    assert asyncio.run(scenario()) == 0


def test_gate_refuses_when_the_backoff_outlasts_the_deadline() -> None:
    async def scenario() -> tuple[str, str, float]:
        pacer = HostPacer()
        loop = asyncio.get_running_loop()
        pacer.note_throttled("h", 60.0, initial_s=30, cap_s=3600)
        with pytest.raises(FetchFailure) as info:
            async with pacer.hold("h", Pace(), loop.time() + 5):
                pass
        # another host is unaffected
        async with pacer.hold("other", Pace(), loop.time() + 5):
            pass
        # a short backoff is waited out
        pacer.note_throttled("q", 0.05, initial_s=30, cap_s=3600)
        started = loop.time()
        async with pacer.hold("q", Pace(), loop.time() + 5):
            waited = loop.time() - started
        return info.value.error, ",".join(sorted(pacer.in_backoff(loop.time()))), waited

    error, in_backoff, waited = asyncio.run(scenario())
    assert error == "backoff"
    assert in_backoff == "h"
    assert waited >= 0.04


def test_gate_refuses_at_once_when_the_queue_reaches_past_the_deadline() -> None:
    async def scenario() -> str:
        pacer = HostPacer()
        loop = asyncio.get_running_loop()
        pace = Pace(per_host=5, min_spacing_s=10.0)
        async with pacer.hold("h", pace, loop.time() + 5):
            pass  # the next start is 10 s away
        started = loop.time()
        with pytest.raises(FetchFailure) as info:
            async with pacer.hold("h", pace, loop.time() + 5):
                pass
        assert loop.time() - started < 0.5  # no sleeping into certain failure
        return info.value.error

    assert asyncio.run(scenario()) == "timeout"


# ------------------------------------------------------------------ outcomes and policy


@pytest.mark.parametrize(
    ("result", "status"),
    [
        (FetchResult(status="ok", url="u", http_status=200, body=b"x"), "fetched"),
        (err("robots_denied"), "robots_denied"),
        (err("backoff"), "backoff"),
        (err("too_large"), "too_large"),
        (err("timeout"), "timeout"),
        (err("blocked_address"), "refused"),
        (err("bad_url"), "bad_url"),
        (err("redirect_loop", 302), "redirect_loop"),
        (err("too_many_redirects", 301), "redirect_loop"),
        (err("http_404", 404), "http_4xx"),
        (err("http_429", 429), "http_4xx"),
        (err("http_503", 503), "http_5xx"),
        (err("http_500", 500), "http_5xx"),
        (err("http_304", 304), "bad_response"),
        (err("http_101", 101), "bad_response"),
        (err("bad_encoding"), "bad_response"),
        (err("bad_redirect"), "bad_response"),
        (err("dns"), "network_error"),
        (err("connect"), "network_error"),
        (err("tls"), "network_error"),
        (err("disconnected"), "network_error"),
        (err("internal"), "internal"),
        (err("closed"), "internal"),
    ],
)
def test_page_status(result: FetchResult, status: str) -> None:
    assert page_status(result) == status
    assert status in PAGE_STATUSES


@pytest.mark.parametrize(
    ("value", "charset"),
    [
        ("text/html; charset=UTF-8", "utf-8"),
        ('text/html; charset="windows-1256"', "windows-1256"),
        ("text/html;charset=ISO-8859-1 ", "iso-8859-1"),
        ("text/html; foo=bar; charset=koi8-r", "koi8-r"),
        ("text/html", None),
        ("text/html; charset=", None),
        ("text/html; charset=no-such-codec", None),
        (None, None),
    ],
)
def test_content_type_charset(value: str | None, charset: str | None) -> None:
    assert content_type_charset(value) == charset


def test_host_policy_lookup_covers_subdomains_and_the_call_override() -> None:
    slow = HostPolicy(per_host=1, min_spacing_s=5.0)
    local = HostPolicy(per_host=8, min_spacing_s=0.0)
    pages = PageFetcher(
        PageFetchSettings(
            hosts={"example.org": slow, "localhost:8080": local}, per_host=3, min_spacing_s=2.0
        )
    )
    assert pages._pace("example.org", None, None) == Pace(1, 5.0)
    assert pages._pace("news.example.org", None, None) == Pace(1, 5.0)
    assert pages._pace("badexample.org", None, None) == Pace(3, 2.0)
    assert pages._pace("localhost:8080", None, None) == Pace(8, 0.0)
    assert pages._pace("localhost", None, None) == Pace(3, 2.0)
    ip = PageFetcher(PageFetchSettings(hosts={"0.0.1": slow, "127.0.0.1:81": local}))
    assert ip._pace("127.0.0.1:81", None, None) == Pace(8, 0.0)
    assert ip._pace("127.0.0.1", None, None) == Pace(2, 1.0)  # no suffix match on IPs
    assert ip._pace("[::1]:81", None, None) == Pace(2, 1.0)
    feed = HostPolicy(per_host=2, min_spacing_s=0.5)
    call = _Call(
        first_host="news.example.org",
        host_policy=feed,
        deadline_at=0.0,
        allow_private=False,
        current_url="",
    )
    assert pages._pace("news.example.org", call, None) == Pace(2, 0.5)
    # the call's policy is for the article's host, not for hosts it redirects to
    assert pages._pace("other.org", call, None) == Pace(3, 2.0)


def test_crawl_delay_widens_spacing_up_to_the_cap() -> None:
    pages = PageFetcher(PageFetchSettings(min_spacing_s=1.0, max_crawl_delay_s=30.0))
    polite = rules_from_fetch(ok(b"User-agent: *\nCrawl-delay: 7\n"), now=0, ttl_s=1, error_ttl_s=1)
    greedy = rules_from_fetch(
        ok(b"User-agent: *\nCrawl-delay: 600\n"), now=0, ttl_s=1, error_ttl_s=1
    )
    assert pages._pace("h", None, polite).min_spacing_s == 7.0
    assert pages._pace("h", None, greedy).min_spacing_s == 30.0
    ignoring = PageFetcher(PageFetchSettings(min_spacing_s=1.0, max_crawl_delay_s=0))
    assert ignoring._pace("h", None, polite).min_spacing_s == 1.0
