"""Text preparation for enrichment: which fields to read, length limits, the language-ID input.

Entity offsets must point into the record's own strings, so fields are never shifted here: they
are selected, cut at a word boundary when too long (a prefix, so offsets stay valid) and cleaned
in place by :func:`clean`, which only ever replaces a character by one other character:

* lone surrogates (``"\\ud800"`` in JSON; the tagger cannot encode them) become U+FFFD;
* boilerplate (:func:`mask_boilerplate`: "Read more of this story at Slashdot.", "The post ...
  appeared first on ...", "اقرأ أيضا: ...", "Continue reading ...", podcast and newsletter footers)
  is blanked with spaces, newlines kept, so that it is no entity source and no language evidence.

So ``fields[name][start:end]`` of any mention is the original text there. Unicode normalisation
happens where it does not move offsets: in the language-ID input and inside the taggers' features.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Mapping
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
    body_parts: list[tuple[str, str | None]] = [("title", title)]
    full = ("body", body) if body and body.strip() else ("content", content)
    if full[1] and full[1].strip():
        if summary.strip() and _squash(summary) not in _squash(full[1]):
            body_parts.append(("summary", summary))
        body_parts.append((full[0], full[1]))
    elif summary.strip():
        body_parts.append(("summary", summary))
    return prepare_fields(body_parts, max_chars)


def prepare_fields(parts: Iterable[tuple[str, str | None]], max_chars: int) -> PreparedText:
    """The non-blank ``(name, text)`` parts, in order, within ``max_chars`` characters in total,
    each cut (a prefix) and :func:`clean`-ed (same length), with their language-ID input."""
    fields: dict[str, str] = {}
    budget = max_chars
    truncated = False
    for name, text in parts:
        if not text or not text.strip() or budget <= 0:
            truncated = truncated or (budget <= 0 and bool(text and text.strip()))
            continue
        kept, was_cut = cut(text, budget)
        fields[name] = clean(kept)
        budget -= len(kept)
        truncated = truncated or was_cut
    return PreparedText(fields, language_text(fields), truncated)


def language_text(fields: Mapping[str, str], limit: int = 2000) -> str:
    """Title plus the head of the body, NFKC-normalised, without URLs, for language ID."""
    joined = "\n".join(fields.values())
    cleaned = _URL.sub(" ", unicodedata.normalize("NFKC", joined))
    return cut(cleaned, limit)[0].strip()


_SURROGATE = re.compile("[\ud800-\udfff]")

# Boilerplate that feeds and pages append to the story: "read more" links, the WordPress
# "The post X appeared first on Y." line in its translations, "see also" headlines of other
# articles, podcast and newsletter footers. Each pattern starts where a line or a sentence starts
# (so "he would continue reading" inside a sentence is kept) and runs to the end of the line.
_LEAD = r"(?:^|(?<=[.!?…»”\"')\]؟]))[ \t]*"
_TO_EOL = r"[^\n]*"
_BOILERPLATE_STARTS = (
    # read more / continue / see also
    r"read (?:more|the (?:full|rest|whole|original)\b|also\b|next\b)",
    r"continue (?:reading|to read)",
    r"(?:click|tap) here\b",
    r"full (?:story|article) (?:at|on|here)\b",
    r"(?:this|the) (?:article|story|post) (?:was |is )?(?:originally |first )?"
    r"(?:published|appeared|posted)\b",
    r"related(?: (?:articles?|stories|posts|coverage|news))?\s*:",
    r"see also\s*:",
    r"lire (?:la suite|aussi|également|plus)\b",
    r"(?:à|a) lire aussi\b",
    r"weiterlesen\b",
    r"(?:mehr|lesen sie (?:auch|mehr|hier)|jetzt lesen)\b\s*[:>»…]",
    r"leer (?:más|mas)\b",
    r"(?:seguir leyendo|lee también|lea también|leia (?:mais|também)|continua a leggere)\b",
    r"(?:devamını oku|haberin devamı|ilgili haber|okumaya devam)\w*",
    r"(?:читать (?:далее|дальше|также)|подробнее\s*:)",
    r"(?:[اإ]قرأ (?:أيضا|أيضاً|ايضا|ايضاً|المزيد|كذلك|التفاصيل)|للمزيد من التفاصيل|المزيد\s*:)",
    r"(?:بیشتر بخوانید|همچنین بخوانید)",
    # WordPress "The post X appeared first on Y." and its translations
    r"the post\b.{1,400}?\bappeared first on\b",
    r"(?:l[’']article|cet article)\b.{1,400}?\best apparu en premier sur\b",
    r"der beitrag\b.{1,400}?\berschien zuerst auf\b",
    r"la entrada\b.{1,400}?\b(?:se publicó primero en|aparece primero en)\b",
    r"(?:o post|a entrada|o artigo)\b.{1,400}?\bapareceu primeiro em\b",
    r"l[’']articolo\b.{1,400}?\bproviene da\b",
    r"het bericht\b.{1,400}?\bverscheen eerst op\b",
    r"запись\b.{1,400}?\bвпервые появилась\b",
    r"ظهرت (?:المقالة|المشاركة|التدوينة)\b.{1,400}?\bعلى\b",
    r"(?:yazı|gönderi)\b.{1,400}?\bilk olarak\b.{1,200}?\bgöründü\b",
    # newsletters, social, podcasts, ads
    r"(?:sign up|subscribe|register)\b.{0,60}?\b(?:newsletter|podcast|channel|feed|"
    r"apple podcasts|spotify|youtube|updates|briefing|inbox|alerts|digest)\b",
    r"(?:this (?:article|story|content) is (?:for|reserved for|only for) subscribers|"
    r"cet article est réservé aux abonnés|dieser artikel ist nur für abonnenten)",
    r"(?:abonnez-vous|inscrivez-vous|jetzt abonnieren|suscríbete|abonne ol|اشترك)\b",
    r"follow (?:us|me)\b.{0,40}?\b(?:on|at)\b",
    r"(?:listen|watch|available|find us) (?:on|to|at|wherever)\b.{0,80}?\b(?:podcasts?|"
    r"spotify|apple|stitcher|youtube|episode|show)\b",
    r"(?:support (?:the|our|this) (?:show|podcast|journalism|work)|become a (?:member|patron|"
    r"supporter)|donate (?:now|today|to))\b",
    r"(?:learn more about your ad[- ]?choices|see (?:omnystudio|acast|megaphone|podcastchoices)"
    r"\S* for|hosted on (?:acast|anchor|libsyn|megaphone|buzzsprout|simplecast))",
    r"(?:share (?:this|on)\b|taboola\b|sponsored content\b|advertisement\s*$)",
    r"(?:all rights reserved|copyright\s*(?:©|\(c\)|\d{4})|©\s*\d{4}|جميع الحقوق محفوظة|"
    r"tous droits réservés|alle rechte vorbehalten|todos los derechos reservados|"
    r"tüm hakları saklıdır|все права защищены)",
)
_BOILERPLATE = re.compile(
    f"{_LEAD}(?:{'|'.join(_BOILERPLATE_STARTS)}){_TO_EOL}", re.IGNORECASE | re.MULTILINE
)
# Whole lines that are only a site's "read more" link text ("Read more »", "المزيد", "Mehr »").
_LINK_LINE = re.compile(
    r"^[ \t]*(?:more|mehr|plus|más|daha fazla|المزيد|ادامه مطلب|подробнее)[ \t]*[»>…→.]*[ \t]*$",
    re.IGNORECASE | re.MULTILINE,
)
_NOT_NEWLINE = re.compile(r"[^\n]")


def _blank(match: re.Match[str]) -> str:
    return _NOT_NEWLINE.sub(" ", match.group())


def mask_boilerplate(text: str) -> str:
    """``text`` with boilerplate blanked by spaces: same length, same newlines, the rest untouched.

    So that offsets found in the result are offsets into ``text`` and the boilerplate is neither
    an entity source ("Read more of this story at Slashdot." gave the place "Slashdot") nor
    evidence for the language.
    """
    if not text:
        return text
    out = _BOILERPLATE.sub(_blank, text)
    return _LINK_LINE.sub(_blank, out)


def clean(text: str) -> str:
    """Lone surrogates -> U+FFFD, boilerplate blanked: one character for one, offsets kept."""
    if _SURROGATE.search(text):
        text = _SURROGATE.sub("\ufffd", text)
    return mask_boilerplate(text)
