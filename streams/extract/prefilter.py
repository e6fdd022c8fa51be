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
"""

from __future__ import annotations

from typing import Any, Final

from lxml import etree

__all__ = ["drop_comment_threads", "drop_link_farms", "strip_never_content"]

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

# Blocks with many links; the article's own containers are never candidates.
_CANDIDATES: Final = etree.XPath(
    f".//*[self::div or self::section or self::ul or self::ol or self::dl or self::table"
    f" or self::header or self::footer or self::p or self::span or self::td or self::li]"
    f"[count(.//a) >= {MIN_LINKS}]"
)
_LINK_TEXT: Final = etree.XPath(".//a//text()")
_LINKS: Final = etree.XPath(".//a")


def strip_never_content(tree: Any) -> None:
    etree.strip_elements(tree, *_NEVER_CONTENT, with_tail=False)


def drop_comment_threads(tree: Any) -> None:
    """Reader comment threads, found by trafilatura's own expression for them.

    We never extract comments; trafilatura prunes these same containers first thing when
    comments are off. Done here once, the page measure that gates a recall pass no longer
    counts a long comment thread as article text the first pass missed.
    """
    from trafilatura.htmlprocessing import prune_unwanted_nodes
    from trafilatura.xpaths import REMOVE_COMMENTS_AND_LISTS_XPATH

    prune_unwanted_nodes(tree, REMOVE_COMMENTS_AND_LISTS_XPATH)


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


def _is_farm(block: Any) -> bool:
    total = _chars(block.text_content())
    linked = _chars("".join(_LINK_TEXT(block)))
    if linked <= LINK_SHARE * total or total - linked > MAX_PROSE:
        return False
    if linked >= MAX_LINK_CHARS * len(_LINKS(block)):
        return False
    return not _one_link_per_paragraph(block)


def drop_link_farms(tree: Any) -> int:
    """Remove link-farm blocks (outermost first); returns how many were removed."""
    body = tree.find("body")
    if body is None:
        return 0
    farms: list[Any] = []
    inside: set[Any] = set()
    for block in _CANDIDATES(body):
        # Document order: a block inside a farm already chosen needs no test of its own.
        if any(up in inside for up in block.iterancestors()):
            continue
        if _is_farm(block):
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
