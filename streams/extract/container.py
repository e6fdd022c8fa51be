"""Point trafilatura at the article's container when its own rules find none.

Pure work layer, called by ``core.extract`` after the prefilter, just before trafilatura.

trafilatura looks for the article's container with a list of expressions (``BODY_XPATH``:
``itemprop=articleBody``, classes such as ``entry-content`` or ``article-body``, the first
``<article>``, ``id=story``, ``<main>``...). When none matches (a theme with its own class
names: ``news-text``, ``post_body``, ``yazi-icerik``...), it falls back to collecting loose
paragraphs from the whole page ("wild text"): subheadings are lost (the fallback reads
paragraphs, quotes, code and tables only), and stray paragraphs anywhere on the page come in.

Here, only in that case, the element that holds most of the page's paragraph text as its own
children is marked ``itemprop="articleBody"`` (schema.org's name for it, the first thing
trafilatura looks for), when it clearly dominates: at least ``MIN_SHARE`` of all paragraph
text and ``MIN_PARAGRAPHS`` paragraphs. Readability scores containers the same way (by the
paragraphs under them); this is that idea used as a hint, not as a second extractor.
"""

from __future__ import annotations

from typing import Any, Final

__all__ = ["mark_article_body"]

MIN_PARAGRAPH: Final = 40  # characters (no spaces) of a paragraph that counts (not a caption)
MIN_PARAGRAPHS: Final = 3
MIN_SHARE: Final = 0.6  # of all paragraph text on the page
_CONTAINERS: Final = frozenset(("div", "section", "article", "main"))


def _chars(text: str) -> int:
    return len("".join(text.split()))


def _trafilatura_finds_one(body: Any) -> bool:
    if body.find(".//article") is not None or body.find(".//main") is not None:
        return True  # cheap cases first: most pages stop here
    from trafilatura.xpaths import BODY_XPATH

    return any(expr(body) for expr in BODY_XPATH)


def mark_article_body(tree: Any) -> bool:
    """Mark the dominant paragraph container when trafilatura would find none; True if marked."""
    body = tree.find("body")
    if body is None:
        return False
    by_parent: dict[Any, list[int]] = {}
    total = 0
    for p in body.iter("p"):
        n = _chars(p.text_content())
        if n < MIN_PARAGRAPH:
            continue
        total += n
        parent = p.getparent()
        seen = by_parent.setdefault(parent, [0, 0])
        seen[0] += n
        seen[1] += 1
    if not by_parent:
        return False
    best, (chars, count) = max(by_parent.items(), key=lambda kv: kv[1][0])
    if best.tag not in _CONTAINERS or count < MIN_PARAGRAPHS or chars < MIN_SHARE * total:
        return False
    if _trafilatura_finds_one(body):
        return False
    best.set("itemprop", "articleBody")
    return True
