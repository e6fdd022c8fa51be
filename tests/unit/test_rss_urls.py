"""Canonical URLs and the article key: equal pages get equal ids, different pages never merge."""

from __future__ import annotations

import pytest

from connectors.rss.urls import TRACKING_PARAMS, canonical_url, http_url, item_key
from streams.schema.ids import article_id


@pytest.mark.parametrize(
    ("href", "expected"),
    [
        # scheme and host case, default ports, userinfo, fragment, empty path
        ("HTTP://Example.COM", "http://example.com/"),
        ("https://example.com:443/a", "https://example.com/a"),
        ("http://example.com:80/a", "http://example.com/a"),
        ("https://example.com:80/a", "https://example.com:80/a"),
        ("http://example.com:8080/a", "http://example.com:8080/a"),
        ("https://user:secret@example.com/a", "https://example.com/a"),
        ("https://example.com/a#section-2", "https://example.com/a"),
        ("https://example.com/a?", "https://example.com/a"),
        ("https://example.com.", "https://example.com/"),
        # path case and trailing slashes are the server's business: kept
        ("https://example.com/News/Story/", "https://example.com/News/Story/"),
        # tracking parameters, any utm_ suffix, case-insensitive names; order of the rest kept
        (
            "https://example.com/a?utm_source=rss&z=1&utm_medium=feed&a=2&utm_whatever=x",
            "https://example.com/a?z=1&a=2",
        ),
        ("https://example.com/a?UTM_Source=x&FBCLID=y&id=3", "https://example.com/a?id=3"),
        (
            "https://example.com/a?gclid=1&dclid=2&gbraid=3&wbraid=4&msclkid=5&yclid=6&mc_cid=7"
            "&mc_eid=8&igshid=9&_ga=10&_gl=11&ref_src=12&cmpid=13&xtor=RSS-1&at_medium=RSS&keep=1",
            "https://example.com/a?keep=1",
        ),
        ("https://example.com/a?utm%5Fsource=x&k=v", "https://example.com/a?k=v"),
        ("https://example.com/a?utm_source=x", "https://example.com/a"),
        # a parameter named like a tracker only by prefix of a word is kept
        ("https://example.com/a?utmost=1&ref=home", "https://example.com/a?utmost=1&ref=home"),
        # values and repeated or empty parameters kept as published
        ("https://example.com/a?q=a+b&q=c&flag", "https://example.com/a?q=a+b&q=c&flag"),
        ("https://example.com/a?x=1&&y=2", "https://example.com/a?x=1&y=2"),
        ("https://example.com/a?next=%2Fhome%26x", "https://example.com/a?next=%2Fhome%26x"),
        # percent-encoding: uppercase hex, unreserved decoded, unsafe encoded
        ("https://example.com/%7euser/%2f%41", "https://example.com/~user/%2FA"),
        ("https://example.com/caf%c3%a9", "https://example.com/caf%C3%A9"),
        ("https://example.com/café", "https://example.com/caf%C3%A9"),
        ("https://example.com/a b", "https://example.com/a%20b"),
        ("https://example.com/100%", "https://example.com/100%25"),
        ("https://example.com/a?q=\u0645", "https://example.com/a?q=%D9%85"),
        # dot segments
        ("https://example.com/a/./b/../c", "https://example.com/a/c"),
        ("https://example.com/../a", "https://example.com/a"),
        # IDNA
        ("https://Bücher.example/x", "https://xn--bcher-kva.example/x"),
        ("https://موقع.example/x", "https://xn--4gbrim.example/x"),
        # IPv6
        ("http://[2001:DB8::1]:8080/x", "http://[2001:db8::1]:8080/x"),
        # hash-bang routes name pages
        ("https://example.com/#!/story/42", "https://example.com/#!/story/42"),
        # whitespace around and newlines inside (wrapped by feed generators)
        ("  https://example.com/a\n/b\t ", "https://example.com/a/b"),
    ],
)
def test_canonical_url(href: str, expected: str) -> None:
    assert canonical_url(href) == expected
    assert canonical_url(expected) == expected  # a fixed point


@pytest.mark.parametrize(
    "href",
    [
        "",
        "javascript:alert(1)",
        "JavaScript:alert(1)",
        "mailto:editor@example.com",
        "ftp://files.example.com/a",
        "data:text/html,<script>alert(1)</script>",
        "file:///etc/passwd",
        "tag:example.com,2024:1",
        "urn:uuid:1225c695-cfb8-4ebb-aaaa-80da344efa6a",
        "/relative/without/base",
        "//example.com/no-scheme",
        "http://",
        "http:///path-only",
        "http://[::1",
        "http://example.com:99999/",
        "http://example.com:port/",
        "http://exa mple.com/",
        'http://exa"mple.com/',
        "https://a..b.xn--/",
    ],
)
def test_unusable_urls_are_none(href: str) -> None:
    assert canonical_url(href) is None


def test_resolution_against_base() -> None:
    base = "https://feeds.example.org/news/feed.xml?format=rss"
    assert canonical_url("story.html", base) == "https://feeds.example.org/news/story.html"
    assert canonical_url("/a?utm_source=x", base) == "https://feeds.example.org/a"
    assert canonical_url("../up", base) == "https://feeds.example.org/up"
    assert canonical_url("//cdn.example.org/x", base) == "https://cdn.example.org/x"
    assert canonical_url("?page=2", base) == "https://feeds.example.org/news/feed.xml?page=2"
    assert canonical_url("https://other.example/x", base) == "https://other.example/x"
    assert canonical_url("javascript:alert(1)", base) is None
    assert canonical_url("/x", "not a url") is None


def test_length_cap() -> None:
    url = "https://example.com/" + "a" * 100
    assert canonical_url(url, max_chars=len(url)) == url
    assert canonical_url(url, max_chars=len(url) - 1) is None
    assert canonical_url("https://example.com/" + "a" * 5000) is None  # default cap 4096
    # the cap applies to the canonical form: tracking junk beyond it does not matter
    long_tracking = "https://example.com/a?utm_source=" + "x" * 200
    assert canonical_url(long_tracking, max_chars=60) == "https://example.com/a"


def test_spellings_of_one_url_share_one_id() -> None:
    spellings = [
        "https://news.example.com/2024/05/story?id=7",
        "HTTPS://NEWS.example.com:443/2024/05/story?id=7#comments",
        "https://news.example.com/2024/05/story?utm_source=rss&id=7&utm_medium=feed",
        "https://editor:pw@news.example.com/2024/05/story?id=7&fbclid=XYZ",
        "https://news.example.com/2024/05/%73tory?id=%37",
        "https://news.example.com/2024/05/./story?id=7&gclid=1",
    ]
    keys = {item_key(canonical_url(s), None) for s in spellings}
    assert len(keys) == 1
    ids = {article_id(k) for k in keys if k}
    assert len(ids) == 1


def test_different_pages_never_merge() -> None:
    urls = [
        "https://news.example.com/story?id=7",
        "https://news.example.com/story?id=8",
        "https://news.example.com/Story?id=7",
        "https://news.example.com/story/?id=7",
        "http://news.example.com/story?id=7",
        "https://news.example.com:8443/story?id=7",
        "https://news.example.com/story?id=7&page=2",
        "https://news.example.com/story?page=2&id=7",
        "https://news.example.com/#!/story/7",
        "https://news.example.com/#!/story/8",
    ]
    canon = [canonical_url(u) for u in urls]
    assert None not in canon
    assert len(set(canon)) == len(urls)


def test_tracking_set_is_lower_case_and_has_the_usual_suspects() -> None:
    assert all(name == name.lower() for name in TRACKING_PARAMS)
    for name in ("fbclid", "gclid", "msclkid", "mc_cid", "igshid", "_ga", "yclid", "dclid"):
        assert name in TRACKING_PARAMS
    for name in ("id", "p", "page", "q", "ref", "source", "article", "s"):
        assert name not in TRACKING_PARAMS


def test_item_key() -> None:
    assert item_key("https://example.com/a", "g1") == "https://example.com/a"
    assert item_key("", "g1") == "guid:g1"
    assert item_key(None, "g1") == "guid:g1"
    assert item_key(None, None) is None
    assert item_key("", "") is None
    # the GUID key cannot collide with a URL key
    assert item_key(None, "https://example.com/a") != item_key("https://example.com/a", None)
    assert article_id(item_key(None, "g1") or "") == article_id("guid:g1")


def test_http_url_keeps_media_urls_as_published() -> None:
    base = "https://feeds.example.org/news/feed.xml"
    signed = "https://CDN.example.com/v.mp4?sig=Ab%2fc&utm_source=x&Expires=1"
    assert http_url(signed, base) == signed
    assert http_url("/media/a.jpg", base) == "https://feeds.example.org/media/a.jpg"
    assert http_url("rtsp://media.example.com/live", base) is None
    assert http_url("javascript:alert(1)", base) is None
    assert http_url("/a.jpg") is None
    assert http_url("https://example.com/" + "a" * 50, max_chars=30) is None
    assert http_url("http://[::1") is None
