"""Sentence splitting for the taggers: ``(start, end)`` spans into the string it was given.

A sentence ends after . ! ? … (Latin), ؟ ؛ ۔ (Arabic script) and 。！？ (CJK), with any closing
quotes and brackets that follow, and at every newline; never at the Arabic comma ،. A period
does not end a sentence when

* it belongs to a token of ``features.TOKEN_RE`` (the tokens of the training corpora): an
  abbreviation ("St. Niklaus", "Dr.", "Corp."), an initial before a name ("J. R. R. Tolkien"),
  a dotted acronym ("U.S.", "z.B."), an ordinal or Roman numeral before a word ("3. Oktober",
  "II. Dünya") - so no token ever crosses a cut;
* it is followed by a non-space ("3.5", "example.com");
* the next word starts in lower case (Latin, Cyrillic, Greek: "ca. 20 km", "etc. und").

Spans are trimmed of surrounding whitespace; empty spans are dropped. ``entities`` tags each
span; the cuts fall on whitespace or right after a sentence mark, which no longer token holds.
"""

from __future__ import annotations

import re

from streams.enrich.features import TOKEN_RE

_END = re.compile(r"[.!?؟؛…۔。！？]+[\"'»”’)\]]*")
_NEWLINE = re.compile(r"\n")
_ALWAYS = frozenset("。！？؟؛۔")  # marks that end a sentence whatever follows


def _inside_token(text: str, mark_start: int) -> bool:
    """Is the character at ``mark_start`` part of a longer token (abbreviation, initial, ...)?"""
    k = mark_start
    while k > 0 and not text[k - 1].isspace():
        k -= 1
    for token in TOKEN_RE.finditer(text, k):
        if token.start() > mark_start:
            return False
        if token.end() > mark_start:
            span = token.group()
            return len(span) > 1 and not set(span) <= {".", "!", "?", "…"}
    return False


def _is_break(text: str, match: re.Match[str]) -> bool:
    mark, end = match.group(), match.end()
    if mark[0] in _ALWAYS:
        return True
    if end < len(text) and not text[end].isspace():
        return False  # "3.5", "U.S.A", "a.m." inside a word
    if mark[0] == "." and _inside_token(text, match.start()):
        return False
    if mark[0] not in ".…":
        return True
    k, n = end, len(text)  # the next non-space character (no copy of the rest of the text)
    while k < n and text[k].isspace():
        k += 1
    return not text[k : k + 1].islower()


def split(text: str) -> list[tuple[int, int]]:
    """``(start, end)`` spans of the sentences of ``text``."""
    cuts: set[int] = {m.end() for m in _END.finditer(text) if _is_break(text, m)}
    cuts.update(m.start() for m in _NEWLINE.finditer(text))
    spans: list[tuple[int, int]] = []
    start = 0
    for cut in [*sorted(cuts), len(text)]:
        s, e = start, cut
        while s < e and text[s].isspace():
            s += 1
        while e > s and text[e - 1].isspace():
            e -= 1
        if e > s:
            spans.append((s, e))
        start = cut
    return spans
