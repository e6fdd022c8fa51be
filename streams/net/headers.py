"""Pure readers of HTTP response headers shared by every fetch (feeds and pages): Retry-After,
Cache-Control max-age and the charset of a Content-Type. Foundation layer (``streams/net``)."""

from __future__ import annotations

import codecs
import contextlib
import re
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Final

__all__ = ["content_type_charset", "parse_max_age", "parse_retry_after"]

_DELTA_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(
    value: str | None, *, cap_s: float, now: datetime | None = None, date: str | None = None
) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), clamped to
    ``[0, cap_s]``; ``None`` when absent or unreadable. A date in the past means 0.

    ``date``: the response's Date header. An HTTP-date counts from it when readable (both
    are the server's clock), so a local clock hours off does not turn "retry in 10 minutes"
    into hours (or into 0)."""
    if now is None and date:
        with contextlib.suppress(TypeError, ValueError, IndexError):
            now = parsedate_to_datetime(date)
            if now.tzinfo is None:
                now = now.replace(tzinfo=UTC)
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
    else:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:  # "-0000" parses naive; HTTP dates are UTC
            when = when.replace(tzinfo=UTC)
        seconds = (when - (now or datetime.now(UTC))).total_seconds()
    return min(max(seconds, 0.0), cap_s)


_MAX_AGE_CAP: Final = 2**31 - 1


def parse_max_age(cache_control: str | None) -> int | None:
    """``max-age`` from a Cache-Control value (several header lines joined by commas).
    The first ``max-age`` decides (RFC 9111 §4.2.1); ``s-maxage`` is for shared caches, not us.
    ``None`` when absent or malformed."""
    if not cache_control:
        return None
    for part in cache_control.split(","):
        name, sep, arg = part.partition("=")
        if name.strip().lower() != "max-age":
            continue
        arg = arg.strip()
        if len(arg) >= 2 and arg[0] == arg[-1] == '"':
            arg = arg[1:-1]
        if not sep or not arg.isascii() or not arg.isdigit():
            return None
        return min(int(arg), _MAX_AGE_CAP)
    return None


def content_type_charset(content_type: str | None) -> str | None:
    """The ``charset`` parameter of a Content-Type value, lower-cased and unquoted, when it
    names a codec Python knows (``None`` otherwise: absent, empty or unknown, such as
    ``charset=foo``). Only the HTTP header's word; a page's BOM and ``<meta charset>`` are for
    the extractor to weigh (a BOM beats this header, per the HTML standard)."""
    if not content_type:
        return None
    for param in content_type.split(";")[1:]:
        name, sep, value = param.partition("=")
        if not sep or name.strip().lower() != "charset":
            continue
        value = value.strip().strip("\"'").strip().lower()
        if not value:
            return None
        try:
            codecs.lookup(value)
        except LookupError:
            return None
        return value
    return None
