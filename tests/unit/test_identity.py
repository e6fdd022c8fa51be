"""Identity from link AND guid (issue 14.3): one article is one id, two articles are two.

Hand-written feeds through ``parse_feed`` (the path the connector takes) and the pure rule
``identity.identity_keys`` on its own.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from xml.sax.saxutils import escape

from connectors.feed_state import FeedState
from connectors.feeds import FeedSpec
from connectors.rss.digest import digest_fetch, new_state, to_raw_article
from connectors.rss.identity import Candidate, identity_keys
from connectors.rss.parse import parse_feed
from connectors.rss.schedule import SchedulePolicy
from connectors.rss.types import ParsedFeed
from streams.net.types import FetchResult, Validators
from streams.schema.ids import article_id

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def rss(items: Sequence[tuple[str | None, str | None, str]], *, permalink: bool = False) -> bytes:
    """An RSS 2.0 body of ``(link, guid, title)`` items."""
    parts = []
    for link, guid, title in items:
        xml = f"<item><title>{escape(title)}</title>"
        if link is not None:
            xml += f"<link>{escape(link)}</link>"
        if guid is not None:
            perma = "true" if permalink else "false"
            xml += f"<guid isPermaLink='{perma}'>{escape(guid)}</guid>"
        parts.append(xml + f"<description>{escape(title)} …</description></item>")
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>t</title>"
        f"<link>https://blog.example/</link>{''.join(parts)}</channel></rss>"
    ).encode()


def parse(body: bytes, url: str = "https://blog.example/feed.xml") -> ParsedFeed:
    return parse_feed(body, base_url=url, now=NOW)


def test_fifty_posts_of_one_page_told_apart_by_fragment_are_fifty_articles() -> None:
    items = [
        (
            f"https://blog.example/2008/06/26.html#a0806{n:02d}",
            f"tag:blog.example,2008:post-0806{n:02d}",
            f"Note {n}: ملاحظة رقم {n} — Eintrag {n}",
        )
        for n in range(50)
    ]
    parsed = parse(rss(items))
    ids = {item.article_id for item in parsed.items}
    assert len(parsed.items) == 50 and len(ids) == 50
    assert parsed.dropped["duplicate_in_feed"] == 0
    # Each post's address keeps its anchor; the id hashes exactly that address.
    first = parsed.items[0]
    assert first.url == "https://blog.example/2008/06/26.html#a080600"
    assert first.article_id == article_id(first.url)


def test_a_sponsor_post_sharing_an_articles_link_is_a_second_article() -> None:
    link = "https://news.example/2026/11/economy?utm_source=rss"
    items = [
        (link, "urn:uuid:1111", "Le budget 2027 adopté en première lecture"),
        (link, "urn:uuid:2222", "Sponsored: a better savings account"),
    ]
    parsed = parse(rss(items))
    assert len({item.article_id for item in parsed.items}) == 2
    # Told apart by GUID: the URL stays the canonical one, the ids differ from the plain URL's.
    assert {item.url for item in parsed.items} == {"https://news.example/2026/11/economy"}
    assert article_id("https://news.example/2026/11/economy") not in {
        item.article_id for item in parsed.items
    }


def test_the_same_link_in_two_feeds_with_their_own_guids_is_one_article() -> None:
    link = "https://news.example/world/2026/11/30/ankara-talks"
    one = parse(
        rss([(link + "#comments", "feed-a-991", "Talks in Ankara")]), "https://a.example/rss"
    )
    two = parse(
        rss([(link, "https://b.example/?p=77", "Talks in Ankara")]), "https://b.example/rss"
    )
    assert [i.article_id for i in one.items] == [i.article_id for i in two.items]
    assert one.items[0].article_id == article_id(link)
    assert one.items[0].url == link  # a lone item's fragment is not part of its identity


def test_true_duplicates_in_one_document_stay_one_article() -> None:
    link = "https://news.example/a/1"
    items = [
        (link, "g-1", "Haber: Ankara'da görüşmeler"),
        (link, "g-1", "Haber: Ankara'da görüşmeler (güncellendi)"),  # same guid: same item
        (link + "#x", "g-2", "Haber: Ankara'da görüşmeler"),  # same text: a repeat
        (link, None, "Haber: Ankara'da görüşmeler (3)"),  # nothing tells it apart
    ]
    parsed = parse(rss(items))
    assert len(parsed.items) == 1
    assert parsed.items[0].article_id == article_id(link)
    assert parsed.dropped["duplicate_in_feed"] == 3


def test_a_guid_without_a_link_gets_a_null_url_in_the_record() -> None:
    parsed = parse(rss([(None, "urn:uuid:3333", "Без ссылки")]))
    (item,) = parsed.items
    assert item.article_id == article_id("guid:urn:uuid:3333")
    feed = FeedSpec(id="f1", url="https://blog.example/feed.xml")
    state = FeedState(feed_id="f1", url=feed.url)
    raw = to_raw_article(item, feed, state, NOW, NOW.timestamp())
    assert raw.source.url is None
    assert raw.source.guid == "urn:uuid:3333"


def test_rule_on_candidates() -> None:
    def c(key: str, guid: str | None, frag: str, text: str) -> Candidate:
        return Candidate(key, guid, frag, text)

    u = "https://x.example/p"
    keys = identity_keys(
        [
            c(u, "a", "1", "h1"),
            c(u, "b", "2", "h2"),
            c(u, "b", "3", "h3"),  # same guid as the second: duplicate
            c(u, None, "4", "h4"),  # no guid: a fragment alone (#comments) tells nothing
            c(u, "d", "5", "h1"),  # the first one's text again: a repeat
            c("https://x.example/q", "z", "", "h5"),
        ]
    )
    assert keys == [f"{u}#1", f"{u}#2", None, None, None, "https://x.example/q"]
    # Same fragment, distinct guids: the guid decides.
    assert identity_keys([c(u, "a", "top", "h1"), c(u, "b", "top", "h2")]) == [
        f"{u} guid:a",
        f"{u} guid:b",
    ]


def _poll(state: FeedState | None, body: bytes, at: float) -> tuple[FeedState, list[str]]:
    """One poll of the feed through ``digest_fetch`` (the connector's pure step): the next
    state and the ids it produced."""
    feed = FeedSpec(id="diary", url="https://blog.example/feed.xml")
    fetched = FetchResult(
        status="ok", url=feed.url, http_status=200, body=body, validators=Validators()
    )
    policy = SchedulePolicy(min_interval_s=60, max_interval_s=3600, failure_base_s=60)
    d = digest_fetch(feed, state or new_state(feed), fetched, sent=None, now=at, policy=policy)
    return d.state, [a.article_id for a in d.articles]


def test_ids_stay_when_the_other_posts_of_a_page_leave_the_feed() -> None:
    page = "https://blog.example/2008/06/26.html"
    posts = [(f"{page}#a{n}", f"post-{n}", f"Post {n}: пост {n}") for n in range(3)]
    state, first = _poll(None, rss(posts), NOW.timestamp())
    assert len(set(first)) == 3
    # Next day only the last post of that page is left, with a new post of another page.
    later = [("https://blog.example/2008/06/27.html#a9", "post-9", "Post 9"), posts[2]]
    state, second = _poll(state, rss(later), NOW.timestamp() + 86400)
    assert len(second) == 1  # only the new post: post 2 kept its id, nothing re-emitted
    assert second[0] != first[2]


def test_an_article_keeps_its_id_when_a_sponsor_post_reuses_its_link() -> None:
    link = "https://news.example/economy/budget"
    article = (link, "urn:uuid:1", "Le budget adopté")
    state, first = _poll(None, rss([article]), NOW.timestamp())
    assert first == [article_id(link)]
    sponsor = (link, "urn:uuid:2", "Sponsored: savings")
    state, second = _poll(state, rss([sponsor, article]), NOW.timestamp() + 600)
    assert len(second) == 1 and second[0] != article_id(link)  # only the sponsor post is new
    # The article leaves the feed; the sponsor post, now alone with the link, must not take
    # the article's id (its record would overwrite the article's document).
    state, third = _poll(state, rss([sponsor]), NOW.timestamp() + 1200)
    assert third == []
