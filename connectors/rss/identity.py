"""Which items of one feed document are one article, and the key each article's id hashes.

Flow: ``parse.parse_feed`` builds every entry's ``Item`` (``article_id`` from
``urls.item_key``: the canonical URL, which drops the fragment, or ``guid:<guid>``), then
``resolve`` decides identity from the link AND the GUID before the items go on.

The rule (pure; ``identity_keys`` on plain ``Candidate`` values):

- An item whose canonical URL no other item of the document shares keeps the id from the
  canonical URL, as before. So the same article carried by two feeds with feed-specific GUIDs
  stays ONE document (the key never depends on the feed or, alone, on the GUID).
- Items that share a canonical URL are one article, and all but the first are dropped
  (``duplicate_in_feed``), unless they are *distinct*: different GUIDs and different text
  (``content_hash``: title, summary, content). Without GUIDs, links that differ only by
  fragment (``#comments``, ``#top``) stay one article; the same GUID is always one article.
- When a canonical URL has several distinct items (a page of 50 posts addressed
  ``…/26.html#a080605``, ``#a080606``; a sponsor post reusing an article's link), each one's
  key includes its fragment when the fragment tells them apart (``url#fragment``, also its
  ``url``, so the link opens the post), else its GUID (``url guid:<guid>``; a space never
  occurs in a canonical URL).

Between polls (``sticky``, called by ``digest`` with the feed's seen set): the grouping above
depends on which items the document holds now. When the other posts of a page have left the
feed, the one that remains would be keyed by its canonical URL again; when a sponsor post
reuses the link of an article already indexed, that article would be re-keyed by its GUID.
Either way a second document (and a sponsor post left alone would overwrite the article's).
So the parse also returns the keys each item would have had otherwise
(``ParsedFeed.alt_keys``), and an item whose current id the feed never produced, or produced
with other text, takes the alternative it did produce (the canonical-URL id only when its text
is what was produced under it).

Measured on the hand-written feeds in ``tests/unit/test_identity.py``: 50 fragment posts ->
50 ids (were 1), a sponsor post -> 2 ids (was 1), both stable over polls; the 29 fixture feeds
of ``tests/fixtures/feeds`` keep their 55 ids. Cost: ``resolve`` 3.3 us per item on a
1,000-item feed (parsing costs ~430 us per item; a first version that copied every ``Item``
to attach its alternatives and read entries through FeedParserDict.get cost 20 us).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from connectors.rss.types import Item
from streams.schema.ids import article_id

_MAX_FRAGMENT = 512
# feedparser's FeedParserDict.get goes through its alias table (see parse._get): 4x slower.
_get = dict.get


@dataclass(frozen=True, slots=True)
class Candidate:
    """What identity looks at in one item."""

    key: str  # the key today: canonical URL (no fragment) or "guid:<guid>"
    guid: str | None  # the full GUID as published
    fragment: str  # the link's fragment ("" when none)
    content_hash: str


def _distinct(a: Candidate, b: Candidate) -> bool:
    """Two items sharing a canonical URL are two articles (see the module rule)."""
    if a.content_hash == b.content_hash:
        return False
    return bool(a.guid and b.guid and a.guid != b.guid)


def identity_keys(cands: Sequence[Candidate]) -> list[str | None]:
    """Per candidate, in order: the key to hash into ``article_id``, or None for a duplicate of
    an earlier candidate of the same document."""
    groups: dict[str, list[int]] = {}
    for i, cand in enumerate(cands):
        groups.setdefault(cand.key, []).append(i)
    out: list[str | None] = [None] * len(cands)
    for key, members in groups.items():
        reps: list[int] = []
        for i in members:
            if all(_distinct(cands[i], cands[r]) for r in reps):
                reps.append(i)
        if len(reps) == 1:
            out[reps[0]] = key
            continue
        fragments = [cands[r].fragment for r in reps]
        guids = [cands[r].guid for r in reps]
        for r in reps:
            cand = cands[r]
            if cand.fragment and fragments.count(cand.fragment) == 1:
                out[r] = f"{key}#{cand.fragment}"
            elif cand.guid and guids.count(cand.guid) == 1:
                out[r] = f"{key} guid:{cand.guid}"
            else:  # told apart from every other only by the pair
                out[r] = f"{key}#{cand.fragment} guid:{cand.guid}"
    return out


def link_fragment(entry: dict[str, Any]) -> str:
    """The fragment of the entry's first alternate link ("" when none, or a hash-bang route,
    which the canonical URL keeps already)."""
    for link in _get(entry, "links") or ():
        if not isinstance(link, dict):
            continue
        href = _get(link, "href")
        if _get(link, "rel", "alternate") != "alternate" or not isinstance(href, str) or not href:
            continue
        fragment = href.partition("#")[2]  # what urlsplit calls the fragment, 10x cheaper
        if fragment.startswith("!"):
            return ""
        return fragment.strip()[:_MAX_FRAGMENT]
    return ""


def _candidate(item: Item, entry: dict[str, Any]) -> Candidate:
    raw_guid = _get(entry, "id")
    guid = raw_guid.strip() if isinstance(raw_guid, str) else ""
    key = item.url or f"guid:{guid}"
    return Candidate(key, guid or None, link_fragment(entry) if item.url else "", item.content_hash)


def _url_of(key: str, base: str) -> str:
    """The record's URL for an item keyed ``key`` whose canonical URL is ``base``."""
    return key if key.startswith(base + "#") and " guid:" not in key else base


def resolve(
    parsed: Sequence[tuple[Item, dict[str, Any]]],
) -> tuple[list[Item], int, dict[str, tuple[str, ...]]]:
    """The items of one document with their final ids (in order), how many were dropped as
    duplicates, and per kept item's id the keys it would have had with other items around
    (the canonical-URL key first; for ``sticky``). ``parsed`` pairs each ``Item`` with the
    feedparser entry it came from."""
    cands = [_candidate(item, entry) for item, entry in parsed]
    keys = identity_keys(cands)
    items: list[Item] = []
    alternatives: dict[str, tuple[str, ...]] = {}
    for (item, _entry), cand, key in zip(parsed, cands, keys, strict=True):
        if key is None:
            continue
        base = item.url or ""
        if base and key != base:  # grouped now; alone before?
            item = replace(item, article_id=article_id(key), url=_url_of(key, base))
            alternatives[item.article_id] = (base,)
        elif base and (cand.fragment or cand.guid):  # alone now; grouped before?
            alt = [base]
            if cand.fragment:
                alt.append(f"{base}#{cand.fragment}")
            if cand.guid:
                alt.append(f"{base} guid:{cand.guid}")
            if cand.fragment and cand.guid:
                alt.append(f"{base}#{cand.fragment} guid:{cand.guid}")
            alternatives[item.article_id] = tuple(alt)
        items.append(item)
    return items, len(parsed) - len(items), alternatives


SeenEntry = Callable[[str], "tuple[str, float] | None"]


def sticky(item: Item, alt_keys: Sequence[str] | None, seen_entry: SeenEntry) -> Item:
    """``item`` under the id the feed already produced it with, when that is not its current
    id: its current id is new to the feed, or was produced with other text (a sponsor post
    left alone would otherwise overwrite the article whose link it shares), and one of
    ``alt_keys`` was produced. The canonical-URL key (``alt_keys[0]``) is taken back only by
    the item whose text was produced under it (several may share that URL now)."""
    if not alt_keys:
        return item
    current = seen_entry(item.article_id)
    text = item.content_hash[:16]
    if current is not None and current[0] == text:
        return item
    base = alt_keys[0]
    for key in alt_keys:
        aid = article_id(key)
        if aid == item.article_id:
            continue
        entry = seen_entry(aid)
        if entry is None or (key == base and entry[0] != text):
            continue
        return replace(item, article_id=aid, url=_url_of(key, base))
    return item
