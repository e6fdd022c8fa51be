"""One polite, bounded, SSRF-guarded (conditional) GET: the HTTP step of every newsflow fetch.

Foundation layer (``streams/net``): the feed connector polls feeds with it
(poller -> ``Fetcher.fetch(url, validators)`` -> ``FetchResult`` -> ``parse.parse_feed``), and
the page fetcher (``streams.net.pages``) fetches article pages with it for the extract stage.
Nothing here parses feeds or pages. It imports nothing of newsflow above ``streams/net``.

``fetch`` never raises (except ``asyncio.CancelledError``): every failure becomes
``FetchResult(status="error", error=<short class>)`` so the caller can count and schedule it.
Error classes: ``bad_url``, ``blocked_address``, ``dns``, ``connect``, ``tls``, ``timeout``,
``disconnected``, ``bad_response``, ``too_large``, ``bad_encoding``, ``bad_redirect``,
``redirect_loop``, ``too_many_redirects``, ``http_<code>`` (``http_304`` when a server answers
304 to a request that carried no validators), ``client_error`` (any other aiohttp error),
``closed`` (fetch outside ``async with``) and ``internal`` (a bug, never expected), plus
whatever a caller's ``hop_gate`` raises as ``FetchFailure`` (the page fetcher's
``robots_denied`` and ``backoff``).

Decisions worth knowing:

- Bodies are read with ``auto_decompress=False`` and inflated by ``streams.net.decoding``,
  chunk by chunk, so two caps hold at once: ``max_compressed_bytes`` on wire bytes and
  ``max_body_bytes`` on decoded bytes (gzip and br bombs stop at the cap).
- Redirects are followed by hand so each hop passes the address guard, is counted and is
  checked for loops. Conditional headers go along to every hop (the feed moved, its validators
  did not). ``permanent_url`` is set only when every hop was 301/308.
- The address guard (``streams.net.addresses``) runs after DNS resolution, inside the resolver
  aiohttp connects with, so the address checked is the address dialled; IP-literal hosts,
  which aiohttp never resolves, are checked before the request.
- Politeness: a global slot limit plus a per-host limit. A fetch takes the host slot first, then
  the global one, per hop, and holds nothing between hops, so a busy host cannot pin global
  slots and two hosts cannot deadlock through a redirect. A caller may replace the per-host
  slot with its own ``hop_gate`` (robots.txt, spacing and backoff for pages).
- ``total_timeout_s`` runs from the moment the first hop got its slots until the body is read;
  time spent queueing for a slot is not counted (10,000 feeds behind 64 slots would otherwise
  time out in the queue). ``elapsed_s`` measures the same span.
"""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass, replace
from types import TracebackType
from typing import Final

import aiohttp
from aiohttp.abc import AbstractResolver
from aiohttp.resolver import DefaultResolver
from yarl import URL

from streams.net.addresses import BlockedAddressError, GuardedResolver, blocked_reason
from streams.net.decoding import DecodedBody, FetchFailure
from streams.net.headers import parse_max_age, parse_retry_after
from streams.net.types import FetchLimits, FetchResult, Validators

__all__ = ["ACCEPT_ENCODING", "DEFAULT_ACCEPT", "Fetcher", "HopGate"]

# Feed types first; HTML last so a site that content-negotiates still has a chance to send XML.
DEFAULT_ACCEPT: Final = (
    "application/rss+xml, application/atom+xml, application/rdf+xml;q=0.9, "
    "application/xml;q=0.8, text/xml;q=0.8, */*;q=0.1"
)
ACCEPT_ENCODING: Final = "gzip, deflate, br"
_REDIRECTS: Final = frozenset({301, 302, 303, 307, 308})
_PERMANENT: Final = frozenset({301, 308})

# --------------------------------------------------------------------------- the fetcher


@dataclass(slots=True)
class _Attempt:
    """Mutable state of one fetch, so an error at any point reports where it happened."""

    url: str
    started: float | None = None
    wire_bytes: int = 0
    http_status: int | None = None


HopGate = Callable[[URL], AbstractAsyncContextManager[None]]
"""A caller's per-hop admission: entered before every hop's request (in place of the per-host
slot), held while the hop runs, left before the next hop. It may wait (spacing, backoff) and may
refuse the hop by raising ``FetchFailure`` (its ``error`` becomes the result's)."""


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

    def hold_url(self, url: URL) -> AbstractAsyncContextManager[None]:
        return self.hold(url.host or "")


@dataclass(frozen=True, slots=True)
class _Call:
    """Per-call options of one ``Fetcher.fetch``."""

    limits: FetchLimits
    timeout: aiohttp.ClientTimeout | None  # None: the session's
    accept: str | None  # None: the session's Accept header
    gate: HopGate


def _client_timeout(limits: FetchLimits) -> aiohttp.ClientTimeout:
    # total is enforced by fetch() itself: it must also cover redirects and slow drips
    return aiohttp.ClientTimeout(
        total=None,
        connect=None,
        sock_connect=limits.connect_timeout_s,
        sock_read=limits.read_timeout_s,
    )


def _check_url(url: str, *, allow_private: bool) -> URL:
    try:
        parsed = URL(url)
    except (ValueError, TypeError) as exc:
        raise FetchFailure("bad_url", f"unparseable URL: {exc}") from None
    if parsed.scheme not in ("http", "https"):
        raise FetchFailure("bad_url", f"scheme {parsed.scheme!r} is not http(s)")
    host = parsed.host
    if not host:
        raise FetchFailure("bad_url", "URL has no host")
    # aiohttp does not resolve IP literals, so the resolver guard never sees them: check here.
    if ":" in host or host.replace(".", "").isdigit():
        try:
            ipaddress.ip_address(host)
        except ValueError:
            # aiohttp refuses these too (127.1, 2130706433, ...): legacy forms that dodge checks
            raise FetchFailure("bad_url", f"not a canonical IP address: {host!r}") from None
        reason = blocked_reason(host, allow_private=allow_private)
        if reason is not None:
            raise FetchFailure("blocked_address", f"{host} is {reason}")
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
        inner = self._inner_resolver or DefaultResolver()
        connector = aiohttp.TCPConnector(
            limit=self._concurrency,
            resolver=GuardedResolver(inner, allow_private=allow_private),
        )
        return aiohttp.ClientSession(
            connector=connector,
            timeout=_client_timeout(self.limits),
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
        self,
        url: str,
        validators: Validators | None = None,
        *,
        allow_private: bool = False,
        limits: FetchLimits | None = None,
        accept: str | None = None,
        hop_gate: HopGate | None = None,
    ) -> FetchResult:
        """GET ``url`` conditionally; never raises (except ``CancelledError``).

        Per call, optionally: ``limits`` instead of the fetcher's (robots.txt and pages have
        their own caps), ``accept`` instead of the fetcher's Accept header, and ``hop_gate``
        instead of the built-in per-host slot (see ``HopGate``)."""
        attempt = _Attempt(url=url)
        loop = asyncio.get_running_loop()
        call = _Call(
            limits=limits or self.limits,
            # per-request timeouts only when they differ from the session's
            timeout=None if limits is None else _client_timeout(limits),
            accept=accept,
            gate=hop_gate or self._hosts.hold_url,
        )
        try:
            return await self._fetch(attempt, validators or Validators(), allow_private, call)
        except FetchFailure as fail:
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
        self, attempt: _Attempt, validators: Validators, allow_private: bool, call: _Call
    ) -> FetchResult:
        session = self._private if allow_private else self._guarded
        if session is None:
            raise FetchFailure("closed", "Fetcher is not open (use `async with Fetcher(...)`)")
        limits = call.limits
        loop = asyncio.get_running_loop()
        headers: dict[str, str] = {}
        if call.accept is not None:
            headers["Accept"] = call.accept
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
            async with call.gate(target), self._global:
                if attempt.started is None:
                    attempt.started = started = loop.time()
                    deadline = started + limits.total_timeout_s
                timer = asyncio.timeout_at(deadline)
                try:
                    async with timer:
                        location, status = await self._hop(
                            session, target, headers, validators, attempt, call
                        )
                except TimeoutError:
                    if timer.expired():
                        raise FetchFailure(
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
                raise FetchFailure("redirect_loop", f"redirect back to {next_url}")
            attempt.url = next_url
            attempt.http_status = None
        raise FetchFailure("too_many_redirects", f"more than {limits.max_redirects} redirects")

    async def _hop(
        self,
        session: aiohttp.ClientSession,
        target: URL,
        headers: dict[str, str],
        validators: Validators,
        attempt: _Attempt,
        call: _Call,
    ) -> tuple[FetchResult | URL, int]:
        """One request: a final result, or the URL a redirect points to."""
        limits = call.limits
        # Never ``timeout=None``: aiohttp reads None as "no timeouts at all".
        if call.timeout is None:
            request = session.get(target, headers=headers, allow_redirects=False)
        else:
            request = session.get(
                target, headers=headers, allow_redirects=False, timeout=call.timeout
            )
        async with request as resp:
            status = resp.status
            attempt.http_status = status
            if status in _REDIRECTS:
                return _redirect_target(target, resp.headers.get("Location")), status
            h = resp.headers
            max_age = parse_max_age(", ".join(h.getall("Cache-Control", ())))
            if status == 304:
                if not (validators.etag or validators.last_modified):
                    # 304 to an unconditional GET: there is nothing we could reuse.
                    raise FetchFailure(
                        "http_304", "304 Not Modified to a request without validators"
                    )
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
                        h.get("Retry-After"), cap_s=limits.retry_after_cap_s, date=h.get("Date")
                    ),
                    cache_max_age_s=max_age,
                    headers=tuple(h.items()),
                ), status
            if not 200 <= status < 300 or status == 206:  # we never ask for ranges
                raise FetchFailure(f"http_{status}", _one_line(f"{status} {resp.reason or ''}"))
            body = await self._read_body(resp, attempt, limits)
            return FetchResult(
                status="ok",
                url=attempt.url,
                http_status=status,
                body=body,
                content_type=h.get("Content-Type"),
                validators=Validators(etag=h.get("ETag"), last_modified=h.get("Last-Modified")),
                cache_max_age_s=max_age,
                bytes_compressed=attempt.wire_bytes,
                headers=tuple(h.items()),
            ), status

    async def _read_body(
        self, resp: aiohttp.ClientResponse, attempt: _Attempt, limits: FetchLimits
    ) -> bytes:
        declared = resp.content_length
        if declared is not None and declared > limits.max_compressed_bytes:
            resp.close()  # drop the connection rather than drain a body we refuse
            raise FetchFailure(
                "too_large",
                f"Content-Length {declared} exceeds {limits.max_compressed_bytes} bytes",
            )
        body = DecodedBody(", ".join(resp.headers.getall("Content-Encoding", ())), limits)
        try:
            async for chunk in resp.content.iter_any():
                attempt.wire_bytes += len(chunk)
                if attempt.wire_bytes > limits.max_compressed_bytes:
                    raise FetchFailure(
                        "too_large",
                        f"more than {limits.max_compressed_bytes} bytes on the wire",
                    )
                body.feed(chunk)
            return body.finish()
        except FetchFailure:
            resp.close()
            raise


def _redirect_target(current: URL, location: str | None) -> URL:
    if not location or not location.strip():
        raise FetchFailure("bad_redirect", "redirect without a Location")
    try:
        target = current.join(URL(location.strip())).with_fragment(None)
    except (ValueError, TypeError) as exc:
        message = _one_line(f"unparseable Location {location!r}: {exc}")
        raise FetchFailure("bad_redirect", message) from None
    if target.scheme not in ("http", "https") or not target.host:
        raise FetchFailure(
            "bad_redirect", _one_line(f"redirect to a non-http(s) URL: {location!r}")
        )
    return target
