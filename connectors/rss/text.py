"""HTML (or plain text) from a feed -> clean plain text for the ``RawArticle`` record.

Flow: ``parse.parse_feed`` runs every title, summary, content, author and category through
``html_to_text`` before it builds an ``Item``. The record carries no HTML at all, so scripts,
event handlers and ``javascript:`` URLs cannot survive into Kafka, Elasticsearch or Kibana.

Regex based, by measurement (issue 14 asks for a library unless a measurement shows why not;
warm, 2 busy cores, a 5 KB French HTML summary / a short title): the markup step here took
593 us / 4 us and all of html_to_text 715 us / 10 us, while lxml building the fragment's tree
and walking it for the same text (block tags as line breaks, script/style bodies dropped)
took 997 us / 43 us, parse + text_content alone 495 us / 47 us without any of that, and
nh3.clean(tags=set()) 748 us on the summary (and it returns HTML-escaped text, a further pass).
Titles are most of the calls, so a library costs 1.4x on summaries and 4x on titles.
What makes the regexes safe:
possessive quantifiers (no catastrophic backtracking), input far longer than the cap cut
before any work, and a last pass that removes tags until none is left (``_no_tags``): the
output holds no tag at all, whatever the nesting (``<<b>img onerror=...>``) or escaping
(``&amp;lt;image onerror=...&amp;gt;``, ``image`` being an alias browsers read as ``img``).
"""

from __future__ import annotations

import html
import re
import unicodedata

# Elements whose content is never text a reader sees. An unclosed one swallows the rest of the
# input, as it would in a browser (better to lose text than to leak script source).
_DROP_BLOCKS = re.compile(
    r"<!--.*?(?:-->|\Z)"
    r"|<(script|style|noscript|iframe|object|template|svg|head|textarea|select)\b"
    r".*?(?:</\1\s*>|\Z)",
    re.IGNORECASE | re.DOTALL,
)
# The second pass (markup that appeared only after unescaping) drops code blocks only: text
# about "<select>" or "<template>" elements is common enough, script bodies must still go.
_DROP_CODE = re.compile(
    r"<!--.*?(?:-->|\Z)|<(script|style)\b.*?(?:</\1\s*>|\Z)", re.IGNORECASE | re.DOTALL
)
# A tag's attributes, quotes respected, so that ">" inside a quoted value does not end the tag
# (otherwise `<img alt="a>b" onerror="...">` would leave the handler behind as text). Outside
# quotes a "<" ends the attempt: without that, text like "<a <a <a ..." with no ">" would make
# every "<" scan to the end of the input (quadratic; 300 kB took 80 s).
_ATTRS = r"""(?:[^<>"']++|"[^"]*+"|'[^']*+')*+"""
# Block-level elements: opening and closing tags become line breaks (so paragraphs end up
# separated by one blank line).
_BLOCK_TAGS = frozenset(
    (  # noqa: SIM905 - one word list reads better than 40 one-word lines
        "address article aside blockquote center details dialog div dl fieldset figcaption figure"
        " footer form h1 h2 h3 h4 h5 h6 header hr main nav ol p pre section summary table tbody"
        " tfoot thead ul"
    ).split()
)
# Line-level elements: only the opening tag breaks (list items, rows: one per line).
_LINE_TAGS = frozenset(("br", "li", "tr", "dt", "dd", "option"))
_CELL_TAGS = frozenset(("td", "th"))
# One pass over all tags; the replacement depends on the tag name (block -> line break, table
# cell -> space, anything else -> nothing). Groups 1 and 2 hold the name when there is one.
_TAG = re.compile(
    rf"</?([A-Za-z][^\s/>]*+){_ATTRS}>"  # a well-formed tag
    r"|<[!?][^>]*+>"  # doctype, CDATA marker, processing instruction
    r"|</?([A-Za-z][^\s/>]*+)[^<>]*+>"  # unbalanced quotes: up to the next ">"
    # A tag cut off at the end of the input, recognised by an attribute assignment so that
    # plain text such as "x<y then" is left alone.
    r"|<[A-Za-z][\w:-]*+\s++[^\s=<>]++\s*+=[^<>]*+\Z"
)
_TAG_START = re.compile(r"<[A-Za-z/!?]")


def _chars(*ranges: tuple[int, int]) -> str:
    return "".join(chr(c) for first, last in ranges for c in range(first, last + 1))


# C0/C1 controls (tab and line breaks are whitespace, below), DEL, the byte-order mark used as
# a zero-width no-break space, noncharacters, and the two bidi *override* controls: LRO/RLO
# reverse the display of the text after them (spoofing), while the marks and joiners that
# Arabic and Persian need (LRM U+200E, RLM U+200F, ALM U+061C, ZWNJ U+200C, ZWJ U+200D) and the
# embedding/isolate controls used for mixed-direction titles are kept.
_JUNK = _chars((0x00, 0x08), (0x0E, 0x1F), (0x7F, 0x84), (0x86, 0x9F), (0x202D, 0x202E))
_JUNK += _chars((0xFEFF, 0xFEFF), (0xFFFE, 0xFFFF))
# Line breaks other than \n, and horizontal whitespace other than " " (tab, no-break and the
# other Unicode spaces).
_BREAKS = "\r\x0b\x0c\x85\u2028\u2029"
_ODD_SPACES = "\t\xa0\u1680\u202f\u205f\u3000" + _chars((0x2000, 0x200A))
_ODD_CHAR_REPLACEMENT = (
    dict.fromkeys(_JUNK, "") | dict.fromkeys(_BREAKS, "\n") | dict.fromkeys(_ODD_SPACES, " ")
)
# One character class for all of them, replaced through the table: a single class lets the
# regex engine skip ahead, where alternations (or `[^\S\n]+`) try every position and run
# several times slower.
_ODD_CHAR = re.compile("[" + re.escape("".join(_ODD_CHAR_REPLACEMENT)) + "]")
_SPACES = re.compile("  +")
_BLANK_LINES = re.compile(r"\n{3,}")

# Input longer than this multiple of the cap is cut before processing: markup rarely takes more
# than a few bytes per visible character, and a 5 MB title must not cost 5 MB of regex work.
_RAW_FACTOR = 16
_RAW_SLACK = 65536
# A cut at a word boundary gives back at most half the cap and at most this many characters
# (no word is longer); without a space that close, the text is cut hard (Thai and Chinese have
# no spaces between words).
_MAX_GIVE_BACK = 200


def _replace_odd_char(match: re.Match[str]) -> str:
    return _ODD_CHAR_REPLACEMENT[match.group()]


def _tag_replacement(match: re.Match[str]) -> str:
    name = match.group(1) or match.group(2)
    if name:
        name = name.lower()
        if name in _BLOCK_TAGS:
            return "\n"
        if name in _LINE_TAGS:
            return "" if match.group().startswith("</") else "\n"
        if name in _CELL_TAGS:
            return " "
    return ""


_MAX_TAG_ROUNDS = 2
_LEFT_TAG_START = re.compile(r"<(?=[A-Za-z/!?])")


_DANGLING = re.compile(r"(?<!<)<++(?=[/!?])")


def _no_tags(s: str) -> str:
    """``s`` with tags removed until none is left (a removal can join "<" to a tag name).

    "</", "<!" and "<?" never stay either: they are not text anyone writes, and left
    dangling at the end they would swallow the markup a page puts after the text.
    """
    for _ in range(_MAX_TAG_ROUNDS):
        if "<" not in s:
            return s
        s, removed = _TAG.subn(_tag_replacement, s)
        if not removed:
            break
    else:
        # Still nested deeper: no "<" may start a tag any more.
        return _LEFT_TAG_START.sub("", s)
    return _DANGLING.sub("", s) if "<" in s else s


def _strip_markup(s: str) -> str:
    return _TAG.sub(_tag_replacement, _DROP_BLOCKS.sub("", s))


def truncate_text(s: str, max_chars: int) -> str:
    """``s`` cut to at most ``max_chars``, at a word boundary when one is near the cap."""
    if len(s) <= max_chars:
        return s
    if max_chars <= 0:
        return ""
    head = s[:max_chars]
    if s[max_chars] in " \n":  # the cap falls on a word boundary
        return head.rstrip()
    space = max(head.rfind(" "), head.rfind("\n"))
    if space > 0 and max_chars - space <= min(max_chars // 2, _MAX_GIVE_BACK):
        return head[:space].rstrip()
    # Do not separate a base letter from its combining marks (Arabic harakat, Indic signs).
    end = max_chars
    while end > 0 and unicodedata.combining(s[end]):
        end -= 1
    return s[:end].rstrip() if end > 0 else head


def html_to_text(s: str, max_chars: int) -> str:
    """Visible text of an HTML fragment (or plain text), whitespace-normalised, <= max_chars.

    Drops script/style/... contents and comments, turns block tags and ``<br>`` into line
    breaks, strips every tag, unescapes entities, NFC-normalises, removes control characters
    and display-reversing bidi overrides, collapses whitespace (at most one blank line), trims,
    and cuts at a word boundary when one is near the cap.
    """
    return html_to_text_cut(s, max_chars)[0]


def html_to_text_cut(s: str, max_chars: int) -> tuple[str, bool]:
    """``html_to_text`` and whether anything was cut off (the input, or the text at the cap)."""
    if not s:
        return "", False
    if max_chars <= 0:
        return "", True
    # Cut first, before any work whose cost (or memory: str.split of a 50 MB title made
    # 1.5 GB of little strings) grows with the input.
    limit = max_chars * _RAW_FACTOR + _RAW_SLACK
    cut = len(s) > limit
    if cut:
        s = s[:limit]
    if s.isascii() and s.isprintable() and "<" not in s and "&" not in s:
        # Plain single-line ASCII (most titles): only whitespace to collapse.
        s = " ".join(s.split())
        return truncate_text(s, max_chars), cut or len(s) > max_chars
    if "<" in s:
        s = _strip_markup(s)
    if "&" in s:
        s = html.unescape(s)
        # Double-escaped markup (`&amp;lt;p&amp;gt;`, common in RSS descriptions) is markup once
        # unescaped: strip it once more, whatever the tag name (an allow-list of HTML names let
        # `<image src=x onerror=...>` through; browsers read it as <img>). Escaped deeper it
        # stays as literal text ("&lt;b&gt;"), which no HTML reader takes for a tag.
        if "<" in s and _TAG_START.search(s):
            s = _DROP_CODE.sub("", s)
    if "<" in s:
        s = _no_tags(s)
    if not s.isascii():
        s = unicodedata.normalize("NFC", s)
    if "\r\n" in s:
        s = s.replace("\r\n", "\n")
    length = len(s)
    s = _ODD_CHAR.sub(_replace_odd_char, s)
    junk_removed = len(s) != length
    if "  " in s:
        s = _SPACES.sub(" ", s)
    if "\n" in s:
        s = s.replace(" \n", "\n").replace("\n ", "\n")
        if "\n\n\n" in s:
            s = _BLANK_LINES.sub("\n\n", s)
    s = s.strip()
    if junk_removed and "<" in s:  # "<\x00img ...>": removing a control can form a tag
        s = _no_tags(s)
    return truncate_text(s, max_chars), cut or len(s) > max_chars


def clean_short(s: object, max_chars: int) -> str | None:
    """A short field (author, category, language, MIME type) as one line of text, or None."""
    return clean_short_cut(s, max_chars)[0]


def clean_short_cut(s: object, max_chars: int) -> tuple[str | None, bool]:
    """``clean_short`` and whether the value was cut at ``max_chars``."""
    if not isinstance(s, str) or not s:
        return None, False
    text, cut = html_to_text_cut(s, max_chars)
    if "\n" in text:
        text = " ".join(text.split())
    return text or None, cut
