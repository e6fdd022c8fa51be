"""The connector's HTTP step: one polite, bounded, SSRF-guarded conditional GET per feed.

Flow: poller -> ``Fetcher.fetch(url, validators)`` -> ``FetchResult`` (bytes + new validators,
or ``not_modified``, or a classified error) -> ``parse.parse_feed``. Nothing here parses feeds.

``fetch`` never raises (except ``asyncio.CancelledError``): every failure becomes
``FetchResult(status="error", error=<short class>)`` so the poller can count and schedule it.
Error classes: ``bad_url``, ``blocked_address``, ``dns``, ``connect``, ``tls``, ``timeout``,
``disconnected``, ``bad_response``, ``too_large``, ``bad_encoding``, ``bad_redirect``,
``redirect_loop``, ``too_many_redirects``, ``http_<code>`` (``http_304`` when a server answers
304 to a request that carried no validators), ``client_error`` (any other aiohttp error),
``closed`` (fetch outside ``async with``) and ``internal`` (a bug, never expected).

Decisions worth knowing:

- Bodies are read with ``auto_decompress=False`` and inflated here, chunk by chunk, so two caps
  hold at once: ``max_compressed_bytes`` on wire bytes and ``max_body_bytes`` on decoded bytes.
  zlib gets ``max_length`` and brotli ``output_buffer_limit``, so a bomb never expands in memory
  past the cap (plus brotli's ~32 KiB minimum output buffer). Stacked codings (``gzip, br``) are
  undone in reverse order; bytes after the end of a gzip/deflate stream are ignored (padding is
  common), after a br stream they are ``bad_encoding`` (brotli cannot tell where its stream
  ended inside a chunk); a compressed stream that stops early is ``bad_encoding``.
- Redirects are followed by hand so each hop passes the address guard, is counted and is
  checked for loops. Conditional headers go along to every hop (the feed moved, its validators
  did not). ``permanent_url`` is set only when every hop was 301/308.
- The address guard runs after DNS resolution, inside the resolver aiohttp connects with, so
  the address checked is the address dialled (no DNS-rebinding window); IP-literal hosts, which
  aiohttp never resolves, are checked before the request. When a name resolves to a mix, the
  forbidden addresses are dropped and only the rest is dialled.
- ``allow_private=True`` (a feed list that deliberately points at an intranet) unlocks loopback,
  private, link-local, CGNAT and other non-global unicast ranges. Cloud metadata endpoints,
  unspecified, multicast and reserved addresses stay blocked always: no feed lives there and
  the metadata service is the classic SSRF prize.
- Politeness: a global slot limit plus a per-host limit. A fetch takes the host slot first, then
  the global one, per hop, and holds nothing between hops, so a busy host cannot pin global
  slots and two hosts cannot deadlock through a redirect.
- ``total_timeout_s`` runs from the moment the first hop got its slots until the body is read;
  time spent queueing for a slot is not counted (10,000 feeds behind 64 slots would otherwise
  time out in the queue). ``elapsed_s`` measures the same span.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
import zlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from types import TracebackType
from typing import Any, Final, Protocol

import aiohttp
import brotli  # no stubs; used through Any
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver
from yarl import URL

from connectors.rss.types import FetchLimits, FetchResult, Validators

__all__ = [
    "ALWAYS_BLOCKED",
    "DEFAULT_ACCEPT",
    "BlockedAddressError",
    "Fetcher",
    "GuardedResolver",
    "blocked_reason",
    "forbidden_address",
    "parse_max_age",
    "parse_retry_after",
]

# Feed types first; HTML last so a site that content-negotiates still has a chance to send XML.
DEFAULT_ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
ACCEPT_ENCODING: Final = "gzip, deflate, br"
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_PERMANENT: Final = frozenset({301, 308})

# --------------------------------------------------------------------------- address guard

# Instance-metadata services (AWS/Azure/GCP, AWS ECS and EKS, Alibaba, Oracle): blocked even with
# allow_private, because credentials live there.
_METADATA: Final = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",
        "169.254.170.2",
        "169.254.170.23",
        "100.100.100.200",
        "192.0.0.192",
        "fd00:ec2::254",
        "fd00:ec2::23",
    )
)
ALWAYS_BLOCKED: Final = frozenset({"metadata", "unspecified", "multicast", "reserved", "invalid"})

_V4_THIS_NETWORK: Final = ipaddress.IPv4Network("0.0.0.0/8")
_V4_CGNAT: Final = ipaddress.IPv4Network("100.64.0.0/10")
_V4_PRIVATE: Final = tuple(
    ipaddress.IPv4Network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16")
)
_V4_IETF: Final = ipaddress.IPv4Network("192.0.0.0/24")
_V6_NAT64: Final = ipaddress.IPv6Network("64:ff9b::/96")
_V6_PRIVATE: Final = tuple(
    ipaddress.IPv6Network(n)
    # unique local, deprecated site-local, local-use NAT64 (whatever sits behind it is local)
    for n in ("fc00::/7", "fec0::/10", "64:ff9b:1::/48")
)


def forbidden_address(ip: str) -> str | None:
    """Why a fetch must not connect to ``ip`` (``None``: a public unicast address).

    Reasons: ``metadata``, ``unspecified``, ``loopback``, ``link_local``, ``cgnat``, ``private``,
    ``multicast``, ``reserved``, ``not_global`` (documentation, benchmarking, Teredo, ...),
    ``invalid``. IPv4 embedded in IPv6 (mapped, NAT64, 6to4) is judged as the IPv4 it reaches.
    """
    try:
        addr = ipaddress.ip_address(ip)
    except ValueError:
        return "invalid"
    if addr in _METADATA:
        return "metadata"
    if isinstance(addr, ipaddress.IPv4Address):
        return _forbidden_v4(addr)
    return _forbidden_v6(addr)


def _forbidden_v4(addr: ipaddress.IPv4Address) -> str | None:
    if addr in _METADATA:
        return "metadata"
    if addr in _V4_THIS_NETWORK:  # Linux dials 0.0.0.0 as localhost
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link_local"
    if addr in _V4_CGNAT:
        return "cgnat"
    if addr.is_multicast:
        return "multicast"
    if any(addr in net for net in _V4_PRIVATE):
        return "private"
    if addr.is_reserved:
        return "reserved"
    if not addr.is_global or addr in _V4_IETF:
        return "not_global"
    return None


def _forbidden_v6(addr: ipaddress.IPv6Address) -> str | None:
    # A scoped address (fe80::1%eth0) compares unequal to the same address unscoped.
    if addr.scope_id:
        addr = ipaddress.IPv6Address(str(addr).split("%", 1)[0])
        if addr in _METADATA:
            return "metadata"
    if addr.ipv4_mapped is not None:
        return _forbidden_v4(addr.ipv4_mapped)
    if addr in _V6_NAT64:
        return _forbidden_v4(ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF))
    if addr.sixtofour is not None:
        return _forbidden_v4(addr.sixtofour)
    if addr.is_unspecified:
        return "unspecified"
    if addr.is_loopback:
        return "loopback"
    if addr.is_link_local:
        return "link_local"
    if addr.is_multicast:
        return "multicast"
    if any(addr in net for net in _V6_PRIVATE):
        return "private"
    if addr.is_reserved:  # ::/8 and friends, incl. deprecated IPv4-compatible ::a.b.c.d
        return "reserved"
    if not addr.is_global:
        return "not_global"
    return None


def blocked_reason(ip: str, *, allow_private: bool) -> str | None:
    """``forbidden_address`` under the fetch's policy: what ``allow_private`` cannot unlock."""
    reason = forbidden_address(ip)
    if reason is None or (allow_private and reason not in ALWAYS_BLOCKED):
        return None
    return reason


class BlockedAddressError(OSError):
    """Raised by ``GuardedResolver``; an ``OSError`` so aiohttp wraps it as a DNS failure and we
    can recognise it underneath."""

    def __init__(self, host: str, reasons: list[str]) -> None:
        self.host = host
        self.reasons = reasons
        super().__init__(f"{host} resolves only to forbidden addresses ({', '.join(reasons)})")


class GuardedResolver(AbstractResolver):
    """Wraps a real resolver and drops every address the policy forbids; aiohttp dials only
    what this returns, so the check and the connection see the same addresses."""

    def __init__(self, inner: AbstractResolver, *, allow_private: bool) -> None:
        self._inner = inner
        self._allow_private = allow_private

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        allowed: list[ResolveResult] = []
        reasons: list[str] = []
        for res in results:
            reason = blocked_reason(res["host"], allow_private=self._allow_private)
            if reason is None:
                allowed.append(res)
            else:
                reasons.append(f"{res['host']}: {reason}")
        if not allowed and reasons:
            raise BlockedAddressError(host, reasons)
        return allowed

    async def close(self) -> None:
        await self._inner.close()


# --------------------------------------------------------------------------- header rules

_DELTA_SECONDS: Final = re.compile(r"[0-9]+(?:\.[0-9]+)?")


def parse_retry_after(
    value: str | None, *, cap_s: float, now: datetime | None = None
) -> float | None:
    """Seconds to wait from a Retry-After value (delta-seconds or HTTP-date), clamped to
    ``[0, cap_s]``; ``None`` when absent or unreadable. A date in the past means 0."""
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


# --------------------------------------------------------------------------- decoding


class _Fail(Exception):
    """A classified failure raised inside a fetch; becomes the FetchResult's error."""

    def __init__(self, error: str, message: str) -> None:
        super().__init__(message)
        self.error = error
        self.message = message


class _Stage(Protocol):
    def feed(self, data: bytes) -> bytes: ...
    def finish(self) -> None: ...


class _ZlibStage:
    """gzip (``wbits=31``) or HTTP "deflate", which servers send zlib-wrapped or raw: the
    first two bytes tell which."""

    def __init__(self, coding: str, cap: int) -> None:
        self._coding = coding
        self._cap = cap
        self._out = 0
        self._fed = False
        self._head = b""
        self._d: Any = zlib.decompressobj(31) if coding == "gzip" else None

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        self._fed = True
        if self._d is None:
            data = self._head + data
            if len(data) < 2:
                self._head = data
                return b""
            self._head = b""
            cmf, flg = data[0], data[1]
            zlib_wrapped = cmf & 0x0F == 8 and ((cmf << 8) | flg) % 31 == 0
            self._d = zlib.decompressobj(zlib.MAX_WBITS if zlib_wrapped else -zlib.MAX_WBITS)
        if self._d.eof:
            return b""
        try:
            # max_length = room + 1: reaching it proves the cap is exceeded, and until then
            # the whole input is consumed (no unconsumed_tail to carry).
            out: bytes = self._d.decompress(data, self._cap - self._out + 1)
        except zlib.error as exc:
            raise _Fail("bad_encoding", f"invalid {self._coding} data: {exc}") from None
        self._out += len(out)
        if self._out > self._cap:
            raise _Fail("too_large", f"body exceeds {self._cap} bytes after {self._coding}")
        return out

    def finish(self) -> None:
        if self._fed and (self._d is None or not self._d.eof):
            raise _Fail("bad_encoding", f"{self._coding} stream ends early")


class _BrotliStage:
    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._out = 0
        self._fed = False
        self._d: Any = brotli.Decompressor()

    def feed(self, data: bytes) -> bytes:
        if not data:
            return b""
        if self._d.is_finished():
            raise _Fail("bad_encoding", "bytes after the end of the br stream")
        self._fed = True
        parts: list[bytes] = []
        try:
            chunk: bytes = self._d.process(data, output_buffer_limit=self._cap - self._out + 1)
            while True:
                self._out += len(chunk)
                if self._out > self._cap:
                    raise _Fail("too_large", f"body exceeds {self._cap} bytes after br")
                parts.append(chunk)
                if self._d.can_accept_more_data() or self._d.is_finished():
                    break
                # The limit was reached inside this input: drain with empty input, as brotli
                # requires, still bounded per call.
                chunk = self._d.process(b"", output_buffer_limit=self._cap - self._out + 1)
        except brotli.error as exc:
            raise _Fail("bad_encoding", f"invalid br data: {exc}") from None
        return b"".join(parts)

    def finish(self) -> None:
        if self._fed and not self._d.is_finished():
            raise _Fail("bad_encoding", "br stream ends early")


class _Body:
    """Wire bytes in, decoded bytes out, both caps enforced as the bytes arrive."""

    def __init__(self, content_encoding: str, limits: FetchLimits) -> None:
        codings = [c.strip().lower() for c in content_encoding.split(",")]
        stages: list[_Stage] = []
        # Codings are listed in the order applied; undo them last-first.
        for coding in reversed([c for c in codings if c and c != "identity"]):
            if coding in ("gzip", "x-gzip"):
                stages.append(_ZlibStage("gzip", limits.max_body_bytes))
            elif coding == "deflate":
                stages.append(_ZlibStage("deflate", limits.max_body_bytes))
            elif coding == "br":
                stages.append(_BrotliStage(limits.max_body_bytes))
            else:
                raise _Fail("bad_encoding", f"unsupported Content-Encoding {coding!r}")
        self._stages = stages
        self._parts: list[bytes] = []
        self._size = 0
        self._cap = limits.max_body_bytes

    def feed(self, data: bytes) -> None:
        for stage in self._stages:
            data = stage.feed(data)
        if data:
            self._size += len(data)
            if self._size > self._cap:
                raise _Fail("too_large", f"body exceeds {self._cap} bytes")
            self._parts.append(data)

    def finish(self) -> bytes:
        for stage in self._stages:
            stage.finish()
        return b"".join(self._parts)


# --------------------------------------------------------------------------- the fetcher


@dataclass(slots=True)
class _Attempt:
    """Mutable state of one fetch, so an error at any point reports where it happened."""

    url: str
    started: float | None = None
    wire_bytes: int = 0
    http_status: int | None = None


class _HostSlot:
    __slots__ = ("sem", "users")

    def __init__(self, size: int) -> None:
        self.sem = asyncio.Semaphore(size)
        self.users = 0  # holders + waiters; the slot is dropped when this returns to 0


class _HostSlots:
    """Per-host semaphores that disappear when nobody uses them (10,000 hosts must not leave
    10,000 semaphores behind)."""

    def __init__(self, per_host: int) -> None:
        self._per_host = per_host
        self._slots: dict[str, _HostSlot] = {}

    @asynccontextmanager
    async def hold(self, host: str) -> AsyncIterator[None]:
        slot = self._slots.get(host)
        if slot is None:
            slot = self._slots[host] = _HostSlot(self._per_host)
        slot.users += 1
        try:
            async with slot.sem:
                yield
        finally:
            slot.users -= 1
            if slot.users == 0:
                del self._slots[host]


def _check_url(url: str, *, allow_private: bool) -> URL:
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise _Fail("bad_url", f"unparseable URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise _Fail("bad_url", f"scheme {parsed.scheme!r} is not http(s)")
    host = parsed.host
    if not host:
        raise _Fail("bad_url", "URL has no host")
    # aiohttp does not resolve IP literals, so the resolver guard never sees them: check here.
    if ":" in host or host.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            # aiohttp refuses these too (127.1, 2130706433, ...): legacy forms that dodge checks
            raise _Fail("bad_url", f"not a canonical IP address: {host!r}") from None
        reason = blocked_reason(host, allow_private=allow_private)
        if reason is not None:
            raise _Fail("blocked_address", f"{host} is {reason}")
    return parsed


def _one_line(text: str, limit: int = 300) -> str:
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 3] + "..."


def _classify(exc: BaseException) -> tuple[str, str]:
    """Third-party exceptions -> (error class, one-line message)."""
    message = _one_line(f"{type(exc).__name__}: {exc}")
    if isinstance(exc, aiohttp.ClientConnectorDNSError):
        if isinstance(exc.os_error, BlockedAddressError):
            return "blocked_address", _one_line(str(exc.os_error))
        return "dns", message
    if isinstance(exc, aiohttp.ClientConnectorCertificateError | aiohttp.ClientSSLError):
        return "tls", message
    if isinstance(exc, TimeoutError):  # aiohttp's sock_connect/sock_read timeouts subclass it
        return "timeout", message
    if isinstance(exc, aiohttp.ClientConnectorError):
        return "connect", message
    if isinstance(exc, aiohttp.ServerDisconnectedError | aiohttp.ClientPayloadError):
        return "disconnected", message
    if isinstance(exc, aiohttp.InvalidURL):
        return "bad_url", message
    if isinstance(exc, aiohttp.ClientResponseError):
        return "bad_response", message
    if isinstance(exc, aiohttp.ClientOSError):  # reset by peer, broken pipe
        return "disconnected", message
    if isinstance(exc, aiohttp.ClientError):
        return "client_error", message
    return "internal", message


class Fetcher:
    """Conditional GETs for the poller: ``async with Fetcher(user_agent=...) as f:
    result = await f.fetch(url, validators)``.

    One long-lived session (and connection pool) per address policy: guarded, and the one
    ``allow_private=True`` fetches use. Sessions are never created per request.
    """

    def __init__(
        self,
        *,
        user_agent: str,
        limits: FetchLimits | None = None,
        concurrency: int = 64,
        per_host: int = 2,
        accept: str = DEFAULT_ACCEPT,
        resolver: AbstractResolver | None = None,
    ) -> None:
        """``resolver`` replaces aiohttp's default name resolution under the guard (tests)."""
        if concurrency < 1 or per_host < 1:
            raise ValueError("concurrency and per_host must be >= 1")
        self.limits = limits or FetchLimits()
        self.user_agent = user_agent
        self._concurrency = concurrency
        self._accept = accept
        self._inner_resolver = resolver
        self._global = asyncio.Semaphore(concurrency)
        self._hosts = _HostSlots(per_host)
        self._guarded: aiohttp.ClientSession | None = None
        self._private: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> Fetcher:
        self._guarded = self._session(allow_private=False)
        self._private = self._session(allow_private=True)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        for session in (self._guarded, self._private):
            if session is not None:
                await session.close()
        self._guarded = self._private = None

    def _session(self, *, allow_private: bool) -> aiohttp.ClientSession:
        limits = self.limits
        inner = self._inner_resolver or DefaultResolver()
        connector = aiohttp.TCPConnector(
            limit=self._concurrency,
            resolver=GuardedResolver(inner, allow_private=allow_private),
        )
        return aiohttp.ClientSession(
            connector=connector,
            # total is enforced by fetch() itself: it must also cover redirects and slow drips
            timeout=aiohttp.ClientTimeout(
                total=None,
                connect=None,
                sock_connect=limits.connect_timeout_s,
                sock_read=limits.read_timeout_s,
            ),
            headers={
                "User-Agent": self.user_agent,
                "Accept": self._accept,
                "Accept-Encoding": ACCEPT_ENCODING,
            },
            auto_decompress=False,
            cookie_jar=aiohttp.DummyCookieJar(),  # one feed's cookies must not reach another
            trust_env=False,
        )

    async def fetch(
        self, url: str, validators: Validators | None = None, *, allow_private: bool = False
    ) -> FetchResult:
        """GET ``url`` conditionally; never raises (except ``CancelledError``)."""
        attempt = _Attempt(url=url)
        loop = asyncio.get_running_loop()
        try:
            return await self._fetch(attempt, validators or Validators(), allow_private)
        except _Fail as fail:
            error, message = fail.error, fail.message
        except Exception as exc:  # noqa: BLE001 - the contract: every failure is a result
            error, message = _classify(exc)
        elapsed = 0.0 if attempt.started is None else loop.time() - attempt.started
        return FetchResult(
            status="error",
            url=attempt.url,
            http_status=attempt.http_status,
            error=error,
            error_message=message,
            bytes_compressed=attempt.wire_bytes,
            elapsed_s=elapsed,
        )

    async def _fetch(
        self, attempt: _Attempt, validators: Validators, allow_private: bool
    ) -> FetchResult:
        session = self._private if allow_private else self._guarded
        if session is None:
            raise _Fail("closed", "Fetcher is not open (use `async with Fetcher(...)`)")
        limits = self.limits
        loop = asyncio.get_running_loop()
        headers: dict[str, str] = {}
        if validators.etag:
            headers["If-None-Match"] = validators.etag
        if validators.last_modified:
            headers["If-Modified-Since"] = validators.last_modified
        visited: set[str] = set()
        permanent = True
        started = deadline = 0.0
        for hops in range(limits.max_redirects + 1):
            target = _check_url(attempt.url, allow_private=allow_private)
            visited.add(str(target))
            async with self._hosts.hold(target.host or ""), self._global:
                if attempt.started is None:
                    attempt.started = started = loop.time()
                    deadline = started + limits.total_timeout_s
                timer = asyncio.timeout_at(deadline)
                try:
                    async with timer:
                        location, status = await self._hop(
                            session, target, headers, validators, attempt
                        )
                except TimeoutError:
                    if timer.expired():
                        raise _Fail(
                            "timeout", f"total timeout of {limits.total_timeout_s:g}s exceeded"
                        ) from None
                    raise
            if isinstance(location, FetchResult):
                permanent_url = attempt.url if hops and permanent else None
                return replace(
                    location, permanent_url=permanent_url, elapsed_s=loop.time() - started
                )
            permanent = permanent and status in _PERMANENT
            next_url = str(location)
            if next_url in visited:
                raise _Fail("redirect_loop", f"redirect back to {next_url}")
            attempt.url = next_url
            attempt.http_status = None
        raise _Fail("too_many_redirects", f"more than {limits.max_redirects} redirects")

    async def _hop(
        self,
        session: aiohttp.ClientSession,
        target: URL,
        headers: dict[str, str],
        validators: Validators,
        attempt: _Attempt,
    ) -> tuple[FetchResult | URL, int]:
        """One request: a final result, or the URL a redirect points to."""
        limits = self.limits
        async with session.get(target, headers=headers, allow_redirects=False) as resp:
            status = resp.status
            attempt.http_status = status
            if status in _REDIRECTS:
                return _redirect_target(target, resp.headers.get("Location")), status
            h = resp.headers
            max_age = parse_max_age(", ".join(h.getall("Cache-Control", ())))
            if status == 304:
                if not (validators.etag or validators.last_modified):
                    # 304 to an unconditional GET: there is nothing we could reuse.
                    raise _Fail("http_304", "304 Not Modified to a request without validators")
                return FetchResult(
                    status="not_modified",
                    url=attempt.url,
                    http_status=304,
                    validators=Validators(
                        etag=h.get("ETag") or validators.etag,
                        last_modified=h.get("Last-Modified") or validators.last_modified,
                    ),
                    cache_max_age_s=max_age,
                ), status
            if status in (429, 503):
                return FetchResult(
                    status="error",
                    url=attempt.url,
                    http_status=status,
                    error=f"http_{status}",
                    error_message=_one_line(f"{status} {resp.reason or ''}"),
                    retry_after_s=parse_retry_after(
                        h.get("Retry-After"), cap_s=limits.retry_after_cap_s
                    ),
                    cache_max_age_s=max_age,
                ), status
            if not 200 <= status < 300 or status == 206:  # we never ask for ranges
                raise _Fail(f"http_{status}", _one_line(f"{status} {resp.reason or ''}"))
            body = await self._read_body(resp, attempt)
            return FetchResult(
                status="ok",
                url=attempt.url,
                http_status=status,
                body=body,
                content_type=h.get("Content-Type"),
                validators=Validators(etag=h.get("ETag"), last_modified=h.get("Last-Modified")),
                cache_max_age_s=max_age,
                bytes_compressed=attempt.wire_bytes,
            ), status

    async def _read_body(self, resp: aiohttp.ClientResponse, attempt: _Attempt) -> bytes:
        limits = self.limits
        declared = resp.content_length
        if declared is not None and declared > limits.max_compressed_bytes:
            resp.close()  # drop the connection rather than drain a body we refuse
            raise _Fail(
                "too_large",
                f"Content-Length {declared} exceeds {limits.max_compressed_bytes} bytes",
            )
        body = _Body(", ".join(resp.headers.getall("Content-Encoding", ())), limits)
        try:
            async for chunk in resp.content.iter_any():
                attempt.wire_bytes += len(chunk)
                if attempt.wire_bytes > limits.max_compressed_bytes:
                    raise _Fail(
                        "too_large",
                        f"more than {limits.max_compressed_bytes} bytes on the wire",
                    )
                body.feed(chunk)
            return body.finish()
        except _Fail:
            resp.close()
            raise


def _redirect_target(current: URL, location: str | None) -> URL:
    if not location or not location.strip():
        raise _Fail("bad_redirect", "redirect without a Location")
    try:
        target = current.join(URL(location.strip())).with_fragment(None)
    except (ValueError, TypeError) as exc:
        message = _one_line(f"unparseable Location {location!r}: {exc}")
        raise _Fail("bad_redirect", message) from None
    if target.scheme not in ("http", "https") or not target.host:
        raise _Fail("bad_redirect", _one_line(f"redirect to a non-http(s) URL: {location!r}"))
    return target
