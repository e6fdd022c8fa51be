"""One document per article across the monthly indices, and every feed that carried it.

Why: indices are per month of ``first_seen_at`` behind one alias (``elastic.index_for``) and
``_id`` is unique only within one index, so the same article first seen by one feed in
November and by another (or after lost feed state) in December was indexed twice; and each
write replaced the document's ``feed``, so only the last feed that carried it was known
(issues 14.1 and 14.2).

What: before a bulk request of articles goes out (``ElasticSink.send``, in the worker thread,
on every attempt), ``Placement.place`` looks the batch's ids up on the alias -- ONE ``_search``
with an ``ids`` query, ``size`` = the number of ids and ``_source`` limited to the provenance
fields (``_mget`` cannot address a multi-index alias) -- and rewrites the items whose article
is already held somewhere:

- the item goes to the index that holds the article, whatever month its record says;
- ``feeds`` (``[{id, name, first_seen_at}]``, one entry per feed, the earliest first_seen_at
  of each) is the union of what the document holds and what the record brings, ``feed_ids``
  the same ids as a keyword list (search and facets), and the document's ``first_seen_at``
  the earliest of them. Merging by feed id makes a redelivered record change nothing.
- ``feed`` stays the feed of the record that wrote the document last (its text), as before.

Several records of one id in one batch are chained in order (the second merges with the
first). Order and exclusivity: records are keyed by ``article_id``, so one id always lives in
one partition, handled by one index worker at a time, in order -- no two writers race on one
document, and the read-then-write needs no lock. A search sees writes only after a refresh
(``refresh_interval``: 1 s), so what this worker wrote in the last ``ttl_s`` seconds is also
remembered (bounded: ``max_entries``) and trusted over the search; after a rebalance the new
owner starts from the search, which has long seen the old owner's writes. The one gap: a
partition that leaves a worker and comes back within ``ttl_s`` (10 s) while the other worker
added a feed to one of its articles; that feed is then missing from ``feeds`` until a later
record of that feed carries it again (the document itself stays one).

``newsflow reindex`` uses ``lookup`` and ``merge`` the same way (``write_placed``).

Cost, measured on the local stack (2 shared cores; 20,500 documents of ~5 KB; batches of
500; ``place`` only, median of 5): 27 ms when no id is held (new articles, the usual case),
61 ms when every id is held and nothing changes (a re-emitted update from the same feed), 95 ms
when every document must be rewritten with a new feed; the bulk request itself took
450-950 ms. The lookup reads doc values (see ``DOCVALUE_FIELDS``), and parsed dates are cached:
reading ``_source`` and re-merging per item cost 148-192 ms on the same batches.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any

import orjson
from elasticsearch import ApiError, Elasticsearch

# The feeds listed per article are bounded: the earliest MAX_FEEDS (a link every feed of a
# large list carries, such as a site's front page, must not grow one document without limit).
MAX_FEEDS = 500
FeedEntry = dict[str, Any]  # {"id": str, "name": str | None, "first_seen_at": ISO 8601}
# The lookup reads doc values, not _source: loading and filtering the _source of 500 held
# documents took 107 ms in Elasticsearch (median 139 ms per lookup, 5 KB documents; more with
# real bodies), doc values 41 ms (84 ms). ``feeds_seen`` is ``feeds`` as doc values (keyword,
# not indexed): one self-contained "first_seen_at TAB id TAB name" per feed, so the sorted set
# of doc values loses nothing.
DOCVALUE_FIELDS: list[Mapping[str, Any]] = [
    {"field": "feeds_seen"},
    {"field": "feed.id"},
    {"field": "feed.name"},
    {"field": "first_seen_at", "format": "strict_date_optional_time"},
]


@dataclass(frozen=True, slots=True)
class Held:
    """Where an article's document is and the feeds it lists."""

    index: str
    feeds: tuple[FeedEntry, ...]


def feed_entry(feed_id: str, name: str | None, first_seen_at: str) -> FeedEntry:
    return {"id": feed_id, "name": name, "first_seen_at": first_seen_at}


@lru_cache(maxsize=4096)
def _parse_when(value: str) -> datetime:
    return datetime.fromisoformat(value)


def _when(entry: Mapping[str, Any]) -> datetime:
    return _parse_when(str(entry["first_seen_at"]))


def held_feeds(source: Mapping[str, Any]) -> list[FeedEntry]:
    """The feeds a stored document lists; a document written before ``feeds`` existed lists
    the one feed it kept, first seen when the document says."""
    feeds = source.get("feeds")
    if feeds:
        return [dict(f) for f in feeds]
    feed = source.get("feed") or {}
    if feed.get("id") and source.get("first_seen_at"):
        return [feed_entry(feed["id"], feed.get("name"), source["first_seen_at"])]
    return []


def merge(*lists: Iterable[Mapping[str, Any]]) -> list[FeedEntry]:
    """One entry per feed id: the earliest first_seen_at, the latest non-empty name (later
    lists are newer); ordered by first_seen_at, then id; the earliest ``MAX_FEEDS``.
    Idempotent and order-free in ids."""
    out: dict[str, FeedEntry] = {}
    for entries in lists:
        for entry in entries:
            old = out.get(entry["id"])
            if old is None:
                out[entry["id"]] = dict(entry)
                continue
            if _when(entry) < _when(old):
                old["first_seen_at"] = entry["first_seen_at"]
            if entry.get("name"):
                old["name"] = entry["name"]
    return sorted(out.values(), key=lambda e: (_when(e), e["id"]))[:MAX_FEEDS]


def seen_values(feeds: Iterable[Mapping[str, Any]]) -> list[str]:
    """``feeds_seen`` of ``feeds``."""
    return [f"{f['first_seen_at']}\t{f['id']}\t{f.get('name') or ''}" for f in feeds]


def from_seen(values: Iterable[str]) -> list[FeedEntry]:
    out = []
    for value in values:
        when, feed_id, name = value.split("\t", 2)
        out.append(feed_entry(feed_id, name or None, when))
    return out


def apply(doc: dict[str, Any], feeds: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """Set ``feeds``, ``feed_ids``, ``feeds_seen`` and the earliest ``first_seen_at``."""
    return _set(doc, merge(feeds))


def _set(doc: dict[str, Any], merged: list[FeedEntry]) -> dict[str, Any]:
    doc["feeds"] = merged
    doc["feed_ids"] = [f["id"] for f in merged]
    doc["feeds_seen"] = seen_values(merged)
    if merged:
        doc["first_seen_at"] = min(merged, key=_when)["first_seen_at"]
    return doc


def ensure(doc: dict[str, Any]) -> dict[str, Any]:
    """A document with ``feeds``/``feed_ids`` (built from ``feed`` for an older document)."""
    if not doc.get("feeds"):
        return apply(doc, held_feeds(doc))
    doc.setdefault("feed_ids", [f["id"] for f in doc["feeds"]])
    doc.setdefault("feeds_seen", seen_values(doc["feeds"]))
    return doc


def lookup(client: Elasticsearch, index: str, ids: Sequence[str]) -> dict[str, Held]:
    """Where each of ``ids`` is held under ``index`` (an alias or a comma-separated list), with
    its feeds. An id held twice (written before this module existed) is reported at its
    earliest copy, with the feeds of every copy."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return {}
    try:
        resp = client.search(
            index=index,
            query={"ids": {"values": wanted}},
            size=min(10_000, 4 * len(wanted)),
            source=False,
            docvalue_fields=DOCVALUE_FIELDS,
            ignore_unavailable=True,
            allow_no_indices=True,
        )
    except ApiError as exc:
        # Other errors are the caller's to classify like its bulk request's (ElasticSink.send:
        # retry, refusal or poison); unreachable raises TransportError.
        if exc.meta.status == 404:  # no index behind the name yet
            return {}
        raise
    copies: dict[str, list[tuple[datetime | None, str, list[FeedEntry]]]] = {}
    for hit in resp["hits"]["hits"]:
        values = hit.get("fields") or {}
        seen = (values.get("first_seen_at") or [None])[0]
        when = datetime.fromisoformat(seen) if isinstance(seen, str) else None
        if values.get("feeds_seen"):
            feeds = from_seen(values["feeds_seen"])
        elif values.get("feed.id") and seen:  # written before feeds existed
            feeds = [feed_entry(values["feed.id"][0], (values.get("feed.name") or [None])[0], seen)]
        else:
            feeds = []
        copies.setdefault(hit["_id"], []).append((when, hit["_index"], feeds))
    out: dict[str, Held] = {}
    for doc_id, found in copies.items():
        found.sort(key=lambda c: (c[0] is None, c[0] or datetime.max, c[1]))
        out[doc_id] = Held(found[0][1], tuple(merge(*(c[2] for c in found))))
    return out


def _index_of(action: bytes) -> str:
    return str(orjson.loads(action)["index"]["_index"])


class Placement:
    """``place`` before a bulk request, ``remember`` after it (see the module docstring)."""

    def __init__(self, alias: str, ttl_s: float = 10.0, max_entries: int = 20_000) -> None:
        self.alias = alias
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._recent: OrderedDict[str, tuple[float, Held]] = OrderedDict()

    def _fresh(self, doc_id: str, now: float) -> Held | None:
        entry = self._recent.get(doc_id)
        if entry is None:
            return None
        if entry[0] < now:
            del self._recent[doc_id]
            return None
        return entry[1]

    def place(
        self,
        client: Elasticsearch,
        ids: Sequence[str],
        lines: Sequence[bytes],
        own: Sequence[Sequence[FeedEntry]],
    ) -> tuple[list[bytes], list[Held]]:
        """The bulk lines rewritten to where each article is held, with merged feeds, and the
        state each item leaves its document in (for ``remember``)."""
        now = time.monotonic()
        state: dict[str, Held] = {}
        for doc_id in ids:
            held = self._fresh(doc_id, now)
            if held is not None:
                state[doc_id] = held
        missing = [i for i in dict.fromkeys(ids) if i not in state]
        state.update(lookup(client, self.alias, missing))
        out_lines: list[bytes] = []
        after: list[Held] = []
        for doc_id, line, feeds in zip(ids, lines, own, strict=True):
            action, _, body = line.partition(b"\n")
            index = _index_of(action)
            held = state.get(doc_id)
            if held is None:
                result = Held(index, tuple(feeds))
                out_lines.append(line)
                state[doc_id] = result
                after.append(result)
                continue
            merged = merge(held.feeds, feeds)
            result = Held(held.index, tuple(merged))
            if held.index == index and merged == list(feeds):
                out_lines.append(line)  # nothing to add: the line is right as it is
            else:
                doc = _set(orjson.loads(body), merged)
                new_action = {"index": {"_index": held.index, "_id": doc_id}}
                out_lines.append(orjson.dumps(new_action) + b"\n" + orjson.dumps(doc))
            state[doc_id] = result
            after.append(result)
        return out_lines, after

    def remember(self, ids: Sequence[str], after: Sequence[Held], ok: Sequence[bool]) -> None:
        """What the written items left in their documents, trusted for ``ttl_s``."""
        expires = time.monotonic() + self.ttl_s
        for doc_id, held, written in zip(ids, after, ok, strict=True):
            if not written:
                continue
            self._recent.pop(doc_id, None)
            self._recent[doc_id] = (expires, held)
        while len(self._recent) > self.max_entries:
            self._recent.popitem(last=False)


def write_placed(
    client: Elasticsearch, where: str, docs: Sequence[tuple[str, str, dict[str, Any]]]
) -> tuple[int, list[dict[str, Any]]]:
    """Write ``(index, _id, document)`` triples each to the index under ``where`` that already
    holds its article (``newsflow reindex``), feeds merged; refreshed, so the next call sees
    them. Returns (written, the failed items' answers)."""
    if not docs:
        return 0, []
    ids = [doc_id for _index, doc_id, _doc in docs]
    lines = [
        orjson.dumps({"index": {"_index": index, "_id": doc_id}}) + b"\n" + orjson.dumps(doc)
        for index, doc_id, doc in docs
    ]
    own = [held_feeds(doc) for _index, _doc_id, doc in docs]
    placed, _after = Placement(where).place(client, ids, lines, own)
    resp = client.bulk(operations=b"\n".join(placed) + b"\n", refresh=True)  # type: ignore[arg-type]
    failed = [item["index"] for item in resp["items"] if item["index"].get("error")]
    return len(docs) - len(failed), failed
