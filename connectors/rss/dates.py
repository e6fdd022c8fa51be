"""A feed's date string -> an aware UTC datetime, or None with the reason (``published_at_note``).

Flow: ``parse.parse_feed`` gives every entry's raw ``published``/``updated`` string to one
``DateReader`` per feed; what it returns becomes ``published_at`` / ``published_at_note``.

feedparser's own parsed dates are not used: its W3DTF handler normalises impossible values
through ``mktime`` ("2024-13-45T25:61:61Z" became 2025-01-01), drops the sign of a year
("-2024-01-01" became 2026-07-21, "-0001-01-01" became 2000-01-01) and reads "2024年3月1日" as
2024-12-01 (a month it invented), while it cannot read "Thu,28 Jul 2022 4:35:5 GMT+9",
"06.02.2025" or any non-English month name. Rules here:

- A fast path per common shape (ISO 8601, RFC 822 with English names however sloppy the spacing,
  day.month.year, CJK year/month/day). A string of one of these shapes with an impossible value
  (month 13, hour 25, a signed or zero year, an offset beyond 14 h) is *rejected*, never
  normalised into another date.
- Anything else goes to dateparser, with the feed's language when it knows it, only absolute
  dates, and day, month and year all required (``STRICT_PARSING``): a date without a year or
  a day is dropped, never completed from today.
- Dates before 1990 or more than a day in the future are dropped (a CMS default or a clock
  error, not a publication date).

Cost (measured on this machine, warm, 2 busy cores): the fast paths take 15-22 us a date
(feedparser's own RFC 822 reader: 15 us); dateparser took 1-3 ms a date with a language and
60-170 ms without one (it then tries all of its ~200 languages, and the first such call cost
1.8 s of loading; 17 common news languages cost 12-36 ms instead). So the fallback runs only
after the fast paths, only on text with a digit in it, with results memoised per feed; the
language that read a date is then the only one tried for the feed's next dates, and a month
name it read ("Set") joins the fast path for this feed. One feed gets at most
``FALLBACK_BUDGET_S`` seconds of fallback CPU time in all (thread CPU time: a busy machine must
not date fewer items). Measured: 1,000 Portuguese RFC 822 dates ("Seg, 24 Set 2018 10:00:00
-0300") parsed in 0.26 s CPU with the hint and 0.43 s without (all dated; RFC 822 in English:
0.23 s); before the learning, 547 and 419 of them were dated within a 0.5 s budget.
"""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime, timedelta
from typing import Any

MIN_DATE = datetime(1990, 1, 1, tzinfo=UTC)
FUTURE_SLACK = timedelta(days=1)
FALLBACK_BUDGET_S = 1.5
_NOTE_RAW_CHARS = 100
_MAX_RAW_CHARS = 200  # longer is not a date; dateparser's cost grows with the length
_MAX_OFFSET_MIN = 14 * 60
# Tried when the feed declares no language dateparser knows: every one of its ~200 languages
# cost ~5x more a date (60-170 ms) than these (12-36 ms).
_NEWS_LANGUAGES = (
    "en", "es", "fr", "de", "pt", "it", "ru", "ar", "tr", "nl", "pl", "id", "fa", "uk", "zh",
    "ja", "ko",
)  # fmt: skip

_MONTHS = {
    name: number
    for number, names in enumerate(
        (
            ("jan", "january"),
            ("feb", "february"),
            ("mar", "march"),
            ("apr", "april"),
            ("may",),
            ("jun", "june"),
            ("jul", "july"),
            ("aug", "august"),
            ("sep", "sept", "september"),
            ("oct", "october"),
            ("nov", "november"),
            ("dec", "december"),
        ),
        start=1,
    )
    for name in names
}
# Zone names RFC 822 defines (military single letters aside) plus the UTC spellings.
_ZONES = {
    "z": 0,
    "ut": 0,
    "utc": 0,
    "gmt": 0,
    "est": -300,
    "edt": -240,
    "cst": -360,
    "cdt": -300,
    "mst": -420,
    "mdt": -360,
    "pst": -480,
    "pdt": -420,
}
_TIME = r"(?P<h>\d{1,2}):(?P<mi>\d{1,2})(?::(?P<s>\d{1,2})(?:[.,]\d{1,9})?)?"
# "Z", "UTC", "GMT+9", "GMT+09:00", "+0100", "-03:00", "+09", "EST"; group "zone" is all of it.
_ZONE = r"(?P<zone>[A-Za-z]{1,5}(?:\s*[+-]\d{1,2}(?::?\d{2})?)?|[+-]\d{1,2}(?::?\d{2})?)"
_ISO = re.compile(
    r"(?P<sign>[+-])?(?P<y>\d{4,})-(?P<mo>\d{1,2})-(?P<d>\d{1,2})"
    rf"(?:(?:T|\s+){_TIME})?\s*(?:{_ZONE})?",
    re.IGNORECASE,
)
_RFC822 = re.compile(
    r"(?:(?P<wday>[A-Za-z]{2,12})\.?\s*,?\s*)?"
    r"(?P<d>\d{1,2})[\s-]*(?P<mon>[A-Za-z]{3,9})\.?[\s-]*(?P<y>\d{4}|\d{2})"
    rf"(?:[\s,T]+{_TIME})?\s*(?:{_ZONE})?",
)
# 06.02.2025 (day first: the dotted and dashed forms are day-month-year wherever they are used),
# and 2025.02.06 / 2025/02/06 (year first). Slashed day/month orders differ by country: left to
# the fallback with the feed's language.
_DMY = re.compile(rf"(?P<d>\d{{1,2}})([.-])(?P<mo>\d{{1,2}})\2(?P<y>\d{{4}})(?:\s+{_TIME})?")
_YMD = re.compile(rf"(?P<y>\d{{4}})([./])(?P<mo>\d{{1,2}})\2(?P<d>\d{{1,2}})(?:\s+{_TIME})?")
_CJK = re.compile(
    r"(?P<y>\d{4})\s*[年년]\s*(?P<mo>\d{1,2})\s*[月월]\s*(?P<d>\d{1,2})\s*[日일号]?"
    rf"(?:\s*{_TIME})?"
)
_OFFSET = re.compile(r"(?P<sign>[+-])(?P<hh>\d{1,2})(?::?(?P<mm>\d{2}))?")
_SIGNED_YEAR = re.compile(r"\s*[-\u2212]\s*\d")
_DIGIT = re.compile(r"\d")


class _Impossible(ValueError):
    """A date of a known shape whose values cannot be a date (never normalised)."""


def _note(reason: str, raw: str) -> str:
    return f"{reason}: {' '.join(raw.split())[:_NOTE_RAW_CHARS]}"


def _offset_minutes(zone: str | None) -> int | None:
    """Minutes east of UTC; None when the zone is a name this table does not know."""
    if not zone:
        return 0  # no zone: UTC, as feedparser and RFC 3339 readers assume
    zone = zone.strip().lower()
    name = zone.rstrip("+-0123456789: ")
    rest = zone[len(name) :].strip()
    if name and name not in _ZONES:
        return None
    base = _ZONES.get(name, 0)
    if not rest:
        return base
    match = _OFFSET.fullmatch(rest)
    if match is None:
        raise _Impossible("offset")
    hours, minutes = int(match["hh"]), int(match["mm"] or 0)
    if minutes >= 60:
        raise _Impossible("offset")
    total = hours * 60 + minutes
    total = -total if match["sign"] == "-" else total
    if abs(base + total) > _MAX_OFFSET_MIN:
        raise _Impossible("offset")
    return base + total


def _build(match: re.Match[str], month: int, offset: int) -> datetime:
    year = int(match["y"])
    if len(match["y"]) == 2:  # RFC 822's two-digit years
        year += 2000 if year < 70 else 1900
    hour = int(match["h"] or 0)
    minute = int(match["mi"] or 0)
    second = int(match["s"] or 0)
    if second == 60:  # a leap second
        second = 59
    try:
        naive = datetime(year, month, int(match["d"]), hour, minute, second)
    except ValueError:
        raise _Impossible("date") from None
    return (naive - timedelta(minutes=offset)).replace(tzinfo=UTC)


def _fast(raw: str, months: dict[str, int] | None = None) -> datetime | None:
    """The date when ``raw`` has one of the fast shapes; None when it has none of them.

    ``months``: month names of another language learnt from this feed's earlier dates.
    """
    match = _ISO.fullmatch(raw)
    if match is not None:
        if match["sign"] or len(match["y"]) > 4:
            raise _Impossible("year")
        offset = _offset_minutes(match["zone"])
        if offset is None:
            return None
        return _build(match, int(match["mo"]), offset)
    match = _RFC822.fullmatch(raw)
    if match is not None:
        name = match["mon"].lower()
        month = _MONTHS.get(name) or (months.get(name) if months else None)
        if month is None:
            return None  # another language's month name: the fallback knows it
        offset = _offset_minutes(match["zone"])
        if offset is None:
            return None
        return _build(match, month, offset)
    for pattern in (_DMY, _YMD, _CJK):
        groups = pattern.fullmatch(raw)
        if groups is not None:
            return _build(groups, int(groups["mo"]), 0)
    return None


def _dateparser_language(hint: str | None) -> str | None:
    if not hint:
        return None
    from dateparser.data.languages_info import language_order

    primary = re.split(r"[-_]", hint.strip().lower(), maxsplit=1)[0]
    return primary if primary in language_order else None


class DateReader:
    """Reads the dates of one feed: fast paths, then dateparser within a time budget."""

    def __init__(self, language: str | None = None, *, budget_s: float = FALLBACK_BUDGET_S):
        self._language = _dateparser_language(language)
        self._budget_s = budget_s
        self._memo: dict[str, datetime | None] = {}
        self._months: dict[str, int] = {}

    def _learn(self, text: str, stamp: datetime) -> None:
        """Remember the month name of an RFC 822-shaped date dateparser just read ("Set" is
        September in this feed), so the feed's next dates take the fast path: a 1,000-item
        Portuguese feed needs a dozen dateparser calls, not a thousand. Only learnt when
        dateparser's answer, back in the string's own zone, has the string's day and year.
        """
        match = _RFC822.fullmatch(text)
        if match is None:
            return
        name = match["mon"].lower()
        if name in _MONTHS or name in self._months:
            return
        try:
            offset = _offset_minutes(match["zone"])
        except _Impossible:
            return
        if offset is None:
            return
        local = stamp + timedelta(minutes=offset)
        if local.day == int(match["d"]) and str(local.year).endswith(match["y"]):
            self._months[match["mon"].lower()] = local.month

    def read(self, raw: str, now: datetime) -> tuple[datetime | None, str | None]:
        """(date in UTC, None) or (None, why it was dropped)."""
        text = raw.strip()
        if not text:
            return None, None
        if len(text) > _MAX_RAW_CHARS:
            return None, _note("unparseable", text)
        if _SIGNED_YEAR.match(text):
            return None, _note("impossible", text)  # "-2024-01-01", "-0001-01-01"
        try:
            stamp = _fast(text, self._months)
        except _Impossible:
            return None, _note("impossible", text)
        if stamp is None:
            if not _DIGIT.search(text):
                return None, _note("unparseable", text)  # no day or year in it: not a date
            if text in self._memo:
                stamp = self._memo[text]
            elif self._budget_s <= 0:
                return None, _note("unparseable (date fallback budget spent)", text)
            else:
                started = time.thread_time()
                stamp = self._fallback(text)
                self._budget_s -= time.thread_time() - started
                self._memo[text] = stamp
                if stamp is not None:
                    self._learn(text, stamp)
            if stamp is None:
                return None, _note("unparseable", text)
        if stamp < MIN_DATE:
            return None, _note("before_1990", text)
        if stamp > now + FUTURE_SLACK:
            return None, _note("in_future", text)
        return stamp, None

    def _fallback(self, text: str) -> datetime | None:
        from dateparser.date import DateDataParser

        settings: dict[str, Any] = {
            "REQUIRE_PARTS": ["day", "month", "year"],
            "STRICT_PARSING": True,
            "RETURN_AS_TIMEZONE_AWARE": True,
            "TIMEZONE": "UTC",
            "TO_TIMEZONE": "UTC",
            "PARSERS": ["absolute-time"],
        }
        languages = [self._language] if self._language else list(_NEWS_LANGUAGES)
        try:
            data = DateDataParser(languages=languages, settings=settings).get_date_data(text)
        except (ValueError, OverflowError, TypeError):
            return None
        found = data.date_obj
        if found is None:
            return None
        if self._language is None and data.locale:
            # The language that read it: the feed's next dates try that one only (1-3 ms a
            # date instead of 12-36 ms).
            self._language = _dateparser_language(data.locale)
        stamp: datetime = found if found.tzinfo is not None else found.replace(tzinfo=UTC)
        return stamp.astimezone(UTC)


def parse_date(
    raw: str, now: datetime, language: str | None = None
) -> tuple[datetime | None, str | None]:
    """One date on its own (tests, tools): ``DateReader(language).read(raw, now)``."""
    return DateReader(language).read(raw, now)
