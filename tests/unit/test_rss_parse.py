"""parse_feed: every fixture feed checked against its own header, plus generated hostile inputs.

A fixture is any file in tests/fixtures/feeds that starts (after the XML declaration, if any)
with ``<!-- newsflow-fixture {json} -->``; the JSON holds "description", "expect" and optionally
"content_type" (passed to parse_feed) and "remove_header" (parse the body without the header,
for the empty-body case). Every "expect" key is checked by ``check_expectations``; an unknown
key fails the test, so a typo cannot silently pass. A new case is a new file.
"""

from __future__ import annotations

import hashlib
import io
import json
import random
import re
import time
import tracemalloc
import xml.sax
import xml.sax.handler
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import feedparser
import pytest

from connectors.rss import parse as parse_module
from connectors.rss.parse import content_hash, parse_feed
from connectors.rss.types import Item, ParsedFeed, ParseLimits
from connectors.rss.urls import canonical_url
from streams.schema.ids import article_id
from streams.schema.models import FeedRef, RawArticle, Source

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "feeds"
BASE_URL = "https://feeds.example.org/news/feed.xml"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=UTC)
LIMITS = ParseLimits()
_HEADER = re.compile(r"<!-- newsflow-fixture (\{.*?\}) -->\r?\n?", re.DOTALL)
_XML_DECL = re.compile(r"\A(?:\ufeff|\xef\xbb\xbf)?(?:<\?xml[^>]*\?>\s*)?\Z")


@dataclass(frozen=True)
class Fixture:
    name: str
    body: bytes
    description: str
    expect: dict[str, Any]
    content_type: str | None


def load_fixture(path: Path) -> Fixture:
    raw = path.read_bytes()
    wide = raw.startswith((b"\xff\xfe", b"\xfe\xff"))
    # The header is ASCII, so latin-1 finds it in any ASCII-compatible encoding.
    text = raw.decode("utf-16") if wide else raw.decode("latin-1")
    match = _HEADER.search(text)
    assert match, f"{path.name}: no newsflow-fixture header"
    assert _XML_DECL.match(text[: match.start()]), (
        f"{path.name}: the header must come first or right after the XML declaration"
    )
    meta = json.loads(match.group(1))
    assert set(meta) <= {"description", "expect", "content_type", "remove_header"}, path.name
    assert meta["description"] and isinstance(meta["expect"], dict), path.name
    body = raw
    if meta.get("remove_header"):
        assert not wide
        body = (text[: match.start()] + text[match.end() :]).encode("latin-1")
    return Fixture(path.name, body, meta["description"], meta["expect"], meta.get("content_type"))


FIXTURE_FILES = sorted(p for p in FIXTURES.iterdir() if p.is_file())


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def _texts(parsed: ParsedFeed) -> list[str]:
    texts = [parsed.meta.title or ""]
    for item in parsed.items:
        texts += [item.title, item.summary, item.content or "", *item.authors, *item.categories]
    return texts


def _per_item(field: Callable[[Item], Any]) -> Callable[[ParsedFeed], list[Any]]:
    return lambda parsed: [field(item) for item in parsed.items]


# expect key -> what it is compared with (equality); special keys are handled below.
_ITEM_FIELDS: dict[str, Callable[[ParsedFeed], Any]] = {
    "titles": _per_item(lambda i: i.title),
    "urls": _per_item(lambda i: i.url),
    "guids": _per_item(lambda i: i.guid),
    "summaries": _per_item(lambda i: i.summary),
    "contents": _per_item(lambda i: i.content),
    "authors": _per_item(lambda i: list(i.authors)),
    "categories": _per_item(lambda i: list(i.categories)),
    "enclosures": _per_item(lambda i: [[e.url, e.type, e.length] for e in i.enclosures]),
    "published_at": _per_item(lambda i: _iso(i.published_at)),
    "notes": _per_item(lambda i: i.published_at_note),
    "items": lambda parsed: len(parsed.items),
    "bozo": lambda parsed: parsed.bozo,
    "error": lambda parsed: parsed.error,
    "dropped": lambda parsed: {k: v for k, v in parsed.dropped.items() if v},
}
_SPECIAL = {"meta", "language", "warnings_include", "text_excludes", "max_seconds"}


def check_expectations(fixture: Fixture, parsed: ParsedFeed, elapsed_s: float) -> None:
    expect = fixture.expect
    unknown = set(expect) - set(_ITEM_FIELDS) - _SPECIAL
    assert not unknown, f"unknown expect keys {unknown}"
    for key, getter in _ITEM_FIELDS.items():
        if key in expect:
            assert getter(parsed) == expect[key], key
    for key, value in expect.get("meta", {}).items():
        actual = getattr(parsed.meta, key)
        if isinstance(actual, frozenset):
            actual = sorted(actual)
        assert actual == value, f"meta.{key}"
    if "language" in expect:
        assert parsed.items
        assert all(item.language == expect["language"] for item in parsed.items)
    for fragment in expect.get("warnings_include", []):
        assert any(fragment in w for w in parsed.warnings), (fragment, parsed.warnings)
    texts = _texts(parsed)
    for fragment in expect.get("text_excludes", []):
        assert not any(fragment in t for t in texts), fragment
    if "max_seconds" in expect:
        assert elapsed_s < expect["max_seconds"]


def check_invariants(parsed: ParsedFeed) -> None:
    """What holds for every parse, whatever the input."""
    ids = [item.article_id for item in parsed.items]
    assert len(ids) == len(set(ids))
    assert len(parsed.items) <= LIMITS.max_items
    feed_ref = FeedRef(feed_id="fixture", url=BASE_URL)
    for item in parsed.items:
        assert re.fullmatch(r"[0-9a-f]{32}", item.article_id)
        if item.url:
            assert canonical_url(item.url) == item.url  # canonical form is a fixed point
            assert item.article_id == article_id(item.url)
        else:
            assert item.guid and item.article_id == article_id("guid:" + item.guid)
        assert item.content_hash == content_hash(item.title, item.summary, item.content)
        assert item.content != ""  # None, not empty
        assert len(item.title) <= LIMITS.max_title_chars
        assert len(item.summary) <= LIMITS.max_summary_chars
        for text in (item.title, item.summary, item.content or ""):
            assert text == text.strip()
            assert "<script" not in text.lower() and "\x00" not in text
        if item.published_at is not None:
            assert item.published_at.utcoffset() == timedelta(0)
            assert item.published_at_note is None
        for enclosure in item.enclosures:
            assert enclosure.url.startswith(("http://", "https://"))
        # The record the poller builds from an item must validate against the contract.
        RawArticle(
            article_id=item.article_id,
            source=Source(
                feed=feed_ref,
                url=item.url,
                guid=item.guid,
                title=item.title,
                summary=item.summary,
                content=item.content,
                authors=item.authors,
                categories=item.categories,
                published_at=item.published_at,
                published_at_note=item.published_at_note,
                language_hint=item.language,
                fetched_at=NOW,
                first_seen_at=NOW,
                content_hash=item.content_hash,
                enclosures=item.enclosures,
            ),
        )


def test_fixture_set_is_complete() -> None:
    names = {p.name for p in FIXTURE_FILES}
    for required in (
        "rss091_netscape.xml",
        "rss092.xml",
        "rss10_rdf.xml",
        "rss20_full.xml",
        "atom10_xml_base.xml",
        "windows1256_arabic.xml",
        "xxe_file_entity.xml",
        "billion_laughs.xml",
        "html_page.html",
        "empty_body.xml",
    ):
        assert required in names


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda p: p.name)
def test_fixture(path: Path) -> None:
    fixture = load_fixture(path)
    started = time.perf_counter()
    parsed = parse_feed(fixture.body, base_url=BASE_URL, now=NOW, content_type=fixture.content_type)
    elapsed = time.perf_counter() - started
    check_expectations(fixture, parsed, elapsed)
    check_invariants(parsed)


def test_arabic_fixture_is_really_windows_1256() -> None:
    # Guards the fixture itself: the bytes are not UTF-8, so only the declared encoding works.
    body = load_fixture(FIXTURES / "windows1256_arabic.xml").body
    with pytest.raises(UnicodeDecodeError):
        body.decode("utf-8")
    assert b'encoding="windows-1256"' in body[:60]


# --- security ---------------------------------------------------------------------------------


def _xxe_bodies(secret_path: Path) -> list[bytes]:
    uri = secret_path.as_uri()
    item = "<item><title>T &xxe;</title><link>https://x.example.com/1</link>"
    item += "<description>D &xxe;</description></item>"
    channel = f"<rss version='2.0'><channel><title>F &xxe;</title>{item}</channel></rss>"
    return [
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY xxe SYSTEM "{uri}">]>{channel}'.encode(),
        f'<?xml version="1.0"?>\n<!DOCTYPE rss [\n<!ENTITY xxe SYSTEM "{secret_path}">\n]>\n'
        f"{channel}".encode(),
        # parameter entity that would define &xxe; from the file's content
        f'<?xml version="1.0"?><!DOCTYPE rss [<!ENTITY % p SYSTEM "{uri}">'
        f"<!ENTITY % d \"<!ENTITY xxe '%p;'>\">%d;]>{channel}".encode(),
        # Atom, entity used in an attribute as well
        f'<?xml version="1.0"?><!DOCTYPE feed [<!ENTITY xxe SYSTEM "{uri}">]>'
        '<feed xmlns="http://www.w3.org/2005/Atom"><title>&xxe;</title><entry><id>u:1</id>'
        '<title>&xxe;</title><link href="https://x.example.com/&xxe;"/></entry></feed>'.encode(),
    ]


def _expat_with_external_entities(body: bytes) -> str:
    """What a parser that does load external entities would read (proves the payload works)."""
    collected: list[str] = []

    class Handler(xml.sax.handler.ContentHandler):
        def characters(self, content: str) -> None:
            collected.append(content)

    parser = xml.sax.make_parser()
    parser.setFeature(xml.sax.handler.feature_external_ges, True)
    parser.setContentHandler(Handler())
    parser.parse(io.BytesIO(body))
    return "".join(collected)


def test_external_entities_never_read_local_files(tmp_path: Path) -> None:
    secret = "NEWSFLOW-SECRET-" + hashlib.sha256(str(tmp_path).encode()).hexdigest()[:16]
    secret_path = tmp_path / "secret.txt"
    secret_path.write_text(secret)
    bodies = _xxe_bodies(secret_path)
    assert secret in _expat_with_external_entities(bodies[0])  # the payload is live
    for body in bodies:
        parsed = parse_feed(body, base_url=BASE_URL, now=NOW)
        assert "entity_declarations_removed" in parsed.warnings
        dump = repr(parsed)
        assert secret not in dump
        assert parsed.items, parsed  # the entry is still read


def _billion_laughs(one_line: bool) -> bytes:
    sep = "" if one_line else "\n"
    decls = [' <!ENTITY lol "lol">']
    for level in range(1, 10):
        ref = f"&lol{level - 1};" if level > 1 else "&lol;"
        decls.append(f' <!ENTITY lol{level} "{ref * 10}">')
    doctype = f"<!DOCTYPE lolz [{sep}{sep.join(decls)}{sep}]>"
    return (
        f'<?xml version="1.0"?>\n{doctype}\n<rss version="2.0"><channel><title>&lol9;</title>'
        "<item><title>&lol9;</title><link>https://lol.example.com/1</link></item>"
        "</channel></rss>"
    ).encode()


@pytest.mark.parametrize("one_line", [True, False])
def test_billion_laughs_is_fast_and_small(one_line: bool) -> None:
    body = _billion_laughs(one_line)
    tracemalloc.start()
    started = time.perf_counter()
    try:
        parsed = parse_feed(body, base_url=BASE_URL, now=NOW)
        elapsed = time.perf_counter() - started
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert elapsed < 0.5
    assert peak < 10 * 1024 * 1024
    assert "entity_declarations_removed" in parsed.warnings
    assert len(parsed.items) == 1
    assert len(parsed.items[0].title) < 100


def test_doctype_inside_the_document_is_left_alone() -> None:
    body = (
        b'<rss version="2.0"><channel><title>x</title><item><title>About DTDs</title>'
        b"<link>https://d.example.com/1</link><description><![CDATA[Write <!DOCTYPE html> "
        b"first]]></description></item></channel></rss>"
    )
    parsed = parse_feed(body, base_url=BASE_URL, now=NOW)
    assert parsed.warnings == []
    assert parsed.items[0].summary == "Write first"  # the declaration is markup to html_to_text


# --- robustness --------------------------------------------------------------------------------


def test_empty_and_blank_bodies() -> None:
    for body in (b"", b"   \n\t", b"\xef\xbb\xbf\n", b"\x00\x00"):
        parsed = parse_feed(body, base_url=BASE_URL, now=NOW)
        assert parsed.error == "empty_body" and parsed.items == []


def test_never_raises_on_mangled_fixtures() -> None:
    rng = random.Random(20240601)
    for path in FIXTURE_FILES:
        body = path.read_bytes()
        variants = [body[: len(body) * k // 7] for k in range(1, 7)]
        for _ in range(6):
            mangled = bytearray(body)
            for _ in range(rng.randint(1, 30)):
                mangled[rng.randrange(len(mangled))] = rng.randrange(256)
            variants.append(bytes(mangled))
        variants.append(body.replace(b"<", b"<<"))
        variants.append(body.replace(b">", b""))
        for variant in variants:
            parsed = parse_feed(variant, base_url=BASE_URL, now=NOW)
            assert isinstance(parsed, ParsedFeed)
            check_invariants(parsed)


def test_feedparser_crash_becomes_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def explode(*args: object, **kwargs: object) -> object:
        raise RuntimeError("boom")

    monkeypatch.setattr(feedparser, "parse", explode)
    parsed = parse_feed(b"<rss><channel/></rss>", base_url=BASE_URL, now=NOW)
    assert parsed.error == "parse_failed"
    assert parsed.items == []
    assert any("RuntimeError: boom" in w for w in parsed.warnings)


def test_one_broken_entry_does_not_cost_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    real = parse_module._item
    calls = {"n": 0}

    def flaky(entry: Any, *args: Any) -> Item:
        calls["n"] += 1
        if calls["n"] == 2:
            raise ValueError("bad entry")
        return real(entry, *args)

    monkeypatch.setattr(parse_module, "_item", flaky)
    parsed = parse_feed(
        load_fixture(FIXTURES / "tracking_params.xml").body, base_url=BASE_URL, now=NOW
    )
    assert parsed.dropped["entry_error"] == 1
    assert len(parsed.items) == 4  # 6 entries - 1 broken - 1 duplicate
    assert parsed.error is None


def test_surrogate_reference_crashes_bare_feedparser() -> None:
    # Why the replacement exists; if feedparser ever fixes it, this test says so.
    body = b'<rss version="2.0"><channel><title>a &#xD800; b</title></channel></rss>'
    with pytest.raises(UnicodeEncodeError):
        feedparser.parse(io.BytesIO(body), response_headers={"content-type": "application/xml"})
    parsed = parse_feed(body, base_url=BASE_URL, now=NOW)
    assert parsed.error is None and parsed.meta.title == "a \ufffd b"


# --- limits ------------------------------------------------------------------------------------


def _rss(items: str, channel_extra: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0" '
        'xmlns:content="http://purl.org/rss/1.0/modules/content/" '
        'xmlns:media="http://search.yahoo.com/mrss/"><channel><title>Feed</title>'
        f"<link>https://l.example.com/</link>{channel_extra}{items}</channel></rss>"
    ).encode()


def test_huge_feed_is_capped_quickly() -> None:
    huge_title = "word " * 1_000_000  # 5 MB
    items = [f"<item><title>{huge_title}</title><link>https://big.example.com/huge</link></item>"]
    items += [
        f"<item><title>Item {i}</title><link>https://big.example.com/{i}</link>"
        f"<description>&lt;p&gt;Text {i}&lt;/p&gt;</description></item>"
        for i in range(5000)
    ]
    body = _rss("".join(items))
    started = time.perf_counter()
    parsed = parse_feed(body, base_url=BASE_URL, now=NOW)
    elapsed = time.perf_counter() - started
    assert len(parsed.items) == LIMITS.max_items
    assert parsed.dropped == {"over_max_items": 5001 - LIMITS.max_items}
    title = parsed.items[0].title
    assert 0.8 * LIMITS.max_title_chars <= len(title) <= LIMITS.max_title_chars
    assert title.startswith("word word") and title.endswith("word")
    assert parsed.items[-1].title == f"Item {LIMITS.max_items - 2}"
    assert elapsed < 10.0  # bare feedparser needs about 1.2 s for this body


def test_small_limits_cap_every_field() -> None:
    limits = ParseLimits(
        max_items=2,
        max_title_chars=10,
        max_summary_chars=20,
        max_content_chars=30,
        max_url_chars=60,
        max_authors=1,
        max_categories=2,
        max_enclosures=1,
        max_short_chars=8,
    )
    item = (
        "<item><title>A rather long title for a tiny cap</title>"
        "<link>https://l.example.com/a</link><guid isPermaLink='false'>guid-that-is-long</guid>"
        f"<description>{'summary ' * 10}</description>"
        f"<content:encoded>{'content ' * 20}</content:encoded>"
        "<author>a@example.com (Ann Lee)</author><author>b@example.com (Two)</author>"
        "<category>first-category</category><category>c2</category><category>c3</category>"
        "<enclosure url='https://l.example.com/1.jpg' type='image/jpeg-but-long'/>"
        "<enclosure url='https://l.example.com/2.jpg' type='image/jpeg'/></item>"
    )
    long_link = "<item><title>x</title><link>https://l.example.com/" + "p" * 80 + "</link></item>"
    body = _rss(item + long_link + item.replace("/a<", "/b<"))
    parsed = parse_feed(body, base_url=BASE_URL, now=NOW, limits=limits)
    assert parsed.dropped == {"over_max_items": 1, "link_not_http": 1}
    (only,) = parsed.items
    assert only.title == "A rather"
    assert len(only.summary) <= 20 and only.summary.startswith("summary")
    assert only.content is not None and len(only.content) <= 30
    assert only.guid == "guid-tha"
    assert only.authors == ("Ann Lee",)
    assert only.categories == ("first-ca", "c2")
    assert [(e.url, e.type) for e in only.enclosures] == [
        ("https://l.example.com/1.jpg", "image/jp")
    ]


def test_content_only_feed_keeps_full_text_without_duplicating_it() -> None:
    short = "<p>Short body.</p>"
    long_text = "<p>" + "Long body sentence. " * 2000 + "</p>"  # 40,000 chars > summary cap
    body = _rss(
        f"<item><title>S</title><link>https://c.example.com/s</link>"
        f"<content:encoded><![CDATA[{short}]]></content:encoded></item>"
        f"<item><title>L</title><link>https://c.example.com/l</link>"
        f"<content:encoded><![CDATA[{long_text}]]></content:encoded></item>"
    )
    first, second = parse_feed(body, base_url=BASE_URL, now=NOW).items
    assert (first.summary, first.content) == ("Short body.", None)
    assert len(second.summary) <= LIMITS.max_summary_chars
    assert second.content is not None and len(second.content) == 2000 * 20 - 1
    assert second.content.startswith(second.summary)


def test_charset_from_content_type_is_used() -> None:
    title = "\u062e\u0628\u0631 \u0639\u0627\u062c\u0644"
    body = (
        '<rss version="2.0"><channel><title>t</title>'
        f"<item><title>{title}</title><link>https://a.example.com/1</link></item></channel></rss>"
    ).encode("windows-1256")
    parsed = parse_feed(
        body, base_url=BASE_URL, now=NOW, content_type="application/rss+xml; charset=windows-1256"
    )
    assert parsed.items[0].title == title


def test_without_base_url_relative_links_are_unusable() -> None:
    body = _rss(
        "<item><title>rel</title><link>/relative</link></item>"
        "<item><title>abs</title><link>https://a.example.com/abs</link></item>"
    )
    parsed = parse_feed(body, base_url="", now=NOW)
    assert [i.url for i in parsed.items] == ["https://a.example.com/abs"]
    assert parsed.dropped == {"link_not_http": 1}


def test_naive_now_is_taken_as_utc() -> None:
    body = _rss(
        "<item><title>t</title><link>https://a.example.com/1</link>"
        "<pubDate>Sun, 02 Jun 2024 11:00:00 GMT</pubDate></item>"
    )
    parsed = parse_feed(body, base_url=BASE_URL, now=NOW.replace(tzinfo=None))
    assert parsed.items[0].published_at == datetime(2024, 6, 2, 11, 0, tzinfo=UTC)


def test_content_hash_changes_with_text_only() -> None:
    def one(title: str, guid: str = "g") -> Item:
        body = _rss(
            f"<item><title>{title}</title><link>https://h.example.com/1</link>"
            f"<guid isPermaLink='false'>{guid}</guid></item>"
        )
        return parse_feed(body, base_url=BASE_URL, now=NOW).items[0]

    assert one("Same").content_hash == one("Same", guid="other").content_hash
    assert one("Same").content_hash != one("Changed").content_hash
    assert one("Same").article_id == one("Changed").article_id
