"""Feed bytes -> ``ParsedFeed``: feed metadata plus normalised ``Item``s. Pure, never raises.

Flow: ``fetch.Fetcher`` gives the body -> ``parse_feed`` -> ``digest`` turns items into
``RawArticle``s for ``news.articles.raw.v1``.

feedparser only ever sees bytes we already hold, wrapped in ``io.BytesIO``: its
``_open_resource`` returns ``.read()`` of anything with a ``read`` method before it looks at URLs
or file names, so it can neither fetch nor open a file. The feed URL goes in as the
``content-location`` response header, which feedparser uses as the base for relative links
(``xml:base`` on top of it for Atom). HTML sanitising and relative-URI rewriting inside HTML
are switched off: ``text.html_to_text`` drops all markup anyway, and that work is most of what
feedparser would spend on HTML-heavy feeds.

Before feedparser runs, the body is made safe and parseable:
- The body is decoded here (``encoding.decode_body``: BOMs, UTF-16/32, EBCDIC, the declared
  charset, detection) and handed over as UTF-8 with a UTF-8 declaration, so feedparser never
  guesses a charset; double-encoded text is repaired per field (``encoding.repair``).
- Items past ``max_items`` are cut from the text before feedparser builds them (``_cap_items``).
- Everything before the root element is removed from the decoded text (``_strip_declarations``),
  so the DOCTYPE goes whatever the prolog's length or the body's encoding, not only its subset.
  A subset can declare
  entities: billion laughs (expat expands them and stops only at its amplification limit: a
  one-line variant, which feedparser's own line-based entity filter misses, cost 2.6 s and
  60 MB) and external entities such as ``file:///etc/passwd`` (not loaded with feedparser's
  expat settings, but once the declarations are gone no setting can matter). An external DTD
  is never loaded either, and expat then *silently skips* references to the entities it would
  define (``Caf&eacute;`` in a Netscape RSS 0.91 feed became "Caf"); without the DOCTYPE such
  a reference is an error, and feedparser's loose parser resolves HTML entities instead. The
  warning "entity_declarations_removed" says when declarations were thrown away.
- Numeric character references to code points XML forbids (surrogates, NUL, U+FFFE) become
  U+FFFD; ``&#xD800;`` otherwise makes feedparser's loose parser raise ``UnicodeEncodeError``.

GUIDs: feedparser resolves a GUID that is a permalink (``isPermaLink`` absent or "true")
against the feed URL like a link, so ``<guid>123</guid>`` arrives as ``https://feed.host/123``;
such an item gets that URL. Only ``isPermaLink="false"`` GUIDs and non-http ids (``urn:``,
``tag:``) are kept verbatim and become ``guid:<guid>`` keys.
"""

from __future__ import annotations

import hashlib
import io
import re
from collections import deque
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import feedparser

from connectors.rss import identity
from connectors.rss.dates import DateReader
from connectors.rss.encoding import decode_body, repair
from connectors.rss.text import (
    clean_short,
    clean_short_cut,
    html_to_text,
    html_to_text_cut,
    truncate_text,
)
from connectors.rss.types import FeedMeta, Item, ParsedFeed, ParseLimits
from connectors.rss.urls import canonical_url, item_key
from streams.schema.ids import article_id
from streams.schema.models import Enclosure

_DEFAULT_LIMITS = ParseLimits()
# feedparser's FeedParserDict.get goes through an alias table, raises and catches KeyError on
# every miss, and maps "updated" to "published" (with a DeprecationWarning) when "updated" is
# absent, which would count one date twice. The plain dict lookup is exact and several times
# faster.
_get = dict.get
_WARNING_CHARS = 200
# Lengths beyond what Elasticsearch's `long` holds are not sizes anyone means.
_MAX_LENGTH = 2**63 - 1

# --- body preparation (bytes level) ---------------------------------------------------------

_NOT_EMPTY = re.compile(rb"[^\s\x00\xef\xbb\xbf\xfe\xff]")
# The prolog: whitespace, PIs, comments and a DOCTYPE (internal subset with quoted strings,
# comments and PIs in it), as many as there are; possessive quantifiers keep a malformed one
# from costing more than a linear scan.
_PROLOG = re.compile(
    r"""(?:\s++|<\?.*?\?>|<!--.*?-->"""
    r"""|<!DOCTYPE\b(?:[^\["'>]++|"[^"]*+"|'[^']*+')*+"""
    r"""(?:\[(?:[^\]"'<]++|"[^"]*+"|'[^']*+'|<!--.*?-->|<\?.*?\?>|<)*+\])?\s*+>)*+""",
    re.DOTALL,
)
_ROOT_START = re.compile(r"<[^\W\d]")
_ENTITY = re.compile(r"<!ENTITY\b", re.IGNORECASE)
# Item/entry start tags (any namespace prefix), for the cap applied before feedparser runs.
_ITEM_START = re.compile(r"<(?:[A-Za-z_][\w.-]*:)?(?:item|entry)[\s/>]")
_ITEM_END = re.compile(r"</(?:[A-Za-z_][\w.-]*:)?(?:item|entry)\s*>")
_UTF8_DECL = '<?xml version="1.0" encoding="utf-8"?>\n'
# Numeric character references; which ones are invalid is decided in Python (ranges).
_CHAR_REF = re.compile(r"&#(?:[xX]([0-9A-Fa-f]++)|([0-9]++));")

# --- feed metadata ---------------------------------------------------------------------------

_SKIP_BLOCK = re.compile(
    rb"<(skipHours|skipDays)\b[^>]{0,200}>(.{0,4096}?)</\1\s*>", re.DOTALL | re.IGNORECASE
)
_HOUR = re.compile(rb"<hour\b[^>]{0,200}>\s*(\d{1,2})\s*</hour\s*>", re.IGNORECASE)
_DAY = re.compile(rb"<day\b[^>]{0,200}>\s*([A-Za-z]{3,12})\s*</day\s*>", re.IGNORECASE)
_DAYS = {
    name: i
    for i, name in enumerate(
        ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")
    )
}
_PERIOD_S = {
    "hourly": 3600,
    "daily": 86400,
    "weekly": 7 * 86400,
    "monthly": 30 * 86400,
    "yearly": 365 * 86400,
}
# URL schemes that, in a permalink GUID, are a (bad) link rather than an opaque id.
_LINK_LIKE_SCHEMES = ("javascript:", "vbscript:", "data:", "file:", "ftp:", "mailto:")


def _short(text: str, limit: int = _WARNING_CHARS) -> str:
    return " ".join(text.split())[:limit]


def _strip_declarations(text: str, warnings: list[str]) -> str:
    """``text`` without anything before its root element.

    Works on decoded text, so neither a long prolog, nor UTF-16 or EBCDIC, nor a malformed
    DOCTYPE gets a declaration past it: everything before the first element start is dropped
    (the caller writes a fresh XML declaration). A DOCTYPE after the root is not XML (expat
    refuses it) and feedparser's own entity filter reads only what precedes the first element,
    which is now nothing.
    """
    prolog = _PROLOG.match(text)  # `(...)*+` matches everywhere, if only the empty string
    prolog_end = prolog.end() if prolog is not None else 0
    root = _ROOT_START.search(text, prolog_end)
    start = root.start() if root is not None else prolog_end
    head, rest = text[:start], text[start:]
    if _ENTITY.search(head):
        warnings.append("entity_declarations_removed")
    elif "<!DOCTYPE" in head and "[" in head:
        warnings.append("doctype_internal_subset_removed")
    return rest


def _cap_items(text: str, max_items: int) -> tuple[str, int]:
    """``text`` without the items after the first ``max_items``, and how many were cut.

    feedparser builds every entry before the caller can cap them: a feed of a million tiny
    entries took 31 s and 780 MB. Here the document is cut at the start of the first item
    over the cap and continues after the last item's end tag, so the closing tags (and
    anything after the items) are kept and the document stays well-formed.
    """
    if max_items < 0:
        return text, 0
    starts = _ITEM_START.finditer(text)
    cut_at = None
    for n, match in enumerate(starts):
        if n == max_items:
            cut_at = match.start()
            break
    if cut_at is None:
        return text, 0
    over = 1 + sum(1 for _ in starts)
    # The last end tag: searched near the end first, the slow way only when it is further back.
    last = deque(_ITEM_END.finditer(text, max(cut_at, len(text) - 65536)), maxlen=1)
    if not last:
        last = deque(_ITEM_END.finditer(text, cut_at), maxlen=1)
    rest = text[last[0].end() :] if last else ""
    return text[:cut_at] + rest, over


def _valid_xml_char(code: int) -> bool:
    return (
        code in (0x9, 0xA, 0xD)
        or 0x20 <= code <= 0xD7FF
        or 0xE000 <= code <= 0xFFFD
        or 0x10000 <= code <= 0x10FFFF
    )


def _replace_invalid_refs(text: str, warnings: list[str]) -> str:
    if "&#" not in text:
        return text
    replaced = 0

    def fix(match: re.Match[str]) -> str:
        nonlocal replaced
        hex_digits, dec_digits = match.group(1), match.group(2)
        digits = hex_digits if hex_digits is not None else dec_digits
        valid = len(digits) <= 12 and _valid_xml_char(int(digits, 16 if hex_digits else 10))
        if valid:
            return match.group()
        replaced += 1
        return "&#xFFFD;"

    text = _CHAR_REF.sub(fix, text)
    if replaced:
        warnings.append(f"invalid_char_refs_replaced: {replaced}")
    return text


def _prepare(
    body: bytes,
    content_type: str | None,
    out: ParsedFeed,
    language: str | None,
    limits: ParseLimits,
) -> tuple[bytes, str] | None:
    """UTF-8 bytes with nothing declared before the root and at most ``max_items`` items, and
    their content type; None when the body is in no character set that fits (``encoding``)."""
    warnings = out.warnings
    decoded = decode_body(body, content_type, language)
    warnings.extend(decoded.warnings)
    if decoded.text is None:
        return None
    text = _strip_declarations(decoded.text, warnings)
    text, over = _cap_items(text, limits.max_items)
    if over:
        out.dropped["over_max_items"] += over
    text = _replace_invalid_refs(text, warnings)
    media = (content_type or "application/xml").split(";", 1)[0].strip() or "application/xml"
    return (_UTF8_DECL + text).encode("utf-8", "replace"), f"{media}; charset=utf-8"


# --- feed metadata ---------------------------------------------------------------------------


def _positive_int(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 9:
        return None
    number = int(value)
    return number if number > 0 else None


def _skip_lists(body: bytes) -> tuple[frozenset[int], frozenset[int]]:
    # feedparser keeps only the last <hour>/<day> of these lists, so read them from the bytes.
    hours: set[int] = set()
    days: set[int] = set()
    for block in _SKIP_BLOCK.finditer(body):
        if block.group(1).lower() == b"skiphours":
            for hour in _HOUR.findall(block.group(2)):
                value = int(hour)
                if 0 <= value <= 24:
                    hours.add(value % 24)  # RSS 2.0 allows 24 for midnight
        else:
            for name in _DAY.findall(block.group(2)):
                day = _DAYS.get(name.decode("ascii").lower())
                if day is not None:
                    days.add(day)
    return frozenset(hours), frozenset(days)


def _meta(feed: dict[str, Any], body: bytes, base_url: str, limits: ParseLimits) -> FeedMeta:
    title = html_to_text(_get(feed, "title") or "", limits.max_title_chars) or None
    link = canonical_url(_get(feed, "link"), base_url or None, max_chars=limits.max_url_chars)
    language = clean_short(_get(feed, "language"), limits.max_short_chars)
    ttl = _positive_int(_get(feed, "ttl"))
    update_period_s = None
    period_raw, frequency_raw = _get(feed, "sy_updateperiod"), _get(feed, "sy_updatefrequency")
    if period_raw is not None or frequency_raw is not None:
        # The syndication module's defaults: "daily", once.
        period = _PERIOD_S.get(str(period_raw or "daily").strip().lower())
        frequency = _positive_int(frequency_raw) or 1
        if period is not None:
            update_period_s = max(1, period // frequency)
    skip_hours: frozenset[int] = frozenset()
    skip_days: frozenset[int] = frozenset()
    if "skiphours" in feed or "skipdays" in feed:
        skip_hours, skip_days = _skip_lists(body)
    return FeedMeta(
        title=title,
        link=link,
        language=language,
        ttl_s=ttl * 60 if ttl else None,
        update_period_s=update_period_s,
        skip_hours=skip_hours,
        skip_days=skip_days,
    )


# --- entries ---------------------------------------------------------------------------------


class _Drop(Exception):
    """An entry that cannot become an Item; ``reason`` is the ``dropped`` counter key."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def _link_and_guid(
    entry: dict[str, Any], base_url: str | None, limits: ParseLimits
) -> tuple[str, str | None, str | None]:
    """(canonical url or "", guid for the record, full guid for the key)."""
    raw_guid = _get(entry, "id")
    guid = raw_guid.strip() if isinstance(raw_guid, str) else ""
    saw_link = False
    for link in _get(entry, "links") or ():
        if _get(link, "rel", "alternate") != "alternate" or not _get(link, "href"):
            continue
        saw_link = True
        url = canonical_url(link["href"], base_url, max_chars=limits.max_url_chars)
        if url:
            return url, guid[: limits.max_short_chars] or None, guid or None
    permalink_guid = bool(_get(entry, "guidislink"))
    if guid and (permalink_guid or saw_link):
        # With no link elements, feedparser's guidislink is exactly isPermaLink; when there
        # were only unusable links an absolute http GUID is the best address left either way.
        # No base here: feedparser already resolved permalink GUIDs (xml:base included), and a
        # non-permalink GUID such as "post-1" is an id, not a relative URL.
        url = canonical_url(guid, None, max_chars=limits.max_url_chars)
        if url:
            return url, guid[: limits.max_short_chars], guid
        if permalink_guid and guid.lower().startswith(_LINK_LIKE_SCHEMES):
            saw_link = True
    if saw_link:
        raise _Drop("link_not_http")
    if not guid:
        raise _Drop("no_link")
    return "", guid[: limits.max_short_chars], guid


def _published(
    entry: dict[str, Any], now: datetime, dates: DateReader
) -> tuple[datetime | None, str | None]:
    problem: str | None = None
    for raw_key in ("published", "updated"):
        raw = _get(entry, raw_key)
        if not raw or not isinstance(raw, str):
            continue
        stamp, note = dates.read(raw, now)
        if stamp is not None:
            return stamp, None
        problem = problem or note
    return None, problem


def _enclosures(
    entry: dict[str, Any], base_url: str | None, limits: ParseLimits, cuts: set[str]
) -> tuple[Enclosure, ...]:
    candidates: list[tuple[object, object, object]] = [
        (_get(link, "href"), _get(link, "type"), _get(link, "length"))
        for link in _get(entry, "links") or ()
        if _get(link, "rel") == "enclosure"
    ]
    candidates.extend(
        (_get(media, "url"), _get(media, "type"), _get(media, "filesize") or _get(media, "length"))
        for media in _get(entry, "media_content") or ()
    )
    found: dict[str, Enclosure] = {}
    for href, mime, length in candidates:
        if len(found) >= limits.max_enclosures:
            cuts.add("enclosures")
            break
        if not isinstance(href, str):
            continue
        # Checked and canonicalised like links (http/https with a valid host, length bound,
        # escapes normalised): the media URL goes into the index and onto screens too.
        url = canonical_url(href, base_url, max_chars=limits.max_url_chars)
        if url is None or url in found:
            continue
        found[url] = Enclosure(
            url=url, type=clean_short(mime, limits.max_short_chars), length=_length(length)
        )
    return tuple(found.values())


def _length(value: object) -> int | None:
    if not isinstance(value, str):
        return None
    value = value.strip()
    if not value.isdigit() or len(value) > 19:
        return None
    number = int(value)
    return number if number <= _MAX_LENGTH else None


def _names(
    values: Iterable[object], cap: int, limits: ParseLimits, cuts: set[str], what: str
) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if len(seen) >= cap:
            if clean_short(value, limits.max_short_chars):
                cuts.add(what)  # one more name than the cap keeps: a cut list
                break
            continue
        name, cut = clean_short_cut(value, limits.max_short_chars)
        if cut:
            cuts.add(what)
        if name:
            seen.setdefault(repair(name), None)
    return tuple(seen)


def _entry_language(
    entry: dict[str, Any], feed_language: str | None, limits: ParseLimits
) -> str | None:
    declared = _get(entry, "language")
    if not declared:
        for key in ("title_detail", "summary_detail"):
            detail = _get(entry, key)
            if detail and _get(detail, "language"):
                declared = detail["language"]
                break
    return clean_short(declared, limits.max_short_chars) or feed_language


def _longest_content(entry: dict[str, Any]) -> str:
    longest = ""
    for part in _get(entry, "content") or ():
        value = _get(part, "value")
        if isinstance(value, str) and len(value) > len(longest):
            longest = value
    return longest


def content_hash(title: str, summary: str, content: str | None) -> str:
    """32 hex chars of SHA-256 over title, summary and content (a change re-emits the item)."""
    joined = "\x1f".join((title, summary, content or ""))
    return hashlib.sha256(joined.encode("utf-8")).hexdigest()[:32]


def _item(
    entry: dict[str, Any],
    base_url: str | None,
    now: datetime,
    feed_language: str | None,
    limits: ParseLimits,
    dates: DateReader,
    text_language: str | None = None,
) -> Item:
    url, guid, key_guid = _link_and_guid(entry, base_url, limits)
    key = item_key(url, key_guid)
    if key is None:  # unreachable: _link_and_guid raises first; kept for the type checker
        raise _Drop("no_link")
    cuts: set[str] = set()

    def text(raw: str, cap: int, what: str) -> str:
        value, cut = html_to_text_cut(raw, cap)
        if cut:
            cuts.add(what)
        return repair(value, text_language)

    if key_guid is not None and len(key_guid) > limits.max_short_chars:
        cuts.add("guid")
    title = text(_get(entry, "title") or "", limits.max_title_chars, "title")
    raw_summary = _get(entry, "summary") or ""
    raw_content = _longest_content(entry)
    content: str | None = None
    if raw_content and raw_content == raw_summary:
        # feedparser copies content:encoded into summary when there is no description: clean
        # it once; content only holds what the summary cap cut off (not a cut: nothing lost).
        full = text(raw_content, limits.max_content_chars, "content")
        summary = truncate_text(full, limits.max_summary_chars)
        content = full if len(full) > len(summary) else None
    else:
        summary = text(raw_summary, limits.max_summary_chars, "summary")
        if raw_content:
            content = text(raw_content, limits.max_content_chars, "content")
            if not content or content == summary:
                content = None
    published_at, note = _published(entry, now, dates)
    authors = _get(entry, "authors") or ()
    author_names: list[object] = [_get(a, "name") for a in authors if isinstance(a, dict)]
    if not any(author_names) and _get(entry, "author"):
        author_names = [_get(entry, "author")]
    names = _names(author_names, limits.max_authors, limits, cuts, "authors")
    categories = _names(
        (
            _get(t, "term") or _get(t, "label")
            for t in _get(entry, "tags") or ()
            if isinstance(t, dict)
        ),
        limits.max_categories,
        limits,
        cuts,
        "categories",
    )
    enclosures = _enclosures(entry, base_url, limits, cuts)
    return Item(
        article_id=article_id(key),
        url=url,
        guid=guid,
        title=title,
        summary=summary,
        content=content,
        authors=names,
        categories=categories,
        enclosures=enclosures,
        published_at=published_at,
        published_at_note=note,
        language=_entry_language(entry, feed_language, limits),
        content_hash=content_hash(title, summary, content),
        truncated=tuple(sorted(cuts)),
    )


# --- entry point -----------------------------------------------------------------------------


def parse_feed(
    body: bytes,
    *,
    base_url: str,
    now: datetime,
    content_type: str | None = None,
    limits: ParseLimits = _DEFAULT_LIMITS,
    language: str | None = None,
) -> ParsedFeed:
    """Parse one fetched body. Never raises: failures land in ``error``/``warnings``/``dropped``.

    ``error`` is "empty_body" or "not_a_feed" when there is nothing to parse, or
    "parse_failed" when the parser itself crashed; a valid feed without items is not an error.
    ``language`` is the operator's hint from the feed list (it beats the feed's own, which is
    often a CMS default); it helps read localised dates.
    """
    out = ParsedFeed(meta=FeedMeta(), items=[])
    try:
        _parse_into(out, body, base_url, now, content_type, limits, language)
    except Exception as exc:  # noqa: BLE001 - the contract: whatever happens, the caller gets a result
        out.error = out.error or "parse_failed"
        out.warnings.append(f"parse_failed: {type(exc).__name__}: {_short(str(exc))}")
    return out


def _parse_into(
    out: ParsedFeed,
    body: bytes,
    base_url: str,
    now: datetime,
    content_type: str | None,
    limits: ParseLimits,
    language: str | None = None,
) -> None:
    if not body or _NOT_EMPTY.search(body) is None:
        out.error = "empty_body"
        return
    if now.tzinfo is None:
        now = now.replace(tzinfo=UTC)
    prepared = _prepare(body, content_type, out, language, limits)
    if prepared is None:
        out.error = "undecodable"
        return
    body, ctype = prepared
    result = feedparser.parse(
        io.BytesIO(body),
        response_headers={"content-type": ctype},
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    if result.get("bozo"):
        out.bozo = True
        exc = result.get("bozo_exception")
        out.warnings.append(f"bozo: {type(exc).__name__}: {_short(str(exc))}")
    entries = _get(result, "entries") or []
    if not result.get("version") and not entries:
        out.error = "not_a_feed"
        return
    out.meta = _meta(_get(result, "feed") or {}, body, base_url, limits)
    base = base_url or None
    text_language = language or out.meta.language
    dates = DateReader(text_language)
    if len(entries) > limits.max_items:
        out.dropped["over_max_items"] += len(entries) - limits.max_items
        entries = entries[: limits.max_items]
    parsed: list[tuple[Item, dict[str, Any]]] = []
    for entry in entries:
        try:
            item = _item(entry, base, now, out.meta.language, limits, dates, text_language)
        except _Drop as drop:
            out.dropped[drop.reason] += 1
            continue
        except Exception as exc:  # noqa: BLE001 - one broken entry must not cost the others
            out.dropped["entry_error"] += 1
            out.warnings.append(f"entry_error: {type(exc).__name__}: {_short(str(exc))}")
            continue
        parsed.append((item, entry))
    # Identity from link AND guid (issue 14.3): see connectors.rss.identity.
    out.items, duplicates, out.alt_keys = identity.resolve(parsed)
    if duplicates:
        out.dropped["duplicate_in_feed"] += duplicates
