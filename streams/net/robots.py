"""robots.txt decisions (RFC 9309) for the page fetcher: what a robots.txt fetch means for a host.

Foundation layer (``streams/net``); pure (no I/O): ``streams.net.pages.PageFetcher`` fetches
``/robots.txt`` with the guarded ``Fetcher`` and turns the ``FetchResult`` into ``RobotsRules``
here, then asks them per URL. Parsing is protego's (Google's matching: longest match wins,
``*`` and ``$`` wildcards, ``Allow`` beats ``Disallow`` on a tie).

What a robots.txt answer means (RFC 9309 §2.3.1):

- 2xx: the rules in the body (UTF-8; bytes that are not are replaced, a BOM is dropped).
- 4xx except 429 (404, 401, 403, 410, ...): "unavailable" -> every path allowed.
- Redirect loop, more hops than allowed or a redirect to nowhere usable: unavailable ->
  allowed (RFC: after 5 hops the crawler MAY assume unavailable).
- 5xx, 429, timeout, DNS/connect/TLS failures, a broken or oversized body: "unreachable" ->
  complete disallow (RFC: MUST). We decided on RFC 9309's rule rather than "allow on error":
  a site whose robots.txt is failing is often a site in trouble, and we come back after
  ``error_ttl_s`` anyway. Exception: while an earlier good copy exists, it keeps applying
  during the outage (RFC 9309 §2.4 allows using a cached copy when unreachable); the host is
  asked again after ``error_ttl_s``.
- The address guard refusing the host (SSRF) or an unusable URL: ``refused`` -> the page is
  ``refused`` too, never reported as a robots decision.
- Good copies live ``ttl_s`` (RFC 9309: SHOULD NOT use a copy for more than 24 hours).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from protego import Protego

from streams.net.types import FetchResult

__all__ = ["RobotsKind", "RobotsRules", "merge_rules", "robots_agent", "rules_from_fetch"]

RobotsKind = Literal["rules", "allow_all", "disallow_all", "refused"]

# Answers that mean "robots.txt exists nowhere we may look": everything allowed.
_UNAVAILABLE_REDIRECTS: Final = frozenset({"redirect_loop", "too_many_redirects", "bad_redirect"})
_REFUSED: Final = frozenset({"blocked_address", "bad_url"})


@dataclass(frozen=True, slots=True)
class RobotsRules:
    """One host's robots.txt verdict, valid until ``expires_at`` (event-loop time)."""

    kind: RobotsKind
    reason: str  # "http_200", "http_404", "http_503", "timeout", "stale_copy:http_503", ...
    expires_at: float
    parser: Protego | None = None  # set for kind "rules"

    def allows(self, url: str, agent: str) -> bool:
        if self.kind == "allow_all":
            return True
        if self.kind == "rules" and self.parser is not None:
            return bool(self.parser.can_fetch(url, agent))
        return False

    def crawl_delay(self, agent: str) -> float | None:
        """The group's Crawl-delay in seconds (non-standard but common), if any."""
        if self.parser is None:
            return None
        delay = self.parser.crawl_delay(agent)
        return None if delay is None else max(float(delay), 0.0)


def robots_agent(user_agent: str) -> str:
    """The product token robots.txt groups are matched against: ``newsflow/0.1 (...)`` ->
    ``newsflow`` (RFC 9309 §2.2.1: the token, not the whole User-Agent)."""
    token = user_agent.strip().split("/", 1)[0].split(None, 1)
    return token[0] if token and token[0] else user_agent.strip()


def rules_from_fetch(
    result: FetchResult, *, now: float, ttl_s: float, error_ttl_s: float
) -> RobotsRules:
    """What one robots.txt fetch says (see the module docstring for the table)."""
    if result.status == "ok":
        text = (result.body or b"").decode("utf-8", errors="replace").lstrip("\ufeff")
        return RobotsRules(
            kind="rules",
            reason=f"http_{result.http_status}",
            expires_at=now + ttl_s,
            parser=Protego.parse(text),
        )
    error = result.error or "internal"
    code = result.http_status
    if error.startswith("http_") and code is not None and 400 <= code < 500 and code != 429:
        return RobotsRules(kind="allow_all", reason=error, expires_at=now + ttl_s)
    if error in _UNAVAILABLE_REDIRECTS:
        return RobotsRules(kind="allow_all", reason=error, expires_at=now + ttl_s)
    if error in _REFUSED:
        return RobotsRules(kind="refused", reason=error, expires_at=now + error_ttl_s)
    return RobotsRules(kind="disallow_all", reason=error, expires_at=now + error_ttl_s)


def merge_rules(previous: RobotsRules | None, fresh: RobotsRules) -> RobotsRules:
    """The verdict to keep: ``fresh``, except that an outage (``disallow_all``) does not throw
    away an earlier good copy; that copy is used until the next try, ``fresh.expires_at``."""
    if (
        fresh.kind == "disallow_all"
        and previous is not None
        and previous.kind in ("rules", "allow_all")
    ):
        return RobotsRules(
            kind=previous.kind,
            reason=f"stale_copy:{fresh.reason}",
            expires_at=fresh.expires_at,
            parser=previous.parser,
        )
    return fresh
