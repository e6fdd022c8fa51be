"""The feed lists newsflow ships (deploy/feeds/starter.yaml, demo.yaml), the bundled demo feeds
and the sample-feed builders behind them (streams/tooling/samplefeeds.py)."""

from __future__ import annotations

import contextlib
import html
import io
import ipaddress
import re
import time
import unicodedata
from collections import Counter
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import feedparser
import pytest
import yaml

from streams.tooling import samplefeeds
from streams.tooling.samplefeeds import Channel, Enclosure, Item, atom_document, rss_document

ROOT = Path(__file__).resolve().parents[2]
FEEDS = ROOT / "deploy" / "feeds"
DEMO_DIR = FEEDS / "demo"
SEED = ROOT / "deploy" / "demo" / "seed-article-ar.txt"
ID_PATTERN = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")
LANG_PATTERN = re.compile(r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$")
ALLOWED_KEYS = {
    "id",
    "url",
    "name",
    "language",
    "country",
    "tags",
    "min_interval_s",
    "max_interval_s",
    "enabled",
}
# Unicode script (first word of the character name) the text of each demo language is in.
SCRIPTS = {
    "ar": "ARABIC",
    "fa": "ARABIC",
    "ur": "ARABIC",
    "he": "HEBREW",
    "ru": "CYRILLIC",
    "zh": "CJK",
    "ja": "CJK",  # kanji; kana is checked below as well
    "hi": "DEVANAGARI",
}
EARLIEST = datetime(2026, 1, 1, tzinfo=UTC)


def load(name: str) -> dict[str, Any]:
    data = yaml.safe_load((FEEDS / name).read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def base_lang(code: str) -> str:
    return code.split("-")[0].lower()


def publisher(url: str) -> str:
    """Registrable domain, roughly: bbc.co.uk-style names keep three labels."""
    labels = (urlsplit(url).hostname or "").split(".")
    if len(labels) >= 3 and len(labels[-1]) == 2 and labels[-2] in {"co", "com", "org", "net"}:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def script_share(text: str, script: str) -> float:
    letters = [c for c in text if c.isalpha()]
    hits = sum(unicodedata.name(c, "").startswith(script) for c in letters)
    return hits / max(1, len(letters))


def demo_feeds() -> list[dict[str, Any]]:
    feeds = load("demo.yaml")["feeds"]
    assert isinstance(feeds, list)
    return feeds


def demo_file(feed: dict[str, Any]) -> Path:
    return DEMO_DIR / urlsplit(feed["url"]).path.lstrip("/")


def parse_file(path: Path) -> Any:
    return feedparser.parse(io.BytesIO(path.read_bytes()))


def check_common_shape(flist: dict[str, Any]) -> None:
    assert set(flist) == {"allow_private_addresses", "feeds"}
    ids, urls = set(), set()
    for feed in flist["feeds"]:
        assert set(feed) <= ALLOWED_KEYS, feed
        assert ID_PATTERN.match(feed["id"]), feed["id"]
        assert feed["id"] not in ids, f"duplicate id {feed['id']}"
        ids.add(feed["id"])
        parts = urlsplit(feed["url"])
        assert parts.scheme in ("http", "https") and parts.hostname, feed["url"]
        key = (parts.hostname.lower(), parts.path.rstrip("/"), parts.query)
        assert key not in urls, f"duplicate URL {feed['url']}"
        urls.add(key)
        assert isinstance(feed.get("name"), str) and feed["name"].strip(), feed["id"]
        assert LANG_PATTERN.match(feed["language"]), feed["language"]
        if "country" in feed:
            assert re.fullmatch(r"[A-Z]{2}", feed["country"]), feed["country"]
        assert isinstance(feed.get("tags", []), list)
        assert all(isinstance(t, str) and t for t in feed.get("tags", []))
        lo, hi = feed.get("min_interval_s", 1), feed.get("max_interval_s", 10**9)
        assert 1 <= lo <= hi, feed["id"]
        assert isinstance(feed.get("enabled", True), bool)


# ---- starter.yaml ---------------------------------------------------------------------------


def test_starter_list_shape_and_coverage() -> None:
    flist = load("starter.yaml")
    check_common_shape(flist)
    assert flist["allow_private_addresses"] is False
    feeds = flist["feeds"]
    assert len(feeds) >= 35
    langs = Counter(base_lang(f["language"]) for f in feeds)
    assert len(langs) >= 14, langs
    for lang in ("ar", "en", "fr", "de", "es", "it", "pt", "tr", "fa", "ru", "zh", "ja", "id"):
        assert langs[lang] >= 1, lang
    assert langs["hi"] + langs["ur"] >= 1
    arabic = [f for f in feeds if base_lang(f["language"]) == "ar"]
    assert len({publisher(f["url"]) for f in arabic}) >= 6, [f["url"] for f in arabic]
    for feed in feeds:
        host = urlsplit(feed["url"]).hostname or ""
        assert urlsplit(feed["url"]).scheme == "https", feed["url"]
        assert not host.endswith((".example", ".local", ".test", "localhost")), host
        with contextlib.suppress(ValueError):  # a name, as expected, unless an IP literal
            assert ipaddress.ip_address(host).is_global, host


def test_starter_list_says_it_was_not_fetched() -> None:
    header = (FEEDS / "starter.yaml").read_text(encoding="utf-8").split("\nallow_private")[0]
    assert "without network access" in header.lower()
    assert "newsflow feeds check" in header


@pytest.mark.parametrize("name", ["starter.yaml", "demo.yaml"])
def test_lists_load_with_the_connector_loader(name: str) -> None:
    feeds_module = pytest.importorskip("connectors.feeds")
    flist = feeds_module.load_feed_list(FEEDS / name)
    assert len(flist.feeds) == len(load(name)["feeds"])


# ---- demo.yaml and the demo feeds ----------------------------------------------------------


def test_demo_list_points_at_the_local_server() -> None:
    flist = load("demo.yaml")
    check_common_shape(flist)
    assert flist["allow_private_addresses"] is True
    feeds = flist["feeds"]
    assert len(feeds) >= 10
    langs = Counter(base_lang(f["language"]) for f in feeds)
    assert len(langs) >= 8 and langs["ar"] >= 2, langs
    for lang in ("ar", "en", "fr", "de", "es", "tr", "fa", "ru", "zh"):
        assert langs[lang] >= 1, lang
    for feed in feeds:
        parts = urlsplit(feed["url"])
        assert (parts.scheme, parts.hostname, parts.port) == ("http", "127.0.0.1", 8765)
        assert demo_file(feed).is_file(), feed["url"]
        assert (feed["min_interval_s"], feed["max_interval_s"]) == (5, 60)
    names = {demo_file(f).name for f in feeds}
    on_disk = {p.name for p in DEMO_DIR.iterdir() if p.is_file() and p.name != "PROVENANCE.md"}
    assert names == on_disk, "every demo file is listed, every listed file exists"


@pytest.mark.parametrize("feed", demo_feeds(), ids=lambda f: f["id"])
def test_demo_feed_parses_cleanly(feed: dict[str, Any]) -> None:
    parsed = parse_file(demo_file(feed))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert 8 <= len(parsed.entries) <= 20
    lang = base_lang(feed["language"])
    assert base_lang(parsed.feed.get("language", "")) == lang
    links = [e.link for e in parsed.entries]
    assert len(set(links)) == len(links)
    now = datetime.now(UTC)
    for entry in parsed.entries:
        # Every item links to its article page on the demo server itself.
        link = urlsplit(entry.link)
        assert (link.scheme, link.hostname, link.port) == ("http", "127.0.0.1", 8765)
        assert link.path.startswith("/pages/") and link.path.endswith(".html"), entry.link
        assert (DEMO_DIR / link.path.lstrip("/")).is_file(), entry.link
        assert entry.title.strip()
        if lang not in ("zh", "ja"):
            assert len(entry.summary.split()) >= 10
        assert entry.get("id"), "every item has a guid / id"
        published = datetime(*entry.published_parsed[:6], tzinfo=UTC)
        assert EARLIEST <= published <= now
        if lang in SCRIPTS:
            share = script_share(entry.title + entry.summary, SCRIPTS[lang])
            if lang == "ja":
                share += script_share(entry.title + entry.summary, "HIRAGANA")
                share += script_share(entry.title + entry.summary, "KATAKANA")
            assert share > 0.6, (entry.title, share)
        else:
            assert script_share(entry.title + entry.summary, "LATIN") > 0.9, entry.title


def test_demo_feeds_mix_formats_and_encodings() -> None:
    parsed = [parse_file(demo_file(f)) for f in demo_feeds()]
    versions = Counter(p.version for p in parsed)
    assert versions["rss20"] >= 1 and versions["atom10"] >= 1, versions
    encodings = {p.encoding.lower() for p in parsed}
    assert encodings - {"utf-8"}, "at least one windows-125x / ISO-8859-x feed"
    all_links = [e.link for p in parsed for e in p.entries]
    assert len(all_links) == len(set(all_links)), "item links are unique across the demo"


def test_arabic_demo_feed_carries_the_seed_article() -> None:
    lines = [s.strip() for s in SEED.read_text(encoding="utf-8").splitlines() if s.strip()]
    headline = lines[0].split("،")[0].strip()
    arabic = [f for f in demo_feeds() if base_lang(f["language"]) == "ar"]
    found = []
    for feed in arabic:
        parsed = parse_file(demo_file(feed))
        for entry in parsed.entries:
            if entry.title == headline:
                found.append((feed, parsed, entry))
    assert len(found) == 1, "the seed article is in exactly one Arabic feed"
    feed, parsed, entry = found[0]
    body = entry.content[0].value
    for line in lines:
        assert line in body
    others = [e for e in parsed.entries if e is not entry]
    assert len(others) >= 7, "next to other Arabic news items"
    assert all(script_share(e.title, "ARABIC") > 0.6 for e in others)


def test_demo_provenance_names_every_feed_and_licence() -> None:
    text = (DEMO_DIR / "PROVENANCE.md").read_text(encoding="utf-8")
    for feed in demo_feeds():
        assert f"`{demo_file(feed).name}`" in text
    assert "written for newsflow" in text
    assert "ANERcorp" in text and "NTREX" in text  # says the development corpora are *not* used


def test_every_demo_item_links_to_a_page_with_more_than_its_summary() -> None:
    """The article page behind each item: declares its charset, carries the feed's summary as
    its lead plus body paragraphs, and wraps them in a news site's furniture."""
    for n, feed in enumerate(samplefeeds.DEMO_FEEDS):
        for entry in samplefeeds._demo_entries(feed, n):
            path = DEMO_DIR / urlsplit(entry.item.link).path.lstrip("/")
            data = path.read_bytes()
            assert f'charset="{feed.encoding}"'.encode() in data or (
                f"charset={feed.encoding}".encode() in data
            ), path
            page = html.unescape(data.decode(feed.encoding))
            assert entry.story.summary in page and entry.story.body, path
            for paragraph in entry.story.body:
                assert paragraph in page and paragraph not in entry.item.summary
            for furniture in ("cookie-consent", "share-bar", "related", 'rel="canonical"'):
                assert furniture in page, (path, furniture)


def test_demo_page_bodies_name_entities_their_summaries_lack() -> None:
    """What full-text extraction is for: every page body names someone, something or somewhere
    that the feed summary does not (found by the enrich stage's own extractor)."""
    entities = pytest.importorskip("streams.enrich.entities")
    lacking = []
    for n, feed in enumerate(samplefeeds.DEMO_FEEDS):
        for entry in samplefeeds._demo_entries(feed, n):
            story = entry.story

            def found(text: str, lang: str = feed.lang) -> set[tuple[str, str]]:
                return {
                    (e.type, e.normalized) for e in entities.extract_entities({"text": text}, lang)
                }

            if not found(" ".join(story.body)) - found(story.summary):
                lacking.append(f"{feed.feed_id}/{story.slug}")
    assert not lacking, lacking


def test_committed_demo_files_match_the_generator() -> None:
    expected = samplefeeds.demo_files()
    on_disk = {
        p.relative_to(DEMO_DIR).as_posix(): p.read_bytes()
        for p in DEMO_DIR.rglob("*")
        if p.is_file() and p.parent != samplefeeds.STORIES_DIR  # stories: the source
    }
    stale = sorted(n for n in expected.keys() | on_disk.keys() if expected.get(n) != on_disk.get(n))
    assert not stale, (
        f"regenerate: python -m streams.tooling.samplefeeds --write deploy/feeds/demo {stale}"
    )
    assert (FEEDS / "demo.yaml").read_text(encoding="utf-8") == samplefeeds.demo_feed_list()


# ---- the builders --------------------------------------------------------------------------

TZ = timezone(timedelta(hours=3))
WHEN = datetime(2026, 3, 2, 8, 15, 30, tzinfo=TZ)
NASTY = 'Tom & Jerry <b>"quoted"</b> ]]> \x0b bell\x07 سوريا'


def sample(content: str | None = "<p>one ]]> two &amp; three</p>") -> tuple[Channel, list[Item]]:
    channel = Channel(
        title="Tést & <channel>",
        link="https://example.org/",
        description="d",
        language="ar",
        self_url="https://example.org/feed?a=1&b=2",
    )
    items = [
        Item(
            title=NASTY,
            link="https://example.org/a?x=1&y=2",
            summary=NASTY,
            published=WHEN,
            author="desk@example.org (Desk)",
            categories=("world", 'a "b" & c'),
            content_html=content,
            enclosure=Enclosure("https://example.org/i.jpg?s=1&t=2", 1234, "image/jpeg"),
        ),
        Item(
            title="second",
            link="https://example.org/b",
            summary="plain",
            published=WHEN - timedelta(hours=1),
            guid="urn:x:2",
            author="Jane Roe",
        ),
    ]
    return channel, items


@pytest.mark.parametrize("build", [rss_document, atom_document])
@pytest.mark.parametrize("encoding", ["utf-8", "windows-1256", "iso-8859-1"])
def test_builders_escape_and_round_trip(build: Any, encoding: str) -> None:
    channel, items = sample()
    data = build(channel, items, encoding=encoding)
    assert data.startswith(f'<?xml version="1.0" encoding="{encoding}"?>'.encode())
    parsed = feedparser.parse(io.BytesIO(data))
    assert not parsed.bozo, parsed.get("bozo_exception")
    assert parsed.encoding.lower() == encoding
    first, second = parsed.entries
    clean = NASTY.replace("\x0b", "").replace("\x07", "")
    assert first.title == clean
    assert first.link == "https://example.org/a?x=1&y=2"
    assert [t.term for t in first.tags] == ["world", 'a "b" & c']
    assert "one ]]> two &amp; three" in first.content[0].value
    enclosure = [link for link in first.links if link.get("rel") == "enclosure"]
    assert enclosure[0]["href"] == "https://example.org/i.jpg?s=1&t=2"
    assert int(enclosure[0]["length"]) == 1234
    assert first.published_parsed[:6] == (2026, 3, 2, 5, 15, 30)  # UTC
    assert first.id == "https://example.org/a?x=1&y=2"  # the link doubles as the guid
    assert second.id == "urn:x:2"
    assert second.author == "Jane Roe"
    assert parsed.feed.title == "Tést & <channel>"


def test_rss_dates_and_guids_follow_the_spec() -> None:
    channel, items = sample(content=None)
    text = rss_document(channel, items).decode()
    assert "<pubDate>Mon, 02 Mar 2026 08:15:30 +0300</pubDate>" in text
    assert '<guid isPermaLink="false">urn:x:2</guid>' in text
    assert "<guid>https://example.org/a?x=1&amp;y=2</guid>" in text
    assert "<author>desk@example.org (Desk)</author>" in text
    assert "<dc:creator>Jane Roe</dc:creator>" in text
    assert "content:encoded" not in text.split("<item>")[1]


def test_atom_dates_are_rfc3339() -> None:
    channel, items = sample()
    text = atom_document(channel, items).decode()
    assert "<published>2026-03-02T08:15:30+03:00</published>" in text
    utc_items = [Item("t", "https://e.org/x", "s", datetime(2026, 3, 2, 5, 0, 0, 999, tzinfo=UTC))]
    assert "<updated>2026-03-02T05:00:00Z</updated>" in atom_document(channel, utc_items).decode()


def test_builders_refuse_naive_dates_and_odd_encodings() -> None:
    channel, _ = sample()
    naive = [Item("t", "https://e.org/x", "s", datetime(2026, 3, 2, 8, 0))]
    with pytest.raises(ValueError, match="timezone-aware"):
        rss_document(channel, naive)
    with pytest.raises(ValueError, match="ASCII-compatible"):
        rss_document(channel, [], encoding="utf-16")
    with pytest.raises(LookupError):
        atom_document(channel, [], encoding="no-such-codec")


# ---- synthetic feeds -----------------------------------------------------------------------


def test_synthetic_feed_is_deterministic_and_realistic() -> None:
    a = samplefeeds.synthetic_feed(7, 20, full_text=True, seed=3)
    assert a == samplefeeds.synthetic_feed(7, 20, full_text=True, seed=3)
    assert a != samplefeeds.synthetic_feed(7, 20, full_text=True, seed=4)
    parsed = feedparser.parse(io.BytesIO(a))
    assert not parsed.bozo and len(parsed.entries) == 20
    assert base_lang(parsed.feed.language) == samplefeeds.synthetic_language(7, 3)
    words = Counter[str]()
    for entry in parsed.entries:
        words["title"] += len(entry.title.split())
        words["summary"] += len(entry.summary.split())
        words["content"] += len(entry.content[0].value.split())
    if parsed.feed.language not in ("zh", "ja", "th"):
        assert 8 <= words["title"] / 20 <= 12
        assert 85 <= words["summary"] / 20 <= 116
        assert 400 <= words["content"] / 20 <= 900
    short = feedparser.parse(io.BytesIO(samplefeeds.synthetic_feed(7, 20, full_text=False, seed=3)))
    assert "content" not in short.entries[0]


def test_synthetic_feeds_span_languages_and_formats() -> None:
    langs = Counter(samplefeeds.synthetic_language(n, 0) for n in range(2000))
    # The languages of the demo stories (the project's own text).
    assert len(langs) >= 9 and langs.most_common(1)[0][0] == "ar"
    versions = Counter(
        feedparser.parse(io.BytesIO(samplefeeds.synthetic_feed(n, 3, full_text=False, seed=0)))[
            "version"
        ]
        for n in range(40)
    )
    assert versions["rss20"] and versions["atom10"], versions


def test_synthetic_generation_slides_the_window() -> None:
    def links(generation: int) -> list[str]:
        data = samplefeeds.synthetic_feed(11, 10, full_text=False, seed=1, generation=generation)
        return [e.link for e in feedparser.parse(io.BytesIO(data)).entries]

    g0, g3 = links(0), links(3)
    assert g3[3:] == g0[:7], "3 new items on top, the rest shifted down"
    assert not set(g3[:3]) & set(g0)
    dated = feedparser.parse(
        io.BytesIO(samplefeeds.synthetic_feed(11, 10, full_text=False, seed=1))
    ).entries
    stamps = [e.published_parsed for e in dated]
    assert stamps == sorted(stamps, reverse=True), "newest first"


def test_synthetic_feed_is_fast() -> None:
    samplefeeds.synthetic_feed(0, 1, full_text=False, seed=0)  # pool loaded once, not timed
    start = time.perf_counter()
    for n in range(500):
        samplefeeds.synthetic_feed(n, 20, full_text=False, seed=0)
    per_feed = (time.perf_counter() - start) / 500
    # 10,000 x 20 must take well under a minute: ~0.35 ms a feed here; 3 ms is the alarm.
    assert per_feed < 0.003, f"{per_feed * 1000:.2f} ms per feed"
