"""`newsflow search`: ranked hits with highlights and facets, from the terminal.

The query is pure (``build_query``) and runs against the read alias. Right-to-left snippets are
wrapped in Unicode directional isolates so Arabic/Persian/Hebrew lines render in order next to
left-to-right metadata in a terminal.

Entities (issue 13): ``--entity X`` is resolved by ``resolve_entity`` into the link ids the linker
knows for X in any language (``Syria``, ``Suriye``, ``Сирия``, ``سورية`` -> ``country:SY``), the
matching key of X as a name (Arabic letters and spacing unified: ``علي عبدالله صالح`` and
``علي عبد الله صالح`` have one key) and X as written. An article matches when one of its entity
mentions carries one of them; it is ranked by the sum over its matching mentions (a title mention
weighs 3, a mention below the facet threshold 0.3, times the entity's confidence), so the
articles about X come before those that name it once. A free-text query whose words name a
linked entity (``expand_text``) also matches the entity's other spellings (سوريا finds سورية) and
its id.
"""

from __future__ import annotations

import logging
import lzma
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from streams.settings import ElasticSettings

log = logging.getLogger("newsflow.search")

SEARCH_FIELDS = ["title^2", "title_lang.*^2", "body", "body_lang.*", "summary"]
ENTITY_FIELDS = ("entities.person", "entities.org", "entities.location", "entities.misc")
_SINCE = re.compile(r"^(\d+)([mhdwMy])$")
RLI, PDI = "\u2067", "\u2069"
MARK_OPEN, MARK_CLOSE = "\u00bb", "\u00ab"
# Ranking of entity searches: per matching mention, weight by where it is and whether it passed
# the facet threshold, times the entity's confidence; an article's score is the sum.
TITLE_WEIGHT = 3.0
NON_FACET_WEIGHT = 0.3
MAX_IDS = 5  # ids of one --entity value (lookup ranks them; "Georgia": country and US state)
MAX_VARIANTS = 60  # spellings of one linked name added to a free-text query
MAX_NGRAM = 4  # longest run of query words looked up as one name

Lookup = Callable[[str], Sequence[str]]
Variants = Callable[[str], Iterable[str]]
KeyOf = Callable[[str], str]


@dataclass(frozen=True)
class EntityTarget:
    """What one ``--entity`` value matches: link ids, matching keys, names as written."""

    query: str
    ids: tuple[str, ...] = ()
    keys: tuple[str, ...] = ()
    names: tuple[str, ...] = ()


@dataclass(frozen=True)
class Segment:
    """A run of query words; ``ids``/``variants`` when the run names a linked entity."""

    text: str
    ids: tuple[str, ...] = ()
    variants: tuple[str, ...] = ()


def _linker() -> tuple[Lookup, Variants] | None:
    try:
        from streams.enrich import linking
    except ImportError:  # pragma: no cover - a build without the linker data
        return None
    try:
        if not linking.available():
            return None
        linking.variants("")  # loads the data once, here, where a failure is handled
    except (OSError, ValueError, EOFError, lzma.LZMAError) as exc:  # damaged: names only
        log.warning("entity linker data unreadable (%s); searching names only", exc)
        return None
    return linking.lookup, linking.variants


def _key_of() -> KeyOf:
    from streams.enrich import entities

    return entities.key_of


def resolve_entity(
    value: str, lookup: Lookup | None = None, key_of: KeyOf | None = None
) -> EntityTarget:
    """``--entity value`` -> ids (via the linker), keys and names to match."""
    value = " ".join(value.split())
    if lookup is None:
        linker = _linker()
        lookup = linker[0] if linker else (lambda _q: ())
    key_of = key_of or _key_of()
    ids = tuple(dict.fromkeys(lookup(value)))[:MAX_IDS] if value else ()
    key = key_of(value) if value else ""
    return EntityTarget(
        value,
        ids=ids,
        keys=tuple(dict.fromkeys(k for k in (key, value) if k)),
        names=(value,) if value else (),
    )


def expand_text(
    text: str, lookup: Lookup | None = None, variants: Variants | None = None
) -> list[Segment]:
    """Split a free-text query into runs of words, the longest runs that name a linked entity
    (up to ``MAX_NGRAM`` words) carrying its ids and spellings. No linker: one plain run."""
    words = text.split()
    if lookup is None or variants is None:
        linker = _linker()
        if linker is None:
            return [Segment(" ".join(words))] if words else []
        lookup, variants = linker
    out: list[Segment] = []
    plain: list[str] = []
    i = 0
    while i < len(words):
        for n in range(min(MAX_NGRAM, len(words) - i), 0, -1):
            run = " ".join(words[i : i + n])
            if len(run) < 3 or run.isdigit():
                continue
            ids = tuple(dict.fromkeys(lookup(run)))[:MAX_IDS]
            if ids:
                if plain:
                    out.append(Segment(" ".join(plain)))
                    plain = []
                out.append(Segment(run, ids, _spellings(run, ids, variants)))
                i += n
                break
        else:
            plain.append(words[i])
            i += 1
    if plain:
        out.append(Segment(" ".join(plain)))
    return out


def _script(text: str) -> str | None:
    """The Unicode script word of the first letter (ARABIC, LATIN, CYRILLIC, CJK ...)."""
    for char in text:
        if char.isalpha():
            return unicodedata.name(char, "?").split()[0]
    return None


def _spellings(run: str, ids: Sequence[str], variants: Variants) -> tuple[str, ...]:
    """Other spellings of the linked ids in the script the user typed (سوريا -> سورية, شام):
    other scripts are reached through the id; short foreign forms ("Siri", "FN") would match
    unrelated words, so a spelling needs 4 letters."""
    script = _script(run)
    seen = {run.casefold()}
    out: list[str] = []
    for entity_id in ids:
        for name in sorted(variants(entity_id), key=lambda v: (len(v), v)):
            folded = name.casefold()
            if len(name) >= 4 and folded not in seen and _script(name) == script:
                seen.add(folded)
                out.append(name)
    return tuple(out[:MAX_VARIANTS])


def since_expr(since: str) -> str:
    """'7d' -> 'now-7d' (units m h d w M y); an ISO date passes through."""
    match = _SINCE.match(since.strip())
    if match:
        return f"now-{match.group(1)}{match.group(2)}"
    if re.match(r"^\d{4}-\d{2}-\d{2}", since.strip()):
        return since.strip()
    raise ValueError(f"--since {since!r}: use a span like 30m, 12h, 7d, 2w, 6M, 1y or a date")


def _text_match(text: str, **extra: Any) -> dict[str, Any]:
    return {
        "multi_match": {
            "query": text,
            "fields": SEARCH_FIELDS,
            "type": "most_fields",
            "operator": "and",
            **extra,
        }
    }


def text_query(text: str, segments: Sequence[Segment] = ()) -> dict[str, Any]:
    """All words must match; a run naming a linked entity matches through any of its
    spellings or its id (the words as typed score highest)."""
    if not any(seg.ids for seg in segments):
        return _text_match(text)
    must: list[dict[str, Any]] = []
    for seg in segments:
        if not seg.ids:
            must.append(_text_match(seg.text))
            continue
        should: list[dict[str, Any]] = [_text_match(seg.text)]
        should += [
            {
                "multi_match": {
                    "query": name,
                    "fields": SEARCH_FIELDS,
                    "type": "phrase",
                    "boost": 0.5,
                }
            }
            for name in seg.variants
        ]
        # any mention linked to the id, in any language (facet or not)
        should.append(
            {
                "nested": {
                    "path": "entity_mentions",
                    "query": {"terms": {"entity_mentions.id": list(seg.ids)}},
                    "score_mode": "max",
                    "boost": 0.5,
                }
            }
        )
        must.append({"bool": {"should": should, "minimum_should_match": 1}})
    # The query as typed, as a whole, still ranks the exact wording first.
    return {"bool": {"must": must, "should": [_text_match(text)]}}


def entity_query(targets: Sequence[EntityTarget]) -> dict[str, Any]:
    """Articles with a mention of any target, scored by the sum over matching mentions."""
    ids = sorted({i for t in targets for i in t.ids})
    keys = sorted({k for t in targets for k in t.keys})
    names = sorted({n for t in targets for n in t.names})
    match: list[dict[str, Any]] = []
    if ids:
        match.append({"terms": {"entity_mentions.id": ids}})
    if keys:
        match.append({"terms": {"entity_mentions.key": keys}})
        match.append({"terms": {"entity_mentions.normalized": keys}})  # before contract 1.3
    if names:
        match.append({"terms": {"entity_mentions.name": names}})
    mentions = {
        "nested": {
            "path": "entity_mentions",
            "score_mode": "sum",
            "query": {
                "function_score": {
                    "query": {
                        "constant_score": {
                            "filter": {"bool": {"should": match, "minimum_should_match": 1}}
                        }
                    },
                    "functions": [
                        {
                            "filter": {"term": {"entity_mentions.field": "title"}},
                            "weight": TITLE_WEIGHT,
                        },
                        {
                            "filter": {"term": {"entity_mentions.facet": False}},
                            "weight": NON_FACET_WEIGHT,
                        },
                        {
                            "field_value_factor": {
                                "field": "entity_mentions.confidence",
                                "missing": 1.0,
                            }
                        },
                    ],
                    "score_mode": "multiply",
                    "boost_mode": "replace",
                }
            },
        }
    }
    # Summary fields: ids, and names/keys (documents indexed before 1.3 hold keys there).
    summary: list[dict[str, Any]] = [{"terms": {field: keys + names}} for field in ENTITY_FIELDS]
    if ids:
        summary.append({"terms": {"entity_ids": ids}})
    return {
        "bool": {
            "should": [
                mentions,
                {"constant_score": {"filter": {"bool": {"should": summary}}, "boost": 0.1}},
            ],
            "minimum_should_match": 1,
        }
    }


def build_query(
    text: str | None,
    *,
    lang: str | None = None,
    entity_keys: list[str] | None = None,
    entities: Sequence[EntityTarget] = (),
    segments: Sequence[Segment] = (),
    since: str | None = None,
    feed: str | None = None,
) -> dict[str, Any]:
    """``entities`` (or plain ``entity_keys``) are scored, not filtered: an entity-only search
    is ranked by mentions; ``segments`` (``expand_text``) widen linked names in ``text``."""
    must: list[dict[str, Any]] = []
    filters: list[dict[str, Any]] = []
    if text and text.strip():
        must.append(text_query(text, segments))
    targets = list(entities)
    if entity_keys:
        targets.append(EntityTarget("", keys=tuple(entity_keys), names=tuple(entity_keys)))
    if targets:
        must.append(entity_query(targets))
    if lang:
        filters.append({"term": {"language.code": lang}})
    if since:
        filters.append({"range": {"first_seen_at": {"gte": since_expr(since)}}})
    if feed:
        filters.append({"term": {"feed.id": feed}})
    return {"bool": {"must": must or [{"match_all": {}}], "filter": filters}}


def aggregations(size: int = 8, label_lang: str = "en") -> dict[str, Any]:
    """Facets: names as written per type, and linked places/organisations counted once per link
    id across languages (``linked``, labelled in ``label_lang``)."""
    return {
        "language": {"terms": {"field": "language.code", "size": size}},
        "feed": {"terms": {"field": "feed.id", "size": size}},
        "person": {"terms": {"field": "entities.person", "size": size}},
        "org": {"terms": {"field": "entities.org", "size": size}},
        "location": {"terms": {"field": "entities.location", "size": size}},
        "linked": {"terms": {"field": f"entity_labels.{label_lang}", "size": size}},
    }


def highlight() -> dict[str, Any]:
    return {
        "fields": {"title": {}, "title_lang.*": {}, "body": {}, "body_lang.*": {}, "summary": {}},
        "pre_tags": [MARK_OPEN],
        "post_tags": [MARK_CLOSE],
        "fragment_size": 160,
        "number_of_fragments": 2,
    }


def is_rtl(text: str) -> bool:
    strong = [unicodedata.bidirectional(c) for c in text if c.isalpha()]
    rtl = sum(1 for b in strong if b in ("R", "AL"))
    return bool(strong) and rtl > len(strong) / 2


def readable(text: str) -> str:
    """Collapse whitespace; isolate right-to-left text so it displays in reading order."""
    flat = " ".join(text.split())
    return f"{RLI}{flat}{PDI}" if is_rtl(flat) else flat


def search(
    client: Any,
    settings: ElasticSettings,
    text: str | None,
    *,
    size: int = 10,
    entity: Sequence[str] = (),
    **filters: Any,
) -> dict[str, Any]:
    """Run a search; ``entity`` values are resolved (linker, keys) and linked names in ``text``
    are expanded with their spellings."""
    targets = [resolve_entity(value) for value in entity if value.strip()]
    segments = expand_text(text) if text and text.strip() else []
    resp = client.search(
        index=settings.alias,
        query=build_query(text, entities=targets, segments=segments, **filters),
        size=size,
        highlight=highlight(),
        aggs=aggregations(),
        source_includes=[
            "title",
            "url",
            "language",
            "feed.id",
            "published_at",
            "first_seen_at",
            "entities",
        ],
    )
    out = dict(resp.body if hasattr(resp, "body") else resp)
    # What the query was widened to, for the reader (and --json): ids, keys, linked spellings.
    out["newsflow"] = {
        "entities": [{"query": t.query, "ids": list(t.ids), "keys": list(t.keys)} for t in targets],
        "linked_words": [
            {"words": seg.text, "ids": list(seg.ids), "spellings": len(seg.variants)}
            for seg in segments
            if seg.ids
        ],
    }
    return out


def _plain(snippet: str) -> str:
    return " ".join(snippet.replace(MARK_OPEN, "").replace(MARK_CLOSE, "").split())


def snippets(hit: dict[str, Any], title: str, limit: int = 2) -> list[str]:
    """Each highlighted passage once: title and title_lang.* (or body and body_lang.*) give the
    same text marked by two analyzers; keep the one with the most marks, and none that only
    repeats the title line."""
    best: dict[str, str] = {}
    for field in hit.get("highlight", {}).values():
        for snippet in field:
            plain = _plain(snippet)
            if not plain or plain == _plain(title):
                continue
            if snippet.count(MARK_OPEN) > best.get(plain, "").count(MARK_OPEN):
                best[plain] = snippet
    return list(best.values())[:limit]


def render(resp: dict[str, Any]) -> str:
    """Plain-text hits (score, date, language, feed, title, snippets) and facet counts.

    Entities are shown by their display names (the index's summary fields hold names)."""
    hits = resp["hits"]["hits"]
    lines = []
    resolved = resp.get("newsflow") or {}
    for target in resolved.get("entities", []):
        means = ", ".join(target["ids"]) or "no linked id; by name"
        lines.append(f"entity {readable(target['query'])}: {means}")
    for seg in resolved.get("linked_words", []):
        lines.append(
            f"{readable(seg['words'])}: also {', '.join(seg['ids'])} and "
            f"{seg['spellings']} other spelling(s)"
        )
    lines.append(f"{resp['hits']['total']['value']} hit(s)")
    for rank, hit in enumerate(hits, start=1):
        src = hit["_source"]
        when = (src.get("published_at") or src.get("first_seen_at") or "")[:16]
        lang = (src.get("language") or {}).get("code") or "?"
        feed = (src.get("feed") or {}).get("id") or "?"
        title = src.get("title") or "(no title)"
        lines.append(f"{rank:>2}. [{hit['_score'] or 0:.2f}] {when} {lang} {feed}")
        lines.append(f"    {readable(title)}")
        for snippet in snippets(hit, title):
            lines.append(f"    … {readable(snippet)} …")
        ents = src.get("entities") or {}
        named = [e for kind in ("person", "org", "location") for e in ents.get(kind, [])[:3]]
        if named:
            lines.append(f"    entities: {', '.join(readable(e) for e in named)}")
    for name, agg in (resp.get("aggregations") or {}).items():
        buckets = agg.get("buckets", [])
        if buckets:
            counts = ", ".join(f"{readable(str(b['key']))} {b['doc_count']}" for b in buckets)
            lines.append(f"{name}: {counts}")
    return "\n".join(lines)
