"""Canonical article URLs and the key hashed into ``article_id``.

Flow: ``parse.parse_feed`` takes each entry's link (already resolved by feedparser, or resolved
here against the feed URL) -> ``canonical_url`` -> ``item_key`` ->
``streams.schema.ids.article_id``.
The same article reached through different feeds, newsletters or share buttons must get the
same id, so everything that does not change which page a URL names is normalised away:
scheme and host case, IDNA, default ports, userinfo, fragments, tracking parameters and
percent-encoding variants. Everything that may change the page (path case, the order and
values of the remaining query parameters, trailing slashes) is kept as published.

Pure functions, no I/O.
"""

from __future__ import annotations

import re
from urllib.parse import urljoin, urlsplit

from connectors.rss.types import ParseLimits

_DEFAULT_LIMITS = ParseLimits()

# Query parameters that only say where a click came from. Matched case-insensitively on the
# (percent-decoded) parameter name. Deliberately no generic words such as "ref", "source" or
# "partner": dropping a parameter that does select content would merge two articles into one id
# (data loss), while keeping a tracker only costs a duplicate.
TRACKING_PARAMS: frozenset[str] = frozenset(
    {
        # Google Ads / Analytics
        "gclid",
        "gclsrc",
        "dclid",
        "gbraid",
        "wbraid",
        "_ga",
        "_gl",
        # Microsoft, Yandex, Meta, Instagram, X, TikTok, LinkedIn
        "msclkid",
        "yclid",
        "ysclid",
        "fbclid",
        "igshid",
        "igsh",
        "twclid",
        "ttclid",
        "li_fat_id",
        "fb_action_ids",
        "fb_action_types",
        "fb_ref",
        "fb_source",
        "action_object_map",
        "action_type_map",
        "action_ref_map",
        # Mailchimp, HubSpot, Marketo, Vero, Omeda
        "mc_cid",
        "mc_eid",
        "_hsenc",
        "_hsmi",
        "__hstc",
        "__hssc",
        "__hsfp",
        "hsctatracking",
        "mkt_tok",
        "vero_id",
        "vero_conv",
        "oly_anon_id",
        "oly_enc_id",
        "rb_clickid",
        # Analytics suites common on news sites (AT Internet: BBC, Le Monde; comScore;
        # Adobe; Webtrends; Matomo/Piwik) and social share buttons
        "xtor",
        "at_medium",
        "at_campaign",
        "ns_mchannel",
        "ns_source",
        "ns_campaign",
        "ns_linkname",
        "ns_fee",
        "s_cid",
        "wt.mc_id",
        "wt.mc_ev",
        "pk_campaign",
        "pk_kwd",
        "pk_keyword",
        "pk_source",
        "pk_medium",
        "pk_content",
        "pk_cid",
        "cmpid",
        "icid",
        "ncid",
        "ocid",
        "smid",
        "ref_src",
        "ref_url",
        "sr_share",
        "spm",
    }
)
# Any parameter whose name starts with one of these is tracking (utm_source, utm_medium,
# utm_campaign, utm_term, utm_content, utm_id and the many vendor-specific utm_* variants).
TRACKING_PREFIXES: tuple[str, ...] = ("utm_", "mtm_", "hsa_")

_HTTP_SCHEMES = frozenset({"http", "https"})
_DEFAULT_PORTS = {"http": 80, "https": 443}

# RFC 3986 unreserved characters: %-escapes of these are decoded, everything else that is not
# allowed raw is %-encoded, so both spellings of one URL compare equal.
_UNRESERVED = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
# A %-escape, or one character that may not appear raw in a path or query (which includes a
# "%" not followed by two hex digits, spaces, quotes and any non-ASCII character).
_ESCAPE_OR_UNSAFE = re.compile(r"%[0-9A-Fa-f]{2}|[^A-Za-z0-9\-._~!$&'()*+,;=:@/?]")
# WHATWG URL parsing removes ASCII tab and newline anywhere (links wrapped by feed generators).
_TAB_NEWLINE = re.compile(r"[\t\n\r]")
# Already absolute (feedparser resolved it): urljoin, the costliest step, has nothing to do.
_ABSOLUTE_HTTP = re.compile(r"https?://", re.IGNORECASE)
_C0_AND_SPACE = "".join(chr(c) for c in range(0x21))
# What a host may be after IDNA: DNS labels (underscore tolerated, some CDNs use it), an IPv4
# address, or a bracketed IPv6 literal. Anything else (spaces, quotes, "%") is not a usable URL.
_VALID_HOST = re.compile(r"[a-z0-9_.-]+|\[[0-9a-f:.]+\]")


def _fix_escape(match: re.Match[str]) -> str:
    token = match.group()
    if token[0] == "%" and len(token) == 3:
        char = chr(int(token[1:], 16))
        return char if char in _UNRESERVED else token.upper()
    return "".join(f"%{b:02X}" for b in token.encode("utf-8", "replace"))


def _normalise_escapes(component: str) -> str:
    return _ESCAPE_OR_UNSAFE.sub(_fix_escape, component)


def _remove_dot_segments(path: str) -> str:
    # RFC 3986 section 5.2.4; urljoin does this only when a base is given.
    out: list[str] = []
    segments = path.split("/")
    for i, seg in enumerate(segments):
        last = i == len(segments) - 1
        if seg == ".":
            if last:
                out.append("")
        elif seg == "..":
            if len(out) > 1:
                out.pop()
            if last:
                out.append("")
        else:
            out.append(seg)
    result = "/".join(out)
    return result if result.startswith("/") else "/" + result


def _is_tracking(name: str) -> bool:
    lowered = name.lower()
    return lowered in TRACKING_PARAMS or lowered.startswith(TRACKING_PREFIXES)


def _clean_query(query: str) -> str:
    kept = []
    for param in query.split("&"):
        if not param:
            continue
        param = _normalise_escapes(param)
        name = param.split("=", 1)[0]
        if not _is_tracking(name):
            kept.append(param)
    return "&".join(kept)


def _host(hostname: str) -> str | None:
    host = hostname.rstrip(".") if hostname.endswith(".") and hostname != "." else hostname
    if not host:
        return None
    if ":" in host:  # IPv6 literal (urlsplit strips the brackets)
        host = f"[{host.lower()}]"
    elif host.isascii():
        host = host.lower()
    else:
        try:
            # The stdlib codec applies nameprep (case folding included) and punycodes each label.
            host = host.encode("idna").decode("ascii").lower()
        except UnicodeError:
            return None
    if not _VALID_HOST.fullmatch(host):
        return None
    if host[0] != "[" and (
        len(host) > 253 or not all(0 < len(label) <= 63 for label in host.split("."))
    ):
        return None  # empty or over-long DNS label: no such host
    return host


def canonical_url(
    href: str | None, base: str | None = None, *, max_chars: int = _DEFAULT_LIMITS.max_url_chars
) -> str | None:
    """The canonical http(s) form of ``href`` (resolved against ``base``), or None.

    None when the result is not http/https, has no host, cannot be parsed, or is longer than
    ``max_chars``. Fragments are dropped except hash-bang routes (``#!/story/1``), which do name
    distinct pages on the sites that use them.
    """
    if not href:
        return None
    href = _TAB_NEWLINE.sub("", href.strip(_C0_AND_SPACE))
    if not href or len(href) > 4 * max_chars:
        return None
    try:
        if base and not _ABSOLUTE_HTTP.match(href):
            href = urljoin(_TAB_NEWLINE.sub("", base.strip(_C0_AND_SPACE)), href)
        parts = urlsplit(href)
        scheme = parts.scheme.lower()
        if scheme not in _HTTP_SCHEMES:
            return None
        hostname = parts.hostname
        port = parts.port  # raises ValueError for a non-numeric or out-of-range port
    except ValueError:
        return None
    if not hostname:
        return None
    host = _host(hostname)
    if host is None:
        return None
    netloc = host if port is None or port == _DEFAULT_PORTS[scheme] else f"{host}:{port}"
    path = _normalise_escapes(parts.path) if parts.path else "/"
    if "." in path and ("/./" in path or "/../" in path or path.endswith(("/.", "/.."))):
        path = _remove_dot_segments(path)
    if not path.startswith("/"):
        path = "/" + path
    url = f"{scheme}://{netloc}{path}"
    if parts.query:
        query = _clean_query(parts.query)
        if query:
            url = f"{url}?{query}"
    if parts.fragment.startswith("!"):
        url = f"{url}#{_normalise_escapes(parts.fragment)}"
    return url if len(url) <= max_chars else None


def http_url(
    href: str | None, base: str | None = None, *, max_chars: int = _DEFAULT_LIMITS.max_url_chars
) -> str | None:
    """``href`` resolved against ``base`` when it is an absolute http(s) URL, else None.

    For media (enclosures): kept as published apart from resolution, because signed CDN URLs
    break when their query string is touched.
    """
    if not href:
        return None
    href = _TAB_NEWLINE.sub("", href.strip(_C0_AND_SPACE))
    if not href or len(href) > max_chars:
        return None
    try:
        if base and not _ABSOLUTE_HTTP.match(href):
            href = urljoin(_TAB_NEWLINE.sub("", base.strip(_C0_AND_SPACE)), href)
        parts = urlsplit(href)
        if parts.scheme.lower() not in _HTTP_SCHEMES or not parts.hostname:
            return None
        _ = parts.port
    except ValueError:
        return None
    return href if len(href) <= max_chars else None


def item_key(url: str | None, guid: str | None) -> str | None:
    """The string hashed into ``article_id``: the canonical URL, else ``"guid:" + guid``.

    None when the entry has neither (it cannot be identified, so it is dropped).
    """
    if url:
        return url
    if guid:
        return "guid:" + guid
    return None
