"""Value types of one guarded HTTP GET (no I/O here): what a fetch may spend and what it got.

Foundation layer (``streams/net``). ``Fetcher.fetch`` -> ``FetchResult``; the feed connector
parses its body as a feed, the page fetcher (``streams.net.pages``) hands it to extraction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

__all__ = ["FetchLimits", "FetchResult", "FetchStatus", "Validators"]

FetchStatus = Literal["ok", "not_modified", "error"]


@dataclass(frozen=True, slots=True)
class Validators:
    etag: str | None = None
    last_modified: str | None = None


@dataclass(frozen=True, slots=True)
class FetchLimits:
    connect_timeout_s: float = 10.0
    read_timeout_s: float = 30.0  # longest silence between two chunks
    total_timeout_s: float = 60.0
    max_compressed_bytes: int = 10 * 1024 * 1024
    max_body_bytes: int = 20 * 1024 * 1024  # after decompression (gzip bombs)
    max_redirects: int = 5
    retry_after_cap_s: float = 6 * 3600.0


@dataclass(frozen=True, slots=True)
class FetchResult:
    status: FetchStatus
    url: str  # the URL finally answered (after redirects)
    http_status: int | None = None
    permanent_url: str | None = None  # set when every redirect hop was permanent (301/308)
    body: bytes | None = None  # decoded (decompressed) body for status "ok"
    content_type: str | None = None
    validators: Validators = Validators()
    cache_max_age_s: int | None = None  # Cache-Control: max-age
    retry_after_s: float | None = None  # Retry-After (capped), on 429/503
    error: str | None = (
        None  # short class: "timeout", "blocked_address", "too_large", "http_404"...
    )
    error_message: str | None = None
    bytes_compressed: int = 0  # bytes on the wire
    elapsed_s: float = 0.0
    # Response headers of the final answer (status "ok", 429 and 503), names as sent, in order;
    # empty otherwise. The page fetcher reads Content-Language, Link and friends from them.
    headers: tuple[tuple[str, str], ...] = ()
