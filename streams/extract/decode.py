"""Raw page bytes -> text: the one place that decides a page's character encoding.

Order (the HTML standard's, minus what only browsers can know):
1. a byte-order mark (UTF-8, UTF-16 LE/BE) wins over everything;
2. the HTTP ``Content-Type`` charset;
3. a ``<meta charset>`` / ``<meta http-equiv="Content-Type">`` in the first 8 KiB;
4. strict UTF-8 when the bytes are valid UTF-8 (most of the web is);
5. statistical detection (charset_normalizer) on a bounded sample, then Windows-1252.

A declared legacy charset is not trusted blindly: non-ASCII bytes that are valid UTF-8 are read as
UTF-8 (a stale label is common; legacy text almost never forms valid UTF-8), otherwise the
declared codec is used, with replacement characters where bytes do not fit.
Labels are mapped as browsers map them (``iso-8859-1`` and ``ascii`` mean Windows-1252,
``gb2312``/``gbk`` mean GB18030, ``x-sjis`` means Shift_JIS...). Mojibake (UTF-8 read as
Windows-1252 and saved again) is repaired later, on the extracted text only, by ftfy: repairing
the whole page would cost more and gain nothing.
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final

__all__ = ["Decoded", "charset_from_content_type", "decode_html", "normalise_label"]

_META_SCAN: Final = 8192
_DETECT_SAMPLE: Final = 64 * 1024
_META_RE: Final = re.compile(
    rb"""<meta[^>]+?charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE
)
_CT_RE: Final = re.compile(r"""charset\s*=\s*["']?\s*([a-zA-Z0-9_:.\-]+)""", re.IGNORECASE)
# What browsers actually decode these labels as (WHATWG Encoding Standard).
_ALIASES: Final = {
    "iso-8859-1": "cp1252",
    "iso8859-1": "cp1252",
    "latin1": "cp1252",
    "latin-1": "cp1252",
    "l1": "cp1252",
    "us-ascii": "cp1252",
    "ascii": "cp1252",
    "iso-8859-9": "cp1254",
    "latin5": "cp1254",
    "gb2312": "gb18030",
    "gbk": "gb18030",
    "x-gbk": "gb18030",
    "cp936": "gb18030",
    "x-sjis": "shift_jis",
    "sjis": "shift_jis",
    "windows-874": "cp874",
    "tis-620": "cp874",
    "x-cp1256": "cp1256",
    "x-cp1251": "cp1251",
    "utf8": "utf-8",
    "unicode": "utf-16",
}


@dataclass(frozen=True, slots=True)
class Decoded:
    text: str
    encoding: str  # Python codec name actually used
    source: str  # bom | http | meta | utf8 | detected | fallback


def normalise_label(label: str | None) -> str | None:
    """A charset label as Python's codec name, mapped as browsers map it; None when unknown."""
    if not label:
        return None
    name = label.strip().strip("\"'").lower()
    name = _ALIASES.get(name, name)
    try:
        info = codecs.lookup(name)
    except LookupError:
        return None
    if info.name in ("utf-16-le", "utf-16-be", "utf-16", "utf-32"):
        # An ASCII-compatible document cannot really be UTF-16 without a BOM (handled first).
        return "utf-8"
    return _ALIASES.get(info.name, info.name)


def charset_from_content_type(content_type: str | None) -> str | None:
    if not content_type:
        return None
    m = _CT_RE.search(content_type)
    return normalise_label(m.group(1)) if m else None


def _header(headers: Mapping[str, str] | None, name: str) -> str | None:
    if not headers:
        return None
    for key, value in headers.items():
        if key.lower() == name:
            return value
    return None


def _bom(data: bytes) -> tuple[str, int] | None:
    if data.startswith(codecs.BOM_UTF8):
        return "utf-8", 3
    if data.startswith(codecs.BOM_UTF16_LE):
        return "utf-16-le", 2
    if data.startswith(codecs.BOM_UTF16_BE):
        return "utf-16-be", 2
    return None


def _meta_charset(data: bytes) -> str | None:
    m = _META_RE.search(data[:_META_SCAN])
    return normalise_label(m.group(1).decode("ascii", "ignore")) if m else None


def _utf8(data: bytes) -> str | None:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        # A page cut mid-character (our own size cap) is still UTF-8.
        if exc.start >= len(data) - 3:
            return data.decode("utf-8", errors="ignore")
        return None


def _detect(data: bytes) -> str | None:
    from charset_normalizer import from_bytes

    best = from_bytes(data[:_DETECT_SAMPLE], cp_isolation=None).best()
    return normalise_label(best.encoding) if best is not None else None


def decode_html(data: bytes, headers: Mapping[str, str] | None = None) -> Decoded:
    """Decode a page as a browser would; never raises."""
    bom = _bom(data)
    if bom is not None:
        codec, skip = bom
        return Decoded(data[skip:].decode(codec, errors="replace"), codec, "bom")
    for source, label in (
        ("http", charset_from_content_type(_header(headers, "content-type"))),
        ("meta", _meta_charset(data)),
    ):
        if label is None:
            continue
        if label == "utf-8":
            as_utf8 = _utf8(data)
            if as_utf8 is not None:
                return Decoded(as_utf8, "utf-8", source)
            continue  # labelled UTF-8 but is not: let detection decide
        # Non-ASCII bytes that are valid UTF-8 are UTF-8 whatever the label says: legacy text
        # almost never forms valid UTF-8 sequences, while CMS templates often keep a stale label.
        as_utf8 = _utf8(data) if not data.isascii() else None
        if as_utf8 is not None:
            return Decoded(as_utf8, "utf-8", "utf8")
        return Decoded(data.decode(label, errors="replace"), label, source)
    as_utf8 = _utf8(data)
    if as_utf8 is not None:
        return Decoded(as_utf8, "utf-8", "utf8")
    detected = _detect(data)
    if detected is not None:
        return Decoded(data.decode(detected, errors="replace"), detected, "detected")
    return Decoded(data.decode("cp1252", errors="replace"), "cp1252", "fallback")
