"""Text preparation for enrichment: which fields to read, length limits, the language-ID input.

Entity offsets must point into the record's own strings, so fields are never rewritten here:
they are only selected and, when too long, cut at a word boundary (a prefix, so offsets stay
valid). Unicode normalisation happens where it does not move offsets: in the language-ID input
and inside the taggers' features.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass

_URL = re.compile(r"https?://\S+|www\.\S+")
_SPACE = re.compile(r"\s+")


@dataclass(frozen=True)
class PreparedText:
    fields: dict[str, str]  # field name -> original text (possibly cut), in reading order
    language_input: str  # normalised title + body head for language identification
    truncated: bool  # True when any field was cut to respect the limit


def cut(text: str, limit: int) -> tuple[str, bool]:
    """``text`` cut to at most ``limit`` characters at a whitespace boundary when possible."""
    if len(text) <= limit:
        return text, False
    head = text[:limit]
    space = max(head.rfind(" "), head.rfind("\n"))
    return (head[:space] if space > limit // 2 else head), True


def _squash(text: str) -> str:
    return _SPACE.sub(" ", text).strip()


def prepare(
    title: str, summary: str, content: str | None, max_chars: int, body: str | None = None
) -> PreparedText:
    """Pick the fields to analyse, within ``max_chars`` characters in total.

    The full text is ``body`` (the page text the extract stage found) when there is one, else
    the feed's own ``content``: both are the article, so reading both would count its entities
    twice. The summary is skipped when the full text already contains it (feeds and pages often
    repeat the lead paragraph), for the same reason.
    """
    fields: dict[str, str] = {}
    budget = max_chars
    truncated = False
    body_parts: list[tuple[str, str]] = [("title", title)]
    full = ("body", body) if body and body.strip() else ("content", content)
    if full[1] and full[1].strip():
        if summary.strip() and _squash(summary) not in _squash(full[1]):
            body_parts.append(("summary", summary))
        body_parts.append((full[0], full[1]))
    elif summary.strip():
        body_parts.append(("summary", summary))
    for name, text in body_parts:
        if not text.strip() or budget <= 0:
            truncated = truncated or (budget <= 0 and bool(text.strip()))
            continue
        kept, was_cut = cut(text, budget)
        fields[name] = kept
        budget -= len(kept)
        truncated = truncated or was_cut
    return PreparedText(fields, language_text(fields), truncated)


def language_text(fields: Mapping[str, str], limit: int = 2000) -> str:
    """Title plus the head of the body, NFKC-normalised, without URLs, for language ID."""
    joined = "\n".join(fields.values())
    cleaned = _URL.sub(" ", unicodedata.normalize("NFKC", joined))
    return cut(cleaned, limit)[0].strip()
