"""The feed list: YAML round trip, validation messages, OPML import/export."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.feeds import (
    FeedList,
    FeedListError,
    FeedSpec,
    export_opml,
    feed_id_for,
    import_opml,
    load_feed_list,
    parse_feed_list,
    save_feed_list,
)

YAML = """
allow_private_addresses: true
feeds:
  - id: bbc-arabic
    url: https://feeds.bbci.co.uk/arabic/rss.xml
    name: BBC News عربي
    language: ar
    country: GB
    tags: [world]
    min_interval_s: 60
    max_interval_s: 600
  - id: lemonde
    url: https://www.lemonde.fr/rss/une.xml
    enabled: false
"""


def test_yaml_round_trip(tmp_path: Path) -> None:
    flist = parse_feed_list(YAML)
    assert flist.allow_private_addresses is True
    assert [f.id for f in flist.feeds] == ["bbc-arabic", "lemonde"]
    assert flist.feeds[0].name == "BBC News عربي"
    assert flist.feeds[1].enabled is False
    path = tmp_path / "feeds.yaml"
    save_feed_list(path, flist)
    assert load_feed_list(path) == flist
    assert "عربي" in path.read_text(encoding="utf-8")  # readable, not \\u-escaped


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("feeds:\n  - id: x\n    url: ftp://example.org/feed\n", "feeds[0] (x).url"),
        (
            "feeds:\n  - {id: a, url: 'https://a.example/f'}\n  - {id: a, url: 'https://b.example/f'}\n",
            "duplicate feed id 'a'",
        ),
        ("feeds:\n  - {id: 'Bad Id', url: 'https://a.example/f'}\n", "feeds[0] (Bad Id).id"),
        ("feeds:\n  - {id: a, url: 'https://a.example/f', colour: red}\n", "colour"),
        (
            "feeds:\n  - {id: a, url: 'https://a.example/f', min_interval_s: 900, "
            "max_interval_s: 60}\n",
            "min_interval_s is larger",
        ),
        ("feeds: [unclosed\n", "not valid YAML"),
        ("just a string\n", "expected a mapping"),
    ],
)
def test_bad_lists_say_where_and_why(text: str, message: str) -> None:
    with pytest.raises(FeedListError) as err:
        parse_feed_list(text, "list.yaml")
    assert message in str(err.value)
    assert str(err.value).startswith("list.yaml")


def test_missing_file_hints_how_to_create_one(tmp_path: Path) -> None:
    with pytest.raises(FeedListError, match="newsflow feeds add"):
        load_feed_list(tmp_path / "nope.yaml")


def test_add_remove() -> None:
    flist = parse_feed_list(YAML)
    spec = FeedSpec(id="dw-ar", url="https://rss.dw.com/xml/rss-ar-all", language="ar")
    bigger = flist.with_feed(spec)
    assert bigger.get("dw-ar") == spec
    with pytest.raises(FeedListError, match="already"):
        bigger.with_feed(spec)
    with pytest.raises(FeedListError, match="already in the list"):
        bigger.with_feed(FeedSpec(id="other", url=spec.url))
    assert bigger.without("dw-ar") == flist
    with pytest.raises(FeedListError, match="no feed with id"):
        flist.without("dw-ar")


def test_feed_ids_from_urls_are_readable_and_unique() -> None:
    assert feed_id_for("https://feeds.bbci.co.uk/arabic/rss.xml") == "bbci-co-uk-arabic"
    assert feed_id_for("https://www.lemonde.fr/rss/une.xml") == "lemonde-fr-une"
    assert (
        feed_id_for("https://www.lemonde.fr/rss/une.xml", ["lemonde-fr-une"]) == "lemonde-fr-une-2"
    )
    FeedSpec(id=feed_id_for("https://ÉXAMPLE.org/ﬂux/"), url="https://example.org/")


OPML = b"""<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0"><head><title>mine</title></head><body>
  <outline text="Arabic">
    <outline type="rss" text="BBC Arabic" xmlUrl="https://feeds.bbci.co.uk/arabic/rss.xml"
             language="ar"/>
    <outline type="rss" text="DW" title="DW Arabic" xmlUrl="https://rss.dw.com/xml/rss-ar-all"
             category="news,world"/>
  </outline>
  <outline type="rss" text="Broken" xmlUrl="ftp://example.org/feed.xml"/>
  <outline type="rss" text="Le Monde" xmlUrl="https://www.lemonde.fr/rss/une.xml"/>
</body></opml>"""


def test_opml_import_keeps_good_outlines_and_reports_bad_ones() -> None:
    existing = FeedList(feeds=(FeedSpec(id="lm", url="https://www.lemonde.fr/rss/une.xml"),))
    merged, problems = import_opml(OPML, "mine.opml", existing)
    assert [f.id for f in merged.feeds] == ["lm", "bbci-co-uk-arabic", "dw-com-rss-ar-all"]
    bbc, dw = merged.feeds[1], merged.feeds[2]
    assert bbc.language == "ar" and bbc.tags == ("Arabic",) and bbc.name == "BBC Arabic"
    assert dw.name == "DW Arabic" and dw.tags == ("Arabic", "news", "world")
    assert len(problems) == 1 and problems[0].startswith("ftp://example.org/feed.xml")


def test_opml_export_imports_back_to_the_same_feeds() -> None:
    flist = parse_feed_list(YAML)
    again, problems = import_opml(export_opml(flist))
    assert problems == []
    assert [(f.url, f.language, f.tags) for f in again.feeds] == [
        (f.url, f.language, f.tags) for f in flist.feeds
    ]
    # OPML has no ids: a nameless feed comes back named after its old id.
    assert [f.name for f in again.feeds] == ["BBC News عربي", "lemonde"]


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b'<?xml version="1.0"?><!DOCTYPE opml [<!ENTITY a "aaaa">]><opml/>', "DOCTYPE"),
        (b"<opml><body><outline", "not well-formed"),
        (b"<rss/>", "not <opml>"),
        (b"<opml version='2.0'><head/></opml>", "without <body>"),
    ],
)
def test_hostile_or_broken_opml_is_refused_clearly(data: bytes, message: str) -> None:
    with pytest.raises(FeedListError, match=message):
        import_opml(data)
