"""Feed bytes -> text in the right character set; text fields -> mojibake repaired (issue 14.4).

Flow: ``parse.parse_feed`` decodes every body here *before* feedparser sees it, and hands
feedparser UTF-8 with a UTF-8 declaration, so feedparser's own charset guessing never runs.
That guessing read a body declared UTF-8 but sent as windows-1256 as windows-1252 (Arabic
became "ãÑÍÈÇ") and other invalid UTF-8 as iso-8859-2, and the garbage was indexed as text
(and detected as Yoruba). Order here:

1. A byte-order mark, a UTF-16/32 "<" pattern or EBCDIC "<?xm" decides.
2. Valid UTF-8 is UTF-8, whatever was declared (legacy-encoded text in a script with letters
   above U+007F is practically never valid UTF-8).
3. The declared charset (HTTP header, else the XML declaration) when it is not UTF-8 and the
   bytes decode with it.
4. UTF-8 with a few broken sequences (a truncated character in one item) stays UTF-8, the
   broken bytes replaced by U+FFFD.
5. The language (operator's hint, else the feed's ``<language>``) names the legacy code pages
   of its script: windows-1256 for Arabic, windows-1251 for Russian, and so on.
6. charset-normalizer; among its equally good answers the one most used on the web wins (it
   rates windows-1250 and windows-1252 the same on French text, and 1250 turns "è" into "č").
7. Nothing fits: the body is *undecodable*; the feed fails with that error and nothing of it
   is indexed.

Double-encoded UTF-8 (UTF-8 bytes read once as a legacy code page and saved again as UTF-8:
"CafÃ©", Arabic "ظ…ط±ط­ط¨ط§") is valid UTF-8 and so passes all of the above; ``repair`` fixes
it per text field: ftfy for the code pages it knows (windows-1252 family), and the same
re-encode/re-decode test for windows-1256/1251/1253/1255, which ftfy leaves alone. A field is
only touched when the round trip gives strictly valid UTF-8 with fewer characters.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass, field

_BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)
_WIDE = (
    (b"\x00\x00\x00<", "utf-32-be"),
    (b"<\x00\x00\x00", "utf-32-le"),
    (b"\x00<", "utf-16-be"),
    (b"<\x00", "utf-16-le"),
)
_WIDE_WARNING = "transcoded_to_utf8"
_EBCDIC_XML = b"\x4c\x6f\xa7\x94"  # "<?xm" in EBCDIC
_XML_DECL_ENCODING = re.compile(
    r"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})"""
)
_XML_DECL_ENCODING_BYTES = re.compile(
    rb"""^\s*<\?xml[^>]{0,200}?encoding\s*=\s*["']([A-Za-z0-9._:-]{1,40})"""
)
_CHARSET_PARAM = re.compile(r"""charset\s*=\s*["']?([A-Za-z0-9._:-]{1,40})""", re.IGNORECASE)
_LANGUAGE_TAG = re.compile(
    rb"""<(?:\w+:)?language\b[^>]{0,100}>\s*([A-Za-z]{2,3})\b|\bxml:lang\s*=\s*["']([A-Za-z]{2,3})\b"""
)
# Legacy code pages of each language's script, most common on the web first.
_LEGACY_BY_LANGUAGE: dict[str, tuple[str, ...]] = {
    **dict.fromkeys(("ar", "fa", "ur", "ps", "ckb", "ku"), ("cp1256", "iso8859_6")),
    **dict.fromkeys(("ru", "uk", "bg", "sr", "mk", "be", "kk"), ("cp1251", "koi8_r", "koi8_u")),
    **dict.fromkeys(("pl", "cs", "sk", "hu", "ro", "hr", "sl", "bs"), ("cp1250", "iso8859_2")),
    "el": ("cp1253", "iso8859_7"),
    "he": ("cp1255", "iso8859_8"),
    "yi": ("cp1255",),
    "tr": ("cp1254", "iso8859_9"),
    "az": ("cp1254",),
    "vi": ("cp1258",),
    "th": ("cp874",),
    "zh": ("gb18030", "big5"),
    "ja": ("shift_jis", "euc_jp", "iso2022_jp"),
    "ko": ("euc_kr",),
    **dict.fromkeys(("lt", "lv", "et"), ("cp1257",)),
}
_WESTERN = ("cp1252",)
# Web popularity of the legacy encodings: the tie-break between equally good guesses.
_WEB_ORDER = (
    "utf_8",
    "cp1252",
    "latin_1",
    "cp1251",
    "gb18030",
    "gb2312",
    "shift_jis",
    "euc_kr",
    "euc_jp",
    "cp1256",
    "big5",
    "cp1250",
    "iso8859_2",
    "cp1254",
    "cp1253",
    "cp1255",
    "cp874",
    "koi8_r",
)
# What charset detection may answer: the legacy charsets web servers actually send. Left to
# itself, charset-normalizer answered Mac, Korean or Japanese charsets for 12 % of short Arabic
# titles sent as windows-1256 (1,737 of 1,975 decoded right; 1,932 with this list, all 1,975
# with the language).
_WEB_CHARSETS = (
    "cp1252", "latin_1", "iso8859_15", "cp1250", "iso8859_2", "cp1251", "koi8_r", "koi8_u",
    "iso8859_5", "cp1253", "iso8859_7", "cp1254", "iso8859_9", "cp1255", "iso8859_8", "cp1256",
    "iso8859_6", "cp1257", "cp1258", "cp874", "gb18030", "big5", "shift_jis", "euc_jp",
    "euc_kr",
)  # fmt: skip
_UTF8_NAMES = frozenset(("utf_8", "utf8", "utf_8_sig"))
# Step 4: a body with at least this many well-formed multi-byte characters per broken
# sequence is UTF-8 with damage, not another encoding.
_VALID_PER_BROKEN = 8
# Double encoding: code pages ftfy does not try, most common first.
_REPAIR_CODEPAGES = ("cp1256", "cp1251", "cp1253", "cp1255")
# A UTF-8 lead byte (C2-F4) read as Latin-1/windows-1252, then a continuation byte (80-BF) read
# the same way. Only text with such a pair goes to ftfy: its own badness check cost more than
# feedparser on long multilingual summaries (+50 % parse CPU), this one a regex scan.
_LATIN_MOJIBAKE = re.compile(
    "[\u00c2-\u00f4][\u0080-\u00bf\u0152\u0153\u0160\u0161\u0178\u017d\u017e\u0192"
    "\u02c6\u02dc\u2013\u2014\u2018-\u201e\u2020-\u2022\u2026\u2030\u2039\u203a\u20ac\u2122]"
)
# What the UTF-8 lead bytes of Arabic (D8-DB), Cyrillic (D0, D1), Greek (CE, CF) and Hebrew (D7)
# look like in those code pages: without one of them there is nothing to repair.
# ... and what continuation bytes (80-BF) look like in them: Latin-1 signs, dashes and quotes.
_CONTINUATION = re.compile("[\u0080-\u00bf\u2013-\u203a\u20ac\u2122]")
_LEAD_OF_MOJIBAKE = re.compile("[\u0637-\u063a\u0420\u0421\u039e\u039f\u05d7]")


@dataclass(slots=True)
class Decoded:
    text: str | None  # None: undecodable
    encoding: str
    warnings: list[str] = field(default_factory=list)


def _codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name).name.replace("-", "_")
    except LookupError:
        return None


def _declared(body: bytes, content_type: str | None) -> str | None:
    if content_type:
        match = _CHARSET_PARAM.search(content_type)
        if match:
            return match.group(1)
    found = _XML_DECL_ENCODING_BYTES.match(body)
    return found.group(1).decode("ascii") if found else None


def _language(body: bytes, hint: str | None) -> str | None:
    if hint:
        return re.split(r"[-_]", hint.strip().lower(), maxsplit=1)[0]
    match = _LANGUAGE_TAG.search(body, 0, 65536)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).decode("ascii").lower()


def _strict(body: bytes, encoding: str) -> str | None:
    try:
        return body.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _detected(body: bytes) -> str | None:
    import charset_normalizer  # only for bodies that are not UTF-8 (import: ~20 ms)

    matches = list(charset_normalizer.from_bytes(body, cp_isolation=list(_WEB_CHARSETS)))
    if not matches:
        return None
    best = matches[0]
    tied = [m for m in matches if m.chaos == best.chaos and m.coherence == best.coherence]
    names = {_codec(name) for m in tied for name in m.could_be_from_charset}
    for name in _WEB_ORDER:
        if name in names:
            return name
    return _codec(best.encoding)


def decode_body(body: bytes, content_type: str | None, language: str | None = None) -> Decoded:
    """The body as text and the encoding used (see the module docstring for the order)."""
    for bom, encoding in _BOMS:
        if body.startswith(bom):
            text = body.decode(encoding, "replace").lstrip("\ufeff")
            return Decoded(text, encoding, [] if encoding == "utf-8-sig" else [_WIDE_WARNING])
    for start, encoding in _WIDE:
        if body.startswith(start):
            return Decoded(body.decode(encoding, "replace"), encoding, [_WIDE_WARNING])
    if body.startswith(_EBCDIC_XML):
        text = body.decode("cp037", "replace")
        declared = _codec(
            (m.group(1) if (m := _XML_DECL_ENCODING.match(text)) else None) or "cp037"
        )
        if declared and declared != "cp037" and (again := _strict(body, declared)) is not None:
            return Decoded(again, declared)
        return Decoded(text, "cp037")
    declared_name = _declared(body, content_type)
    declared = _codec(declared_name)
    utf8 = _strict(body, "utf-8")
    if utf8 is not None:
        decoded = Decoded(utf8, "utf_8")
        if declared and declared not in _UTF8_NAMES and not body.isascii():
            decoded.warnings.append(f"charset: utf-8 (declared {declared_name})")
        return decoded
    if declared and declared not in _UTF8_NAMES:
        legacy = _strict(body, declared)
        if legacy is not None:
            return Decoded(legacy, declared)
    lossy = body.decode("utf-8", "replace")
    broken = lossy.count("\ufffd")
    valid = len(lossy) - len(lossy.encode("ascii", "ignore")) - broken
    if valid >= _VALID_PER_BROKEN * broken:
        return Decoded(lossy, "utf_8", [f"invalid_utf8_replaced: {broken}"])
    wanted = f" (declared {declared_name})" if declared_name else ""
    lang = _language(body, language)
    for candidate in _LEGACY_BY_LANGUAGE.get(lang or "", _WESTERN if lang else ()):
        legacy = _strict(body, candidate)
        if legacy is not None:
            return Decoded(legacy, candidate, [f"charset: {candidate} for language {lang}{wanted}"])
    guess = _detected(body)
    if guess is not None:
        legacy = _strict(body, guess)
        if legacy is not None:
            return Decoded(legacy, guess, [f"charset: {guess} detected{wanted}"])
    return Decoded(None, "unknown", [f"undecodable: not utf-8{wanted}, no charset fits"])


def repair(text: str, language: str | None = None) -> str:
    """``text`` with double-encoded UTF-8 undone; unchanged when it shows none.

    With a ``language`` of a non-Latin script, a field written in none of that script but in
    Latin-1 letters ("ãÑÍÈÇ" for an Arabic feed: its windows-1256 bytes read as windows-1252
    somewhere before us) is read back through the language's code pages.
    """
    if text.isascii():
        return text
    if language:
        text = _relabel(text, language)
    # The non-Latin code pages first: their mojibake holds Latin-1 letters too (cp1256 maps
    # E0-EF to à, â, ç, è...), on which ftfy would make a partial, wrong fix.
    if _LEAD_OF_MOJIBAKE.search(text) and _CONTINUATION.search(text):
        for codepage in _REPAIR_CODEPAGES:
            try:
                fixed = text.encode(codepage).decode("utf-8")
            except UnicodeError:
                continue
            if len(fixed) < len(text) and not fixed.isascii():
                return fixed
    if _LATIN_MOJIBAKE.search(text):
        import ftfy  # only for text that looks double-encoded (import: ~170 ms)

        return ftfy.fix_encoding(text)
    return text


# Scripts of the languages whose legacy code pages ``_relabel`` tries.
_SCRIPTS = {
    **dict.fromkeys(("ar", "fa", "ur", "ps", "ckb", "ku"), re.compile("[\u0600-\u06ff]")),
    **dict.fromkeys(("ru", "uk", "bg", "sr", "mk", "be", "kk"), re.compile("[\u0400-\u04ff]")),
    "el": re.compile("[\u0370-\u03ff]"),
    "he": re.compile("[\u0590-\u05ff]"),
    "th": re.compile("[\u0e00-\u0e7f]"),
}
_LATIN1_LETTERS = re.compile("[\u00c0-\u00ff]")
_MIN_MISREAD = 3


def _relabel(text: str, language: str) -> str:
    primary = re.split(r"[-_]", language.strip().lower(), maxsplit=1)[0]
    script = _SCRIPTS.get(primary)
    if script is None or script.search(text):
        return text
    misread = len(_LATIN1_LETTERS.findall(text))
    letters = sum(1 for c in text if c.isalpha())
    if misread < _MIN_MISREAD or misread * 2 < letters:
        return text  # mostly ASCII letters: a Latin-script line with accents, not a misreading
    try:
        raw = text.encode("cp1252")
    except UnicodeEncodeError:
        return text
    for codepage in _LEGACY_BY_LANGUAGE.get(primary, ()):
        try:
            fixed = raw.decode(codepage)
        except UnicodeDecodeError:
            continue
        if len(script.findall(fixed)) >= misread * 0.8:
            return fixed
    return text
