"""Feed dates (issue 14.5): localised and sloppy dates read, impossible ones dropped with a note.

Checked through ``parse_feed`` (what the connector really does) and, for the property, through
``DateReader`` directly: whatever the string, the result is None or a date within bounds.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from connectors.rss.dates import FUTURE_SLACK, MIN_DATE, DateReader
from connectors.rss.parse import parse_feed

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)
BASE = "https://dates.example.net/feed.xml"


def _feed(dates: list[str], language: str | None = None) -> bytes:
    lang = f"<language>{language}</language>" if language else ""
    items = "".join(
        f"<item><title>T{i}</title><link>https://dates.example.net/{i}</link>"
        f"<pubDate>{d}</pubDate></item>"
        for i, d in enumerate(dates)
    )
    return (
        f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>D</title>'
        f"<link>https://dates.example.net/</link>{lang}{items}</channel></rss>"
    ).encode()


def _published(
    date: str, language: str | None = None, hint: str | None = None
) -> tuple[str | None, str | None]:
    parsed = parse_feed(_feed([date], language), base_url=BASE, now=NOW, language=hint)
    assert len(parsed.items) == 1, parsed
    item = parsed.items[0]
    stamp = item.published_at.isoformat() if item.published_at else None
    return stamp, item.published_at_note


@pytest.mark.parametrize(
    ("raw", "language", "expected"),
    [
        # no space after the comma, one-digit hour/second, GMT+9 (= UTC+09:00)
        ("Thu,28 Jul 2022 4:35:5 GMT+9", None, "2022-07-27T19:35:05+00:00"),
        ("Seg, 24 Set 2018 10:00:00 -0300", "pt-BR", "2018-09-24T13:00:00+00:00"),
        ("mer, 16 nov 2022 10:00:00 +0100", "fr", "2022-11-16T09:00:00+00:00"),
        ("06.02.2025", "de", "2025-02-06T00:00:00+00:00"),
        ("06.02.2025", None, "2025-02-06T00:00:00+00:00"),
        ("2024年3月1日", "zh-CN", "2024-03-01T00:00:00+00:00"),
        ("2024年3月1日", None, "2024-03-01T00:00:00+00:00"),
        ("2024년 3월 1일", "ko", "2024-03-01T00:00:00+00:00"),
        ("16 listopada 2022 10:00", "pl", "2022-11-16T10:00:00+00:00"),
        ("Tue, 10 Jun 2003 04:00:00 GMT", None, "2003-06-10T04:00:00+00:00"),
        ("2024-03-01T10:00:00+02:00", None, "2024-03-01T08:00:00+00:00"),
        ("Fri, 01 Mar 2024 10:00:00 EST", None, "2024-03-01T15:00:00+00:00"),
    ],
)
def test_localised_and_sloppy_dates_are_read(raw: str, language: str | None, expected: str) -> None:
    stamp, note = _published(raw, language)
    assert (stamp, note) == (expected, None)


def test_the_operator_language_hint_is_used() -> None:
    # "Set" is September only in Portuguese/Italian; the feed itself declares nothing.
    assert _published("Seg, 24 Set 2018 10:00:00 -0300", None, "pt")[0] == (
        "2018-09-24T13:00:00+00:00"
    )


@pytest.mark.parametrize(
    "raw",
    [
        "2024-13-45T25:61:61Z",  # feedparser: 2025-01-01
        "-2024-01-01T00:00:00Z",  # feedparser: 2026-07-21
        "-0001-01-01",  # feedparser: 2000-01-01
        "2024-02-30T10:00:00Z",
        "Sun, 31 Feb 2024 10:00:00 GMT",
        "2024-03-01T10:00:00+25:00",
        "0000-00-00 00:00:00",
        "32.01.2024",
    ],
)
def test_impossible_dates_are_dropped_with_a_note(raw: str) -> None:
    stamp, note = _published(raw)
    assert stamp is None
    assert note is not None and note.startswith("impossible: ")


@pytest.mark.parametrize(
    ("raw", "why"),
    [
        ("March 2024", "unparseable"),  # no day: never invented
        ("1 March", "unparseable"),  # no year: never taken from today
        ("yesterday", "unparseable"),
        ("Mon, 01 Jan 1979 00:00:00 GMT", "before_1990"),
        ("Fri, 01 Jan 2100 00:00:00 GMT", "in_future"),
    ],
)
def test_incomplete_or_out_of_range_dates_say_why(raw: str, why: str) -> None:
    stamp, note = _published(raw, "en")
    assert stamp is None
    assert note == f"{why}: {raw}"


def test_the_fallback_has_a_time_budget_per_feed() -> None:
    reader = DateReader("pt", budget_s=0.0)
    stamp, note = reader.read("Seg, 24 Set 2018 10:00:00 -0300", NOW)
    assert stamp is None and note is not None and "budget" in note
    # the fast paths do not need the budget
    assert reader.read("Tue, 10 Jun 2003 04:00:00 GMT", NOW)[0] is not None


_DATE_ALPHABET = st.sampled_from(list("0123456789-+:.,/ TZtzGMTUC年月日Jan Feb mar nov Set Seg"))


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.one_of(
        st.text(alphabet=_DATE_ALPHABET, max_size=40),
        st.text(max_size=40),
        st.builds(
            lambda sign, y, mo, d, h, mi, s, tz: (
                f"{sign}{y:04d}-{mo:02d}-{d:02d}T{h:02d}:{mi:02d}:{s:02d}{tz}"
            ),
            st.sampled_from(["", "-", "+"]),
            st.integers(0, 9999),
            st.integers(0, 99),
            st.integers(0, 99),
            st.integers(0, 99),
            st.integers(0, 99),
            st.integers(0, 99),
            st.sampled_from(["Z", "+01:00", "-14:00", "+15:00", "", "GMT+9"]),
        ),
    ),
    st.sampled_from([None, "en", "fr", "pt", "zh", "xx"]),
)
def test_any_string_gives_a_date_within_bounds_or_none(raw: str, language: str | None) -> None:
    stamp, note = DateReader(language).read(raw, NOW)
    if stamp is None:
        assert note is None or note.split(":", 1)[0] in {
            "impossible",
            "unparseable",
            "unparseable (date fallback budget spent)",
            "before_1990",
            "in_future",
        }
        return
    assert note is None
    assert stamp.tzinfo is not None and stamp.utcoffset() == UTC.utcoffset(None)
    assert MIN_DATE <= stamp <= NOW + FUTURE_SLACK
    if raw.lstrip().startswith(("-", "\u2212")):
        raise AssertionError(f"a signed year became {stamp}")


def test_a_long_portuguese_feed_is_dated_within_the_budget() -> None:
    days = ["Seg", "Ter", "Qua", "Qui", "Sex"]
    months = ["Jan", "Fev", "Mar", "Abr", "Mai", "Jun", "Jul", "Ago", "Set", "Out", "Nov", "Dez"]
    dates = [
        f"{days[i % 5]}, {1 + i % 28:02d} {months[i % 12]} 2024 {i % 24:02d}:{i % 60:02d}:00 -0300"
        for i in range(600)
    ]
    for hint in ("pt", None):
        parsed = parse_feed(_feed(dates), base_url=BASE, now=NOW, language=hint)
        dated = [i.published_at for i in parsed.items]
        assert all(dated), [i.published_at_note for i in parsed.items if not i.published_at][:3]
        assert dated[8] == datetime(2024, 9, 9, 11, 8, tzinfo=UTC)  # "Qui, 09 Set 2024 08:08"
