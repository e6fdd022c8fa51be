"""A local HTTP feed server for tests: well-behaved feeds and hostile ones, on 127.0.0.1.

It stands in for the web at the very start of the flow (feeds -> connector -> Kafka -> ...):
the fetch tests aim the real ``Fetcher`` at it, and the connector's end-to-end tests can serve
their feed lists from it. aiohttp.web runs in a background thread with its own event loop, so
synchronous and asyncio tests can both use it::

    with FeedServer() as srv:
        srv.set_feed("/feeds/a.xml", b"<rss>...</rss>")   # ETag + Last-Modified + 304s
        url = srv.url("/feeds/a.xml")
        ...
        assert srv.hits["/feeds/a.xml"] == 2

Every request counts in ``hits[path]`` and is logged in ``requests`` (path + headers), whatever
the route does. Routes are keyed by path (query strings ignored); an unknown path is a 404.
Hostile routes: lying validators, 429/503 with Retry-After, redirects (permanent, temporary,
chains, loops, odd targets), slow drip, hang, dropped connection, truncated body, malformed
HTTP, gzip and br bombs, bodies with any status and headers (HTML, empty, oversized).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import gzip
import hashlib
import struct
import time
import zlib
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from email.utils import formatdate

import brotli  # type: ignore[import-untyped]
from aiohttp import web

from streams.commands.feedserver import BackgroundServer, Handler, http_date_to_epoch, not_modified

GIB = 1 << 30
_MIB = 1 << 20


# --------------------------------------------------------------------------- encoders and bombs


def encode(body: bytes, encoding: str | None) -> bytes:
    """``body`` compressed for a Content-Encoding (``None``: as is). ``deflate`` is the zlib
    wrapper as RFC 9110 says; ``raw-deflate`` is what some servers send instead (served with
    the header ``deflate``)."""
    if encoding is None:
        return body
    if encoding == "gzip":
        return gzip.compress(body, mtime=0)
    if encoding == "deflate":
        return zlib.compress(body)
    if encoding == "raw-deflate":
        c = zlib.compressobj(wbits=-zlib.MAX_WBITS)
        return c.compress(body) + c.flush()
    if encoding == "br":
        return bytes(brotli.compress(body))
    raise ValueError(f"unknown encoding {encoding!r}")


@functools.cache
def gzip_bomb(size: int = GIB) -> bytes:
    """A gzip member that inflates to ``size`` zero bytes (1 GiB -> about 1 MiB) in ~0.3 s.

    Compressing 1 GiB for real takes seconds, so: once the window is all zeros, a full-flushed
    MiB of zeros always compresses to the same bytes; repeat them, then end the stream and
    write the trailer (CRC-32 and size) by hand.
    """
    mibs, tail = divmod(size, _MIB)
    if mibs < 3:
        return gzip.compress(bytes(size), mtime=0)
    zeros = bytes(_MIB)
    c = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    first = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    block = c.compress(zeros) + c.flush(zlib.Z_FULL_FLUSH)
    last = c.compress(zeros) + c.compress(bytes(tail)) + c.flush()
    deflate = first + block * (mibs - 2) + last
    crc = 0
    for _ in range(mibs):
        crc = zlib.crc32(zeros, crc)
    crc = zlib.crc32(bytes(tail), crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    return header + deflate + struct.pack("<II", crc, size & 0xFFFFFFFF)


@functools.cache
def br_bomb(size: int = GIB) -> bytes:
    """A brotli stream that inflates to ``size`` zero bytes (1 GiB -> ~190 KiB, ~0.1 s)."""
    c = brotli.Compressor(quality=1)
    zeros = bytes(_MIB)
    mibs, tail = divmod(size, _MIB)
    parts = [c.process(zeros) for _ in range(mibs)]
    parts.append(c.process(bytes(tail)))
    parts.append(c.finish())
    return b"".join(parts)


# --------------------------------------------------------------------------- routes


@dataclass
class Feed:
    """A feed resource with honest (or deliberately lying) validators."""

    body: bytes  # as sent on the wire (already encoded)
    content_type: str
    etag: str | None
    last_modified: str | None
    encoding: str | None  # Content-Encoding header value
    cache_control: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    lying_304: bool = False  # answer 304 to any conditional request, whatever changed
    delay_s: float = 0.0


@dataclass
class SeenRequest:
    path: str
    method: str
    headers: dict[str, str]


class FeedServer(BackgroundServer):
    """See the module docstring. Thread-safe enough for tests: routes are replaced whole.

    The lifecycle (socket, thread, loop, stop) and the conditional-GET rules are the product
    feed server's (``streams.commands.feedserver``); what is added here is routing by path,
    counting, and the hostile behaviours.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        super().__init__(host=host, port=port)
        self.hits: Counter[str] = Counter()
        self.requests: list[SeenRequest] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self._peers: set[object] = set()
        self._routes: dict[str, Handler] = {}
        self._throttles: dict[str, list[tuple[int, str | None]]] = {}
        self._last_modified = 0
        self._stopping: asyncio.Event | None = None

    # ------------------------------------------------------------------ lifecycle

    async def _serve(self) -> None:
        self._stopping = asyncio.Event()
        await super()._serve()

    async def _before_stop(self) -> None:
        if self._stopping is not None:
            self._stopping.set()  # hanging and dripping handlers return now

    # ------------------------------------------------------------------ addresses and state

    def reset_counts(self) -> None:
        self.hits.clear()
        self.requests.clear()
        self.max_in_flight = 0
        self._peers.clear()

    @property
    def connections(self) -> int:
        """Distinct client connections seen (keep-alive reuse shows as fewer than requests)."""
        return len(self._peers)

    def route(self, path: str, handler: Handler) -> None:
        """Serve ``path`` with any aiohttp handler (the escape hatch for one-off cases)."""
        self._routes[path] = handler

    # ------------------------------------------------------------------ well-behaved feeds

    def set_feed(
        self,
        path: str,
        body: bytes,
        content_type: str = "application/rss+xml",
        *,
        etag: bool | str = True,
        last_modified: bool | str = True,
        encoding: str | None = None,
        cache_control: str | None = None,
        headers: Mapping[str, str] | None = None,
        lie: bool = False,
        delay_s: float = 0.0,
    ) -> Feed:
        """Serve ``body`` at ``path`` with conditional GET.

        ``etag``: True -> a hash of the body; a string -> that exact (possibly lying) ETag;
        False -> none. ``last_modified``: True -> now, strictly later than any earlier one from
        this server (so a change within one second still moves it); a string -> as given.
        ``encoding``: gzip, deflate, raw-deflate or br. ``lie``: answer 304 to every
        conditional request even though the body changed. ``delay_s`` before answering.
        """
        if etag is True:
            etag_value: str | None = '"' + hashlib.sha1(body).hexdigest()[:16] + '"'
        else:
            etag_value = etag or None
        if last_modified is True:
            self._last_modified = max(int(time.time()), self._last_modified + 1)
            lm_value: str | None = formatdate(self._last_modified, usegmt=True)
        else:
            lm_value = last_modified or None
        feed = Feed(
            body=encode(body, encoding),
            content_type=content_type,
            etag=etag_value,
            last_modified=lm_value,
            encoding="deflate" if encoding == "raw-deflate" else encoding,
            cache_control=cache_control,
            headers=dict(headers or {}),
            lying_304=lie,
            delay_s=delay_s,
        )

        async def serve(request: web.Request) -> web.StreamResponse:
            if feed.delay_s:
                await asyncio.sleep(feed.delay_s)
            return _serve_feed(request, feed)

        self._routes[path] = serve
        return feed

    def set_response(
        self,
        path: str,
        body: bytes = b"",
        *,
        status: int = 200,
        content_type: str | None = "application/rss+xml",
        headers: Mapping[str, str] | None = None,
        chunked: bool = False,
    ) -> None:
        """A fixed answer: any status, headers and body (HTML as a feed, empty 200, 404,
        oversized bodies). ``chunked``: no Content-Length, so only streaming counts can
        catch an oversized body."""
        hdrs = dict(headers or {})
        if content_type is not None:
            hdrs.setdefault("Content-Type", content_type)

        async def serve(request: web.Request) -> web.StreamResponse:
            if not chunked:
                return web.Response(status=status, body=body, headers=hdrs)
            resp = web.StreamResponse(status=status, headers=hdrs)
            resp.enable_chunked_encoding()
            await resp.prepare(request)
            for i in range(0, len(body), 64 * 1024):
                with contextlib.suppress(ConnectionError):
                    await resp.write(body[i : i + 64 * 1024])
            return resp

        self._routes[path] = serve

    # ------------------------------------------------------------------ hostile behaviours

    def set_throttle(
        self, path: str, status: int = 429, *, retry_after: str | None = "120", times: int = 1
    ) -> None:
        """The first ``times`` requests to ``path`` get ``status`` (+ Retry-After when given);
        later ones reach the route underneath (set it with ``set_feed``)."""
        self._throttles[path] = [(status, retry_after)] * times

    def set_redirect(self, path: str, location: str, status: int = 301) -> None:
        """``location`` is sent verbatim: relative, absolute, another scheme, an IP..."""

        async def serve(request: web.Request) -> web.StreamResponse:
            return web.Response(status=status, headers={"Location": location})

        self._routes[path] = serve

    def set_redirect_chain(
        self, path: str, hops: int, target: str, status: int | list[int] = 301
    ) -> list[str]:
        """``path`` -> ``path/1`` -> ... -> ``target`` in ``hops`` redirects; returns the
        paths that redirect. ``status`` may differ per hop (a list)."""
        statuses = status if isinstance(status, list) else [status] * hops
        paths = [path] + [f"{path}/{i}" for i in range(1, hops)]
        for i, (src, code) in enumerate(zip(paths, statuses, strict=True)):
            self.set_redirect(src, paths[i + 1] if i + 1 < hops else target, code)
        return paths

    def set_slow_drip(
        self, path: str, body: bytes = b"<rss>" + b" " * 10_000, *, interval_s: float = 0.05
    ) -> None:
        """Headers at once, then one byte of ``body`` every ``interval_s``: never silent long
        enough for a read timeout, so only a total timeout ends it."""

        async def serve(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            resp.content_length = len(body)
            await resp.prepare(request)
            try:
                for i in range(len(body)):
                    await resp.write(body[i : i + 1])
                    if await self._stopped_within(interval_s):
                        break
            except ConnectionError:
                pass  # the client gave up, as it should
            return resp

        self._routes[path] = serve

    def set_hang(self, path: str) -> None:
        """Accept the request and never answer (until the server stops)."""

        async def serve(request: web.Request) -> web.StreamResponse:
            await self._stopped_within(3600)
            return web.Response(status=503)

        self._routes[path] = serve

    def set_drop(self, path: str) -> None:
        """Close the connection without sending a single byte of response."""
        self.set_raw(path, b"")

    def set_raw(self, path: str, data: bytes) -> None:
        """Write ``data`` as the whole response, unframed (malformed HTTP), then hang up."""

        async def serve(request: web.Request) -> web.StreamResponse:
            assert request.transport is not None
            if data:
                request.transport.write(data)
                await asyncio.sleep(0.05)  # let the bytes leave before the hang-up
            request.transport.abort()
            raise asyncio.CancelledError  # aiohttp drops the request quietly

        self._routes[path] = serve

    def set_truncated(self, path: str, body: bytes, declared_length: int) -> None:
        """Announce ``declared_length`` bytes, send ``body`` (fewer), then hang up."""

        async def serve(request: web.Request) -> web.StreamResponse:
            resp = web.StreamResponse(headers={"Content-Type": "application/rss+xml"})
            resp.content_length = declared_length
            await resp.prepare(request)
            await resp.write(body)
            await asyncio.sleep(0.05)  # let the bytes leave before the hang-up
            assert request.transport is not None
            request.transport.abort()
            raise asyncio.CancelledError

        self._routes[path] = serve

    def set_bomb(self, path: str, encoding: str = "gzip", size: int = GIB) -> int:
        """A compressed body of ``size`` zeros (gzip or br); returns its wire length."""
        body = gzip_bomb(size) if encoding == "gzip" else br_bomb(size)
        self.set_response(
            path, body, headers={"Content-Encoding": encoding}, content_type="application/rss+xml"
        )
        return len(body)

    # ------------------------------------------------------------------ dispatch

    async def _stopped_within(self, seconds: float) -> bool:
        assert self._stopping is not None
        try:
            await asyncio.wait_for(self._stopping.wait(), seconds)
        except TimeoutError:
            return False
        return True

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        path = request.path
        self.hits[path] += 1
        self.requests.append(SeenRequest(path, request.method, dict(request.headers)))
        if request.transport is not None:
            self._peers.add(request.transport.get_extra_info("peername"))
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            pending = self._throttles.get(path)
            if pending:
                status, retry_after = pending.pop(0)
                hdrs = {"Retry-After": retry_after} if retry_after is not None else {}
                return web.Response(status=status, text="slow down", headers=hdrs)
            handler = self._routes.get(path)
            if handler is None:
                return web.Response(status=404, text="no such feed")
            return await handler(request)
        finally:
            self.in_flight -= 1


def _serve_feed(request: web.Request, feed: Feed) -> web.StreamResponse:
    validators = {}
    if feed.etag:
        validators["ETag"] = feed.etag
    if feed.last_modified:
        validators["Last-Modified"] = feed.last_modified
    if feed.cache_control:
        validators["Cache-Control"] = feed.cache_control
    conditional = "If-None-Match" in request.headers or "If-Modified-Since" in request.headers
    if feed.lying_304 and conditional:
        return web.Response(status=304, headers=validators)
    etags = (feed.etag,) if feed.etag else ()
    mtime = http_date_to_epoch(feed.last_modified) if feed.last_modified else None
    if not_modified(request.headers, etags, mtime):  # the product server's rules
        return web.Response(status=304, headers=validators)
    headers = {"Content-Type": feed.content_type, **validators, **feed.headers}
    if feed.encoding:
        headers["Content-Encoding"] = feed.encoding
    return web.Response(body=feed.body, headers=headers)
