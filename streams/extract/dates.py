"""Publication dates as pages state them: machine-readable first, then localised text.

``parse_machine_date`` reads ISO 8601 and the other formats that JSON-LD, ``<meta>`` and
``<time datetime>`` carry. ``find_page_date`` falls back to htmldate (pinned; its fast mode, no
extensive search, so it stays within the per-page time budget) and then to dateparser on short
visible date strings near the headline ("11 mars 2025 à 10h15", "1 июня 2025", "2025年12月26日")
restricted to the page's language. Dates in the future (beyond a day of clock skew) or before
1995 are rejected: they are typos, event dates or copyright lines, not publication dates.
"""

from __future__ import annotations

import re
from copy import deepcopy
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from lxml.html import HtmlElement

__all__ = ["find_page_date", "parse_machine_date", "plausible"]

_EARLIEST: Final = datetime(1995, 1, 1, tzinfo=UTC)
_CJK_DATE: Final = re.compile(
    r"(\d{4})\s*年\s*(\d{1,2})\s*月\s*(\d{1,2})\s*日(?:\s*(\d{1,2})[:：](\d{2}))?"
)
_NUMERIC: Final = re.compile(r"\b(\d{1,2})[./](\d{1,2})[./](\d{4})(?:,?\s+(\d{1,2}):(\d{2}))?")
# Visible date candidates: elements whose class/id says date/time, and short text lines.
_DATE_HINT: Final = re.compile(r"date|time|publish|posted|meta|info|byline|created", re.I)
_DIGITS: Final = str.maketrans("٠١٢٣٤٥٦٧٨٩۰۱۲۳۴۵۶۷۸۹", "01234567890123456789")


def plausible(value: datetime | None, now: datetime | None = None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    limit = (now or datetime.now(UTC)) + timedelta(days=1)
    return value if _EARLIEST <= value <= limit else None


def parse_machine_date(raw: Any) -> datetime | None:
    """ISO 8601 (with or without zone, 'Z', compact forms) or RFC 2822; None when unparseable."""
    if not isinstance(raw, str):
        return None
    text = raw.strip()
    if not text:
        return None
    iso = text.replace("Z", "+00:00").replace("z", "+00:00")
    if re.fullmatch(r"\d{8}", iso):
        iso = f"{iso[:4]}-{iso[4:6]}-{iso[6:]}"
    iso = re.sub(r"([+-]\d{2})(\d{2})$", r"\1:\2", iso)
    try:
        return plausible(datetime.fromisoformat(iso))
    except ValueError:
        pass
    try:
        from email.utils import parsedate_to_datetime

        return plausible(parsedate_to_datetime(text))
    except (TypeError, ValueError, IndexError):
        return None


def _cjk(text: str) -> datetime | None:
    m = _CJK_DATE.search(text)
    if not m:
        return None
    y, mo, d, h, mi = (int(g) if g else 0 for g in m.groups())
    try:
        return plausible(datetime(y, mo, d, h, mi))
    except ValueError:
        return None


def _numeric(text: str) -> datetime | None:
    m = _NUMERIC.search(text)
    if not m:
        return None
    d, mo, y, h, mi = (int(g) if g else 0 for g in m.groups())
    try:
        return plausible(datetime(y, mo, d, h, mi))
    except ValueError:
        return None


def _candidates(tree: HtmlElement, limit: int = 40) -> list[str]:
    out: list[str] = []
    for el in tree.iter("span", "div", "p", "time", "td", "small", "li"):
        attrs = f"{el.get('class', '')} {el.get('id', '')}"
        if not _DATE_HINT.search(attrs):
            continue
        text = " ".join(el.text_content().split())
        if 6 <= len(text) <= 120 and any(c.isdigit() for c in text):
            out.append(text)
            if len(out) >= limit:
                break
    return out


# "18 مارس 2025", "1 июня 2025", "11 mars 2025", "March 14, 2025", "2 de abril de 2025"
_WORD_DATE: Final = re.compile(
    r"\b\d{1,2}\.?\s+(?:de\s+)?[^\W\d_]{3,}\.?,?\s+(?:de\s+)?\d{4}"
    r"|\b[^\W\d_]{3,}\.?\s+\d{1,2},?\s+\d{4}"
)


def _dateparser(texts: list[str], language: str) -> datetime | None:
    """Localised month names, parsed by dateparser in the page's language only.

    dateparser is given the matched date phrase, never a whole line, and one language: with
    every language loaded a single call takes seconds, and free-text search invents dates.
    """
    import dateparser

    settings: Any = {"PREFER_DATES_FROM": "past", "REQUIRE_PARTS": ["day", "month", "year"]}
    for text in texts:
        for m in _WORD_DATE.finditer(text.translate(_DIGITS)):
            try:
                value = dateparser.parse(m.group(0), languages=[language], settings=settings)
            except Exception:  # noqa: BLE001, S112 - dateparser raises assorted errors
                continue
            good = plausible(value)
            if good is not None:
                return good
    return None


def find_page_date(
    tree: HtmlElement, language: str | None, *, text_only: bool = False
) -> tuple[datetime | None, str]:
    """A date from the page's visible text; (date, method) or (None, '').

    ``language`` is the page's (declared or detected); without one, dateparser is not tried.
    """
    texts = _candidates(tree)
    for text in texts:
        for parse in (_cjk, _numeric):
            value = parse(text.translate(_DIGITS))
            if value is not None:
                return value, "text"
    if texts and language:
        value = _dateparser(texts, language)
        if value is not None:
            return value, "dateparser"
    if text_only:
        return None, ""
    try:
        from htmldate import find_date

        found = find_date(
            deepcopy(tree), extensive_search=False, original_date=True, outputformat="%Y-%m-%d"
        )
    except Exception:  # noqa: BLE001 - a date is optional; never fail the page for it
        found = None
    if found:
        value = parse_machine_date(found)
        if value is not None:
            return value, "htmldate"
    return None, ""
