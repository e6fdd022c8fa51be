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
Either way a second document. So each item also carries the keys it would have had otherwise
(``Item.alt_keys``), and an item whose current id the feed never produced takes the
alternative it did produce (the canonical-URL id only when its text is what was produced
under it). Measured on the hand-written feeds in ``tests/unit/test_identity.py``: 50 fragment
posts -> 50 ids (were 1), a sponsor post -> 2 ids (was 1), and both stay stable over polls.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

from connectors.rss.types import Item
from streams.schema.ids import article_id

_MAX_FRAGMENT = 512


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
    for link in entry.get("links") or ():
        href = link.get("href") if isinstance(link, dict) else None
        if link.get("rel", "alternate") != "alternate" or not isinstance(href, str) or not href:
            continue
        try:
            fragment = urlsplit(href.strip()).fragment
        except ValueError:
            return ""
        if fragment.startswith("!"):
            return ""
        return fragment.strip()[:_MAX_FRAGMENT]
    return ""


def _candidate(item: Item, entry: dict[str, Any]) -> Candidate:
    raw_guid = entry.get("id")
    guid = raw_guid.strip() if isinstance(raw_guid, str) else ""
    key = item.url or f"guid:{guid}"
    return Candidate(key, guid or None, link_fragment(entry) if item.url else "", item.content_hash)


def _url_of(key: str, base: str) -> str:
    """The record's URL for an item keyed ``key`` whose canonical URL is ``base``."""
    return key if key.startswith(base + "#") and " guid:" not in key else base


def resolve(parsed: Sequence[tuple[Item, dict[str, Any]]]) -> tuple[list[Item], int]:
    """The items of one document with their final ids (in order), and how many were dropped as
    duplicates. ``parsed`` pairs each ``Item`` with the feedparser entry it came from."""
    cands = [_candidate(item, entry) for item, entry in parsed]
    keys = identity_keys(cands)
    items: list[Item] = []
    for (item, _entry), cand, key in zip(parsed, cands, keys, strict=True):
        if key is None:
            continue
        base = item.url or ""
        alt: tuple[str, ...]  # the canonical-URL key first, then the alternatives
        if base and key != base:
            alt = (base,)  # grouped now; alone before?
            item = replace(item, article_id=article_id(key), url=_url_of(key, base), alt_keys=alt)
        elif base and (cand.fragment or cand.guid):  # alone now; grouped before?
            alt = tuple(
                k
                for k in (
                    base,
                    f"{base}#{cand.fragment}" if cand.fragment else "",
                    f"{base} guid:{cand.guid}" if cand.guid else "",
                    f"{base}#{cand.fragment} guid:{cand.guid}"
                    if cand.fragment and cand.guid
                    else "",
                )
                if k
            )
            item = replace(item, alt_keys=alt)
        items.append(item)
    return items, len(parsed) - len(items)


SeenEntry = Callable[[str], "tuple[str, float] | None"]


def sticky(item: Item, seen_entry: SeenEntry) -> Item:
    """``item`` under the id the feed already produced it with, when its current id is new to
    the feed but one of its ``alt_keys`` is not. The canonical-URL key is taken back only by
    the item whose text was produced under it (several may share that URL now)."""
    if not item.alt_keys or seen_entry(item.article_id) is not None:
        return item
    base = item.alt_keys[0]
    for key in item.alt_keys:
        aid = article_id(key)
        entry = seen_entry(aid)
        if entry is None:
            continue
        if key == base and entry[0] != item.content_hash[:16]:
            continue
        return replace(item, article_id=aid, url=_url_of(key, base), alt_keys=())
    return item
