"""Cut what can never be main text out of the parsed page, before trafilatura sees it.

Pure work layer, called by ``core.extract`` after metadata, dates and flags have been read from
the whole tree (they need the ``<script>``, ``<meta>`` and ``<nav>`` parts cut here).

Why: trafilatura copies the tree several times and runs dozens of XPath expressions and
link-density tests over all of it. On a 100-300 KB news page most nodes are boilerplate that it
removes in the end anyway, so its cost is set by the boilerplate, not by the article. Two cuts,
both done in C (XPath, ``strip_elements``) apart from a short loop over a few candidates:

1. ``strip_never_content``: elements that are never article text and that trafilatura also
   deletes (scripts, styles, SVG sprites, forms, ``<nav>``, ``<aside>``...).
2. ``drop_link_farms``: blocks that are nearly all link text (menus in ``<div>``/``<ul>``,
   "most read" lists, site maps, tag clouds, link-heavy footers): the rule trafilatura applies
   to a block it is already looking at (``htmlprocessing.link_density_test``: more than four
   links, link text over 90 % of the text, short link texts, not one link per paragraph),
   here applied to the whole page up front, with three safety margins: at least
   ``MIN_LINKS`` links, almost no text outside the links (``MAX_PROSE`` characters), and
   never when it would leave less than ``MIN_LEFT`` characters of text on the page.
3. ``drop_card_groups``: teaser grids ("top stories", "related", "most read", "more from this
   section"): three or more sibling elements of one kind (same tag, same class words) that are
   each a *card*, i.e. led by a headline link (in a heading, or a link of headline length
   followed by a one-line standfirst) with little text besides. Their standfirsts are prose in
   the page's language, so the link-density rules above and trafilatura's own miss them, and
   when the article is short trafilatura takes a grid of ``<article>`` cards for the article.
   Paragraphs are never cards, nor are blocks with more than ``MAX_DEK`` characters of prose
   (a live-blog post, a comment); links to the page itself (``#...``) are not headlines; items
   that stand among two or more paragraphs of prose are the article's (a listicle, a roundup).
4. ``demote_minor_articles``: trafilatura reads the page's ``<article>`` elements as the
   article; a teaser or two in ``<article>`` before a short story (too few for a grid) end up
   in the text. When one ``<article>`` holds far more prose than the others, those of the others
   that are cards become plain ``<div>`` (kept, only no longer a candidate for "the article").
5. ``drop_ad_slots``: advertising slots (a class or id naming an ad: ``ad-slot``, ``gpt-ad``,
   ``advertisement``, ``adsbygoogle``...) holding at most a label ("Advertisement"). A news page
   carries ten or twenty; trafilatura deletes them too, but only after running its expressions
   over them.
6. ``drop_inserts``: what a CMS puts *inside* the article body that is not its text: pull
   quotes (a pull-quote class, or a quote repeating a sentence found elsewhere on the page),
   pictures with their caption inside a paragraph (``<p><img><br>caption</p>``) and
   "read also" lines (a short paragraph that is one link behind a label, and a label paragraph
   alone before such links).
"""

from __future__ import annotations

import re
from typing import Any, Final

from lxml import etree

__all__ = [
    "demote_minor_articles",
    "drop_ad_slots",
    "drop_card_groups",
    "drop_comment_threads",
    "drop_inserts",
    "drop_link_farms",
    "strip_never_content",
]

# Never main text, always removed by trafilatura too (after a deep copy): dropping them from our
# tree first, in C, halves extraction time on big pages (mega-menus, SVG sprites, JSON state).
_NEVER_CONTENT: Final = (
    "script", "style", "noscript", "template", "svg", "iframe", "nav", "aside", "form",
    "select", "button", "input", "textarea", "link", "meta", "object", "embed", "canvas",
    "video", "audio", "picture", "menu",
)  # fmt: skip

MIN_LINKS: Final = 10  # smaller link lists cost trafilatura little; it judges them itself
LINK_SHARE: Final = 0.9  # trafilatura's LINK_FARM_RATIO
MAX_LINK_CHARS: Final = 100  # mean link text at or over this: a listing of cards, not a farm
MAX_PROSE: Final = 120  # characters (not counting spaces) outside links: a block that says more
MIN_LEFT: Final = 200  # a page left with fewer characters of text than this is kept whole
# Links are counted for their six nearest ancestors (ul > li > a, footer > div > div > ul > li > a):
# the page's outer wrappers, which hold the article too, are never farms; counting them cost
# half of this pass. An ancestor further up sees part of its links, so it is judged by less
# link text than it holds: never cut wrongly, at worst not cut.
FARM_DEPTH: Final = 6

# Blocks that may be link farms; the article's own containers are never candidates.
_FARM_TAGS: Final = ("div", "section", "ul", "ol", "dl", "table", "header", "footer", "p", "span",
                     "td", "li")  # fmt: skip
_LINKS: Final = etree.XPath(".//a")


def strip_never_content(tree: Any) -> None:
    etree.strip_elements(tree, *_NEVER_CONTENT, with_tail=False)


def drop_comment_threads(tree: Any) -> int:
    """Reader comment threads, found by trafilatura's own rule for them; returns how many.

    We never extract comments; trafilatura prunes these same containers first thing when
    comments are off. Done here once, the page measure that gates a recall pass no longer
    counts a long comment thread as article text the first pass missed.

    The rule is trafilatura's ``REMOVE_COMMENTS_AND_LISTS_XPATH`` (its patterns imported, so
    they follow the library), tested here in Python: that XPath calls back into Python for
    each ``re:test`` on every block of the page, several milliseconds on a big page.
    """
    from trafilatura.xpaths import _COMMENTS_CLASS, _COMMENTS_ID

    global _COMMENT_RES
    if _COMMENT_RES is None:
        _COMMENT_RES = (
            re.compile(f"^(?:{_COMMENTS_ID}|disqus_thread|dsq-comments)"),
            re.compile(f"^(?:{_COMMENTS_ID})"),
            re.compile(_COMMENTS_CLASS),
        )
    block_id, list_id, cls_re = _COMMENT_RES
    found = []
    for el in tree.iter("div", "section", "details", "ol", "ul"):
        cls = el.get("class")
        if cls is not None and cls_re.search(cls):
            found.append(el)
            continue
        ident = el.get("id")
        if ident is not None:
            id_re = list_id if el.tag in ("ol", "ul") else block_id
            if id_re.search(ident):
                found.append(el)
    for el in found:
        _remove(el)
    return len(found)


_COMMENT_RES: tuple[re.Pattern[str], re.Pattern[str], re.Pattern[str]] | None = None


def _chars(text: str) -> int:
    """Characters other than ASCII whitespace (indentation between tags is not text)."""
    return len(text) - text.count(" ") - text.count("\n") - text.count("\t") - text.count("\r")


def _one_link_per_paragraph(block: Any) -> bool:
    """A document listing (every link alone in its own paragraph): content, as trafilatura says."""
    for link in _LINKS(block):
        parent = link.getparent()
        if parent is None or parent.tag != "p" or len(_LINKS(parent)) > 1:
            return False
    return True


def _is_farm(block: Any, linked: int, links: int) -> bool:
    total = _chars(block.text_content())
    if linked <= LINK_SHARE * total or total - linked > MAX_PROSE:
        return False
    if linked >= MAX_LINK_CHARS * links:
        return False
    return not _one_link_per_paragraph(block)


def _remove(el: Any) -> None:
    """Remove ``el`` and keep its tail (text of the parent that follows it)."""
    parent = el.getparent()
    if parent is None:
        return
    tail = el.tail
    if tail and tail.strip():
        prev = el.getprevious()
        if prev is not None:
            prev.tail = (prev.tail or "") + tail
        else:
            parent.text = (parent.text or "") + tail
    parent.remove(el)


def drop_link_farms(tree: Any) -> int:
    """Remove link-farm blocks (outermost first); returns how many were removed."""
    body = tree.find("body")
    if body is None:
        return 0
    # Links and their text counted up their ancestors once: an XPath ``count(.//a)`` per
    # element is quadratic in the page's depth, and a page's wrappers each held all its links.
    links: dict[Any, list[int]] = {}
    for a in body.iter("a"):
        # most links hold bare text: read it without text_content's XPath call
        chars = _chars(a.text or "") if len(a) == 0 else _chars(a.text_content())
        for depth, up in enumerate(a.iterancestors()):
            if up is body or depth == FARM_DEPTH:
                break
            seen = links.get(up)
            if seen is None:
                links[up] = [1, chars]
            else:
                seen[0] += 1
                seen[1] += chars
    farms: list[Any] = []
    inside: set[Any] = set()
    for block in body.iter(*_FARM_TAGS):
        counted = links.get(block)
        if counted is None or counted[0] < MIN_LINKS:
            continue
        # Document order: a block inside a farm already chosen needs no test of its own.
        if any(up in inside for up in block.iterancestors()):
            continue
        if _is_farm(block, counted[1], counted[0]):
            farms.append(block)
            inside.add(block)
    if not farms:
        return 0
    left = _chars(body.text_content()) - sum(_chars(f.text_content()) for f in farms)
    if left < MIN_LEFT:
        return 0
    for farm in farms:
        parent = farm.getparent()
        if parent is None:
            continue
        # Keep the tail: it is text of the parent that follows the block.
        tail = farm.tail
        prev = farm.getprevious()
        if tail:
            if prev is not None:
                prev.tail = (prev.tail or "") + tail
            else:
                parent.text = (parent.text or "") + tail
        parent.remove(farm)
    return len(farms)


# ------------------------------------------------------------------------------ teaser cards

MIN_CARDS: Final = 3  # siblings of one kind: a grid or a list, not a pair
MIN_HEADLINE: Final = 12  # characters of a headline link (CJK headlines are short)
MAX_DEK: Final = 350  # characters outside links: a standfirst, a kicker, a time; not a post
MIN_LINKED_SHARE: Final = 0.2  # of a card's text that is its links
MAX_LEAD: Final = 40  # characters before the headline (a kicker, a rank, a reading time)
MAX_CARD_LINKS: Final = 8  # image, headline, section, author, comments...: a card has a few
_HEADINGS: Final = frozenset(("h1", "h2", "h3", "h4", "h5", "h6"))
_CARD_TAGS: Final = frozenset(("div", "li", "article", "section", "figure", "dd", "td"))
_PARENTS: Final = etree.XPath(f".//*[count(*) >= {MIN_CARDS}][.//a]")


def _norm(text: str) -> str:
    return " ".join(text.split())


_KINDS: dict[str, frozenset[str]] = {}  # class attribute -> its words that name a kind


def _signature(el: Any) -> tuple[str, frozenset[str]] | None:
    if el.tag not in _CARD_TAGS:
        return None
    cls = el.get("class") or ""
    kind = _KINDS.get(cls)
    if kind is None:
        if len(_KINDS) > 50_000:  # a bound on what a long-lived worker keeps
            _KINDS.clear()
        # "post-123", "item-4": per-item numbers are not a difference of kind
        kind = _KINDS[cls] = frozenset(w for w in cls.split() if not any(c.isdigit() for c in w))
    return el.tag, kind


def _is_card(el: Any) -> bool:
    links = []
    for a in el.iter("a"):  # stops early on a block of many links (a wrapper, a menu)
        links.append(a)
        if len(links) > MAX_CARD_LINKS:
            return False
    if not links:
        return False
    text = _norm(el.text_content())
    if not text:
        return False
    headline, in_heading, linked = "", False, 0
    for a in links:
        if (a.get("href") or "").startswith("#"):
            continue
        words = _norm(a.text if len(a) == 0 and a.text else a.text_content())
        linked += len(words)
        if len(words) > len(headline):
            headline = words
            in_heading = any(up.tag in _HEADINGS for up in a.iterancestors()) or any(
                d.tag in _HEADINGS for d in a.iterdescendants()
            )
    if len(headline) < MIN_HEADLINE:
        return False
    prose = len(text) - linked
    if prose > MAX_DEK or linked < MIN_LINKED_SHARE * len(text):
        return False
    lead = text.find(headline)
    if lead < 0 or lead > MAX_LEAD:
        return False
    return in_heading or prose >= 20


PROSE_PARAGRAPH: Final = 100  # characters of a paragraph that is the article's own text


def _holds_prose(parent: Any) -> bool:
    """Whether ``parent`` has two paragraphs of prose of its own (a grid is a block apart)."""
    found = 0
    for child in parent.iterchildren("p"):
        if _chars(child.text_content()) >= PROSE_PARAGRAPH and not _LINKS(child):
            found += 1
            if found >= 2:
                return True
    return False


def _prune_empty(node: Any) -> None:
    """Remove containers a grid leaves behind empty or holding only its heading."""
    while node is not None and node.tag != "body":
        up = node.getparent()
        # children first: a container still holding text stops here without reading all of it
        if not all(c.tag in _HEADINGS or not _chars(c.text_content()) for c in node):
            break
        if _chars(node.text_content()) < 80:
            prev = node.getprevious()
            _remove(node)
            if prev is not None and prev.tag in _HEADINGS and _chars(prev.text_content()) < 80:
                _remove(prev)
            node = up
            continue
        break


def drop_card_groups(tree: Any) -> int:
    """Remove teaser-card grids; returns how many cards were removed."""
    body = tree.find("body")
    if body is None:
        return 0
    groups: list[list[Any]] = []
    # Groups nested in a group found earlier are tested too (cheaper than testing every
    # parent's ancestors); removing them with it is harmless.
    for parent in _PARENTS(body):
        kinds: dict[tuple[str, frozenset[str]], list[Any]] = {}
        for child in parent:
            sig = _signature(child)
            if sig is not None:
                kinds.setdefault(sig, []).append(child)
        if _holds_prose(parent):
            continue  # items among the article's own paragraphs: a listicle, a roundup
        for members in kinds.values():
            if len(members) >= MIN_CARDS and all(_is_card(m) for m in members):
                groups.append(members)
    if not groups:
        return 0
    total = _chars(body.text_content())
    gone = sum(_chars(m.text_content()) for g in groups for m in g)
    if total - gone < MIN_LEFT:
        return 0
    for members in groups:
        parent = members[0].getparent()
        for m in members:
            _remove(m)
        _prune_empty(parent)
    return sum(len(g) for g in groups)


# ------------------------------------------------------------------------------- ad slots

MAX_AD_LABEL: Final = 30  # characters an ad slot may show ("Advertisement", "Anzeige", "إعلان")
_AD_NAME: Final = re.compile(
    r"(?:^|[\s_-])(?:ads?|advert\w*|adsbygoogle|adslot|adunit|dfp|gpt)(?:$|[\s_-])",
    re.I,
)


def drop_ad_slots(tree: Any) -> int:
    """Remove advertising slots that show no more than a label; returns how many."""
    body = tree.find("body")
    if body is None:
        return 0
    found = []
    for el in body.iter("div", "section", "span", "ins", "figure", "amp-ad"):
        if el.tag != "amp-ad":
            name = f"{el.get('class') or ''} {el.get('id') or ''}"
            low = name.lower()
            # every name the pattern knows holds "ad", "gpt" or "dfp": substring tests first
            if ("ad" not in low and "gpt" not in low and "dfp" not in low) or not _AD_NAME.search(
                name
            ):
                continue
        if _chars(el.text_content()) <= MAX_AD_LABEL and el.find(".//p") is None:
            found.append(el)
    chosen = set(found)
    outer = [el for el in found if not any(up in chosen for up in el.iterancestors())]
    for el in outer:
        _remove(el)
    return len(outer)


# ------------------------------------------------------------------------- minor <article>s

MINOR_SHARE: Final = 0.34  # an <article> with less prose than a third of the biggest one's
MIN_MAJOR: Final = 200  # ... and only when that one is an article's worth of prose (no spaces)


def _prose(el: Any) -> int:
    linked = sum(_chars(a.text_content()) for a in _LINKS(el))
    return _chars(el.text_content()) - linked


def demote_minor_articles(tree: Any) -> int:
    """Rename minor ``<article>`` elements to ``<div>``; returns how many."""
    body = tree.find("body")
    if body is None:
        return 0
    outer = [
        a for a in body.iter("article") if not any(u.tag == "article" for u in a.iterancestors())
    ]
    if len(outer) < 2:
        return 0
    prose = [_prose(a) for a in outer]
    most = max(prose)
    if most < MIN_MAJOR:
        return 0
    demoted = 0
    for el, size in zip(outer, prose, strict=True):
        # Only teasers: a short first story followed by a long one (infinite scroll appends
        # the next story) is the page's article and stays one.
        if size < MINOR_SHARE * most and _is_card(el):
            el.tag = "div"
            demoted += 1
    return demoted


# ------------------------------------------------------------------ inserts inside the body

MAX_INSERT: Final = 200  # characters of a "read also" line
MAX_LABEL: Final = 40  # characters of its label ("Read more:", "Lesen Sie auch:")
_PULL_CLASS: Final = etree.XPath(
    ".//*[contains(@class, 'pullquote') or contains(@class, 'pull-quote')"
    " or contains(@class, 'pullout') or contains(@class, 'pull_quote')]"
)
_QUOTES: Final = etree.XPath(".//blockquote")
_LEAF_BLOCKS: Final = etree.XPath(".//p[a] | .//div[a][not(.//p or .//div)]")
_PICTURE_PARAGRAPHS: Final = etree.XPath(".//p[*[1][self::img]]")
MAX_CAPTION: Final = 120  # characters (no spaces) of a caption under a picture
_LABEL_END: Final = (":", "：", "..", "…", "»")


def _read_also(el: Any) -> bool:
    text = _norm(el.text_content())
    if not text or len(text) > MAX_INSERT:
        return False
    links = [a for a in _LINKS(el) if not (a.get("href") or "").startswith("#")]
    if not links or len(links) > 2:
        return False
    linked = sum(len(_norm(a.text_content())) for a in links)
    return linked >= MIN_HEADLINE and len(text) - linked <= MAX_LABEL


def drop_inserts(tree: Any) -> int:
    """Remove pull quotes and "read also" lines from inside the article; returns how many."""
    body = tree.find("body")
    if body is None:
        return 0
    removed = 0
    for el in _PULL_CLASS(body):
        if el.getparent() is not None:
            _remove(el)
            removed += 1
    page = None
    for quote in _QUOTES(body):
        said = _norm(quote.text_content()).strip("\"'“”«»„ ")
        if len(said) < 30:
            continue
        if page is None:
            page = _norm(body.text_content())
        if page.count(said) >= 2:  # the quote, and the paragraph it repeats
            _remove(quote)
            removed += 1
    for el in _PICTURE_PARAGRAPHS(body):
        # A paragraph that opens with a picture is a figure: what follows is its caption
        # (portals write "<p class=f_center><img><br>caption</p>"); inline icons sit mid-text.
        if not (el.text or "").strip() and _chars(el.text_content()) <= MAX_CAPTION:
            _remove(el)
            removed += 1
    for el in _LEAF_BLOCKS(body):
        if el.getparent() is None or not _read_also(el):
            continue
        prev = el.getprevious()
        _remove(el)
        removed += 1
        if prev is not None and prev.tag == "p" and not _LINKS(prev):
            label = _norm(prev.text_content())
            if label and len(label) <= MAX_LABEL and label.endswith(_LABEL_END):
                _remove(prev)
    return removed
