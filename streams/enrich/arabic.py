"""Pure Arabic text functions: letter normalisation, proclitic splitting, entity keys.

Nothing here moves offsets behind the caller's back: ``split_clitics`` returns ``(prefix, stem)``
with ``prefix + stem == token`` (sentences: ``streams.enrich.sentences``). ``normalize`` and
``normalize_entity`` produce comparison keys, not display text.

Entity key (``normalize_entity``), decided as follows and relied on by ``entities.py``:

* letters are normalised (diacritics and tatweel removed, أ إ آ ٱ -> ا, ى -> ي, ة -> ه);
* the FIRST word loses its proclitics (و ف + ب ك ل) AND its article ال, so "العراق", "والعراق",
  "بالعراق", "للعراق" all give "عراق", and "وسوريا" gives "سوريا";
* the article is kept when fewer than three letters would remain ("الله" is not ال + له);
* "عبد الله" and "عبدالله" (also "أبو ظبي" / "أبوظبي") give one key: عبد and ابو are joined to
  the next word;
* the other words of a multiword name keep everything (only letters are normalised): the article
  of an inner word is part of the name ("وزارة الدفاع" -> "وزاره الدفاع"), and an inner و is a
  real conjunction ("وزارة الدفاع والأمن").

A single-letter proclitic (و ف ب ك ل) before a word that is not an article is ambiguous:
"وسوريا" is و + سوريا, but "وليد", "بغداد", "لبنان", "فرنسا" begin with a root letter. The split
is made only when the stem is better attested than the whole word in a word-frequency lexicon
(``known``; ``entities`` passes the one built with the models, the default is the small open
lexicon in ``gazetteers/ar_lexicon.tsv.xz`` when present), or, when neither is known, when the
stem starts with a hamzated alef (أ إ آ: "وأنقرة", "بإيران") or the proclitic is و before a stem
of at least three letters.
"""

from __future__ import annotations

import io
import lzma
import re
import threading
from collections.abc import Mapping
from importlib.resources.abc import Traversable

from streams import resources

# Arabic harakat, Quranic marks, superscript alef, and tatweel (kashida).
_MARKS = re.compile(
    "[\u0610-\u061a\u064b-\u065f\u0670\u06d6-\u06dc\u06df-\u06e8\u06ea-\u06ed\u0640]"
)
_MARK_CHARS = frozenset(
    [chr(c) for c in range(0x0610, 0x061B)]
    + [chr(c) for c in range(0x064B, 0x0660)]
    + ["\u0670", "\u0640"]
    + [chr(c) for c in range(0x06D6, 0x06DD)]
    + [chr(c) for c in range(0x06DF, 0x06E9)]
    + [chr(c) for c in range(0x06EA, 0x06EE)]
)
_LETTERS = str.maketrans({"أ": "ا", "إ": "ا", "آ": "ا", "ٱ": "ا", "ى": "ي", "ة": "ه"})

CONJUNCTIONS = ("و", "ف")
PREPOSITIONS = ("ب", "ك", "ل")
PROCLITICS = CONJUNCTIONS + PREPOSITIONS
_HAMZA_ALEF = frozenset("أإآ")
_ARABIC_LETTER = re.compile("[\u0621-\u064a\u0671-\u06d3\u06fa-\u06ff]")

LEXICON_PATH = resources.package_file("streams.enrich", "gazetteers/ar_lexicon.tsv.xz")
_default_lock = threading.Lock()
_default_known: dict[str, int] | None = None


def normalize(text: str) -> str:
    """Diacritics and tatweel removed, alef forms -> ا, ى -> ي, ة -> ه; nothing else changes."""
    return _MARKS.sub("", text).translate(_LETTERS)


def has_hamza_alef_start(word: str) -> bool:
    return word[:1] in _HAMZA_ALEF


def is_definite(token: str) -> bool:
    """Does ``token`` (diacritics allowed) start with the article ال (bare alef)?"""
    return _MARKS.sub("", token).replace("ٱ", "ا").startswith("ال")


def is_arabic(text: str) -> bool:
    return _ARABIC_LETTER.search(text) is not None


def default_known() -> Mapping[str, int]:
    """The packaged open word-frequency lexicon (normalised word -> count), loaded once."""
    global _default_known
    if _default_known is None:
        with _default_lock:
            if _default_known is None:
                _default_known = load_lexicon(LEXICON_PATH) if LEXICON_PATH.is_file() else {}
    return _default_known


def load_lexicon(path: Traversable) -> dict[str, int]:
    known: dict[str, int] = {}
    with path.open("rb") as raw, io.TextIOWrapper(lzma.LZMAFile(raw), encoding="utf-8") as fh:
        for line in fh:
            word, _, count = line.rstrip("\n").partition("\t")
            if word:
                known[word] = int(count or 1)
    return known


def _letters(token: str) -> list[int]:
    """Indices of the non-mark characters of ``token``."""
    return [i for i, ch in enumerate(token) if ch not in _MARK_CHARS]


_ARTICLE = re.compile("^[وف]?(?:[بك]?ال|لل)")


def _article_split(idx: list[int], plain: str) -> int | None:
    """Length (in token characters) of a proclitics+article prefix, or None."""
    m = _ARTICLE.match(plain)
    if m is None or len(plain) - m.end() < 2:
        return None
    return idx[m.end()]


def _prefer_stem(whole: str, stem: str, known: Mapping[str, int]) -> bool:
    """Is ``whole`` = proclitic + ``stem`` rather than a word of its own?"""
    f_whole, f_stem = known.get(whole, 0), known.get(stem, 0)
    if f_whole or f_stem:
        return f_stem > 0 and f_stem >= 2 * f_whole
    return stem[:1] in _HAMZA_ALEF or (whole[0] == "و" and len(stem) >= 3)


def split_clitics(token: str, known: Mapping[str, int] | None = None) -> tuple[str, str]:
    """``(prefix, stem)`` with ``prefix + stem == token``: proclitics (و ف ب ك ل) and article.

    Article forms (وال، فال، بال، كال، وبال، لل، ولل، ال ...) are always split when at least two
    letters remain; a lone proclitic only as described in the module docstring. The stem never
    keeps fewer than two letters. ``known`` is a normalised word -> frequency lexicon.
    """
    idx = _letters(token)
    if len(idx) < 3:
        return "", token
    plain = "".join(token[i] for i in idx).translate(_LETTERS)
    # the article is written with a bare alef (or wasla): "إلكاي" is not إ + لكاي
    bare = "".join(token[i] for i in idx).replace("ٱ", "ا")
    art = _article_split(idx, bare)
    if art is not None:
        return token[:art], token[art:]
    lex = default_known() if known is None else known
    cut = 0
    # at most two single-letter proclitics: conjunction then preposition ("وب", "فل", ...)
    for allowed in (PROCLITICS, PREPOSITIONS):
        if len(plain) - cut < 4 or plain[cut] not in allowed:
            break
        if not _prefer_stem(plain[cut:], plain[cut + 1 :], lex):
            break
        cut += 1
    if cut == 0:
        return "", token
    return token[: idx[cut]], token[idx[cut] :]


def article_offset(prefix: str) -> int:
    """How many characters of a ``split_clitics`` prefix to drop from an entity's surface.

    The surface keeps the article ("والعراق" -> "العراق": 1) but not the proclitics; with the
    elided form لل (ل + ال, "للعراق") nothing of the article is left, so all of it goes.
    """
    letters = _letters(prefix)
    if normalize(prefix).endswith("ال") and len(letters) >= 2:
        return letters[-2]
    return len(prefix)


def strip_article(word: str) -> str:
    """``word`` without a leading article (normalised input expected)."""
    if word.startswith("ال") and len(word) >= 4:
        return word[2:]
    return word


# "عبد الله" / "عبدالله", "أبو ظبي" / "أبوظبي": one key (normalised text)
_JOIN = re.compile(r"(?<!\S)(عبد|ابو)\s+(?=\S)")


def join_name_parts(norm: str) -> str:
    """Normalised text with "عبد" / "ابو" joined to the next word (spacing variants agree)."""
    return _JOIN.sub(r"\1", norm)


def normalize_entity(text: str, known: Mapping[str, int] | None = None) -> str:
    """Aggregation key of an Arabic entity (see the module docstring)."""
    words = _MARKS.sub("", text).split()
    if not words:
        return ""
    prefix, stem = split_clitics(words[0], known)
    if normalize(prefix).endswith("ال") and len(normalize(stem)) < 3:
        stem = words[0][len(prefix) - 2 :]  # "الله", "والله": the article stays
    return join_name_parts(" ".join(normalize(w) for w in [stem, *words[1:]]))
