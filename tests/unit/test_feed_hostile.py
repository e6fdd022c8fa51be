"""Feed lists from users and other tools (issue 14.12 and the YAML item of 14's "Also").

OPML: declarations are refused by the parser whatever the encoding, deep nesting is a clear
error instead of a RecursionError. YAML: ``language: no`` (Norwegian) and ``country: NO``
(Norway) are strings, not YAML 1.1 booleans.
"""

from __future__ import annotations

import pytest

from connectors.feeds import MAX_OPML_DEPTH, FeedListError, import_opml, parse_feed_list

_SECRET = "EXPANDED-ENTITY"


def _opml(outlines: str, prolog: str = "", encoding: str = "utf-8") -> str:
    return (
        f'<?xml version="1.0" encoding="{encoding}"?>{prolog}<opml version="2.0"><head>'
        f"<title>t</title></head><body>{outlines}</body></opml>"
    )


_ENTITY_PROLOG = f'<!DOCTYPE opml [<!ENTITY secret "{_SECRET}">]>'
_FEED = '<outline text="&secret;" title="&secret;" type="rss" xmlUrl="https://o.example.org/rss"/>'


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("utf-8", _opml(_FEED, _ENTITY_PROLOG).encode()),
        ("utf-16 with BOM", _opml(_FEED, _ENTITY_PROLOG, "utf-16").encode("utf-16")),
        ("utf-16-le, no BOM", _opml(_FEED, _ENTITY_PROLOG, "utf-16").encode("utf-16-le")),
        ("utf-16-be, no BOM", _opml(_FEED, _ENTITY_PROLOG, "utf-16").encode("utf-16-be")),
        ("long prolog", _opml(_FEED, "<!-- x -->" * 500 + _ENTITY_PROLOG).encode()),
    ],
)
def test_opml_declarations_are_refused_in_any_encoding(name: str, data: bytes) -> None:
    with pytest.raises(FeedListError, match="DOCTYPE/ENTITY declaration is refused"):
        feeds, _ = import_opml(data)
        pytest.fail(f"{name}: imported {[f.name for f in feeds.feeds]}")


def _nested(depth: int) -> bytes:
    feed = '<outline text="F" type="rss" xmlUrl="https://o.example.org/deep"/>'
    return _opml('<outline text="d">' * depth + feed + "</outline>" * depth).encode()


def test_deeply_nested_opml_is_a_clear_error_not_a_recursion_error() -> None:
    with pytest.raises(FeedListError, match=f"nested deeper than {MAX_OPML_DEPTH} levels"):
        import_opml(_nested(5000))


def test_nested_folders_within_the_cap_become_tags() -> None:
    feeds, problems = import_opml(_nested(40))
    assert problems == []
    (feed,) = feeds.feeds
    assert feed.url == "https://o.example.org/deep" and feed.tags == ("d",)


def test_outline_order_is_kept() -> None:
    outlines = (
        '<outline text="A"><outline text="a1" xmlUrl="https://o.example.org/1"/></outline>'
        '<outline text="b2" xmlUrl="https://o.example.org/2"/>'
        '<outline text="C"><outline text="c3" xmlUrl="https://o.example.org/3"/></outline>'
    )
    feeds, _ = import_opml(_opml(outlines).encode())
    assert [(f.url[-1], f.tags) for f in feeds.feeds] == [("1", ("A",)), ("2", ()), ("3", ("C",))]


def test_yaml_norway_is_not_a_boolean() -> None:
    feeds = parse_feed_list(
        "feeds:\n"
        "  - id: nrk\n    url: https://nrk.example.no/rss\n    language: no\n    country: NO\n"
        "  - id: off\n    url: https://off.example.no/rss\n    enabled: off\n"
        "  - id: yes-feed\n    url: https://yes.example.no/rss\n    enabled: yes\n"
    )
    nrk, off, yes = feeds.feeds
    assert (nrk.language, nrk.country) == ("no", "NO")
    assert off.enabled is False and yes.enabled is True
    assert parse_feed_list("allow_private_addresses: true\nfeeds: []\n").allow_private_addresses
