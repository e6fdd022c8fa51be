"""Static feed server: a directory (or an in-memory mapping) of feed files over HTTP.

Role in the flow: the publisher, in front of the connector's fetch step. ``newsflow feeds serve
deploy/feeds/demo`` serves the bundled demo feeds that ``deploy/feeds/demo.yaml`` lists; the
integration and e2e tests and the benchmarks start a ``FeedDirServer`` in a background thread
(``FeedDirServer.from_mapping`` for synthetic feeds that never touch the disk). Nothing in the
pipeline imports it.

It behaves like a well-configured publisher, so that the connector's conditional GETs are
exercised for real:

- ``Content-Type`` by extension, or for ``.xml`` by the root element (RSS, Atom, RDF), with the
  charset of the XML declaration (``text/xml`` without a charset would mean US-ASCII), for HTML
  that of its ``<meta>`` charset (the demo's article pages under ``pages/``);
- a strong ``ETag`` (a hash of the bytes) and ``Last-Modified`` (the file's mtime);
  ``If-None-Match`` (weak comparison, as RFC 9110 asks for GET) and, without it,
  ``If-Modified-Since`` answer ``304``;
- gzip when the client accepts it, compressed once per file version and kept in memory; the
  gzip representation has its own ETag (``"<hash>-gz"``) and either one validates;
- ``HEAD``; ``404`` for unknown paths, hidden files and anything that would leave the directory
  (``..``, encoded or not, and symlinks pointing outside); ``405`` for other methods;
- ``Cache-Control: no-cache`` by default (revalidate every poll; the demo wants short cycles),
  or ``max-age`` when asked, for testing the poller's respect of it.

Files are re-read when their size or mtime changes (one ``stat`` per request), so editing a
feed on disk is seen at the next poll. Nothing is logged per request unless asked: a benchmark
sends tens of thousands of them. ``counts`` tallies responses by status for tests and benches.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import os
import re
import socket
import threading
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime
from email.utils import format_datetime, parsedate_to_datetime
from pathlib import Path
from types import TracebackType
from typing import Final, Self

from aiohttp import web

MAX_FILE_BYTES: Final = 64 * 1024 * 1024  # a feed server, not a file server
_GZIP_MIN_BYTES: Final = 256  # below this the gzip header costs more than it saves
_GZIP_LEVEL: Final = 6

_BY_SUFFIX: Final = {
    ".rss": "application/rss+xml",
    ".atom": "application/atom+xml",
    ".rdf": "application/rdf+xml",
    ".opml": "text/x-opml",
    ".json": "application/json",
    ".html": "text/html",
    ".htm": "text/html",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".yaml": "application/yaml",
    ".yml": "application/yaml",
}
_BY_ROOT: Final = {
    b"rss": "application/rss+xml",
    b"feed": "application/atom+xml",
    b"rdf:rdf": "application/rdf+xml",
}
_XML_DECL = re.compile(rb"^\s*<\?xml[^>]*?encoding\s*=\s*[\"']([A-Za-z0-9._-]+)[\"']")
_FIRST_ELEMENT = re.compile(rb"<([A-Za-z_][\w:.-]*)")
_SKIP_MARKUP = re.compile(rb"<\?.*?\?>|<!--.*?-->|<!DOCTYPE[^>]*>", re.S)
# <meta charset="x"> or <meta http-equiv="Content-Type" content="text/html; charset=x">
_HTML_CHARSET = re.compile(rb"""<meta[^>]*?charset\s*=\s*["']?([A-Za-z0-9._-]+)""", re.I)


def content_type(name: str, head: bytes) -> str:
    """The Content-Type for a file called ``name`` whose first bytes are ``head``."""
    suffix = os.path.splitext(name)[1].lower()
    mime = _BY_SUFFIX.get(suffix)
    looks_xml = head.lstrip().startswith(b"<")
    if mime is None and (suffix == ".xml" or looks_xml):
        body = _SKIP_MARKUP.sub(b"", head[:4096])
        root = _FIRST_ELEMENT.search(body)
        mime = _BY_ROOT.get(root.group(1).lower(), "application/xml") if root else None
    if mime is None:
        return "application/octet-stream"
    if mime.endswith("xml") or mime == "text/x-opml":
        decl = _XML_DECL.match(head)
        # No declaration (and no BOM): XML's default, UTF-8.
        charset = decl.group(1).decode("ascii").lower() if decl else "utf-8"
        return f"{mime}; charset={charset}"
    if mime == "text/html":
        # The page's own declaration, so that the header never contradicts it (the demo's
        # windows-1256 and ISO-8859-1 article pages); UTF-8 when it declares none.
        meta = _HTML_CHARSET.search(head[:2048])
        return f"{mime}; charset={meta.group(1).decode('ascii').lower() if meta else 'utf-8'}"
    if mime.startswith("text/") or mime in ("application/json", "application/yaml"):
        return f"{mime}; charset=utf-8"
    return mime


class _Entry:
    """One version of one file, with everything a response needs precomputed."""

    __slots__ = (
        "_gz",
        "_gz_done",
        "body",
        "content_type",
        "etag",
        "etag_gz",
        "last_modified",
        "mtime",
        "stamp",
    )

    def __init__(self, name: str, body: bytes, mtime: float, stamp: tuple[int, int] | None) -> None:
        self.body = body
        digest = hashlib.blake2b(body, digest_size=12).hexdigest()
        self.etag = f'"{digest}"'
        self.etag_gz = f'"{digest}-gz"'
        self.mtime = int(mtime)  # HTTP dates have whole seconds
        self.last_modified = format_datetime(datetime.fromtimestamp(self.mtime, UTC), usegmt=True)
        self.content_type = content_type(name, body[:4096])
        self.stamp = stamp  # (mtime_ns, size) of the file it was read from
        self._gz: bytes | None = None  # compressed on first demand, then kept
        self._gz_done = False

    def gzipped(self) -> bytes | None:
        """The gzip representation, or None when compression does not pay."""
        if not self._gz_done:
            if len(self.body) >= _GZIP_MIN_BYTES:
                # mtime=0: the same bytes give the same gzip stream, whenever compressed.
                packed = gzip.compress(self.body, compresslevel=_GZIP_LEVEL, mtime=0)
                self._gz = packed if len(packed) < len(self.body) else None
            self._gz_done = True
        return self._gz

    def matches(self, if_none_match: str) -> bool:
        return etag_matches(if_none_match, self.etag, self.etag_gz)


def etag_matches(if_none_match: str, *etags: str) -> bool:
    """Whether an If-None-Match value names one of ``etags``: weak comparison (RFC 9110
    13.1.2, ``W/`` prefixes do not matter for GET), ``*`` matches anything."""

    def bare(tag: str) -> str:
        tag = tag.strip()
        return tag[2:] if tag.startswith("W/") else tag

    ours = {bare(e) for e in etags}
    return any(t.strip() == "*" or bare(t) in ours for t in if_none_match.split(",") if t.strip())


def not_modified(headers: Mapping[str, str], etags: Sequence[str], mtime: float | None) -> bool:
    """Conditional GET: whether a request with ``headers`` gets a 304 for a resource with
    ``etags`` last modified at ``mtime`` (epoch seconds, None: unknown)."""
    inm = headers.get("If-None-Match")
    if inm is not None:
        # RFC 9110 13.2.2: when If-None-Match is present, If-Modified-Since is ignored.
        return etag_matches(inm, *etags)
    ims = headers.get("If-Modified-Since")
    if ims is None or mtime is None:
        return False
    try:
        since = parsedate_to_datetime(ims)
    except (TypeError, ValueError, IndexError):
        return False
    if since.tzinfo is None:
        since = since.replace(tzinfo=UTC)
    return mtime <= since.timestamp()


def http_date_to_epoch(value: str) -> float | None:
    """An HTTP date as epoch seconds, None when it is not one."""
    try:
        stamp = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=UTC)
    return stamp.timestamp()


def clean_path(path: str) -> str | None:
    """A request path -> a relative file name, or None when it is not one we serve: ``..``
    anywhere (clients resolve dot segments before sending, so one on the wire is a probe),
    hidden segments (``.git``), backslashes, NUL. Empty segments and ``.`` are dropped."""
    if "\x00" in path or "\\" in path:
        return None
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if not parts or any(p == ".." or p.startswith(".") for p in parts):
        return None
    return "/".join(parts)


class _DirStore:
    """Files under a directory, read lazily and re-read when they change on disk."""

    def __init__(self, root: Path) -> None:
        root = Path(root)
        if not root.is_dir():
            raise NotADirectoryError(f"{root} is not a directory")
        self.root = root.resolve()
        self._cache: dict[str, _Entry] = {}

    def get(self, name: str) -> _Entry | None:
        path = self.root / name
        try:
            st = path.stat()
        except (OSError, ValueError):
            self._cache.pop(name, None)
            return None
        stamp = (st.st_mtime_ns, st.st_size)
        entry = self._cache.get(name)
        if entry is not None and entry.stamp == stamp:
            return entry
        # Checked on every (re)load rather than cached: a symlink may be re-pointed.
        real = path.resolve()
        if not real.is_relative_to(self.root) or not real.is_file():
            return None
        if st.st_size > MAX_FILE_BYTES:
            return None
        try:
            body = real.read_bytes()  # small files; blocking the loop briefly is fine here
        except OSError:
            return None
        entry = _Entry(name, body, st.st_mtime, stamp)
        self._cache[name] = entry
        return entry

    def names(self) -> list[str]:
        out = []
        for dirpath, dirnames, filenames in os.walk(self.root):
            dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
            rel = Path(dirpath).relative_to(self.root)
            out += [(rel / f).as_posix() for f in sorted(filenames) if not f.startswith(".")]
        return out


class _MemStore:
    """Files held in memory: ``{path: bytes}``, replaceable while the server runs."""

    def __init__(self, files: Mapping[str, bytes], last_modified: datetime | None) -> None:
        self._default_mtime = (last_modified or datetime.now(UTC)).timestamp()
        self._files: dict[str, _Entry] = {}
        for name, data in files.items():
            self.put(name, data)

    def put(self, name: str, data: bytes, last_modified: datetime | None = None) -> None:
        key = clean_path(name)
        if key is None:
            raise ValueError(f"not a servable path: {name!r}")
        mtime = last_modified.timestamp() if last_modified else self._default_mtime
        # Built completely before the (atomic) dict assignment: the server thread only ever
        # sees a whole entry, old or new.
        self._files[key] = _Entry(key, bytes(data), mtime, None)

    def remove(self, name: str) -> None:
        self._files.pop(clean_path(name) or "", None)

    def get(self, name: str) -> _Entry | None:
        return self._files.get(name)

    def names(self) -> list[str]:
        return sorted(self._files)


def accepts_gzip(accept_encoding: str) -> bool:
    """Whether an Accept-Encoding value allows gzip (explicitly, or through ``*``; ``q=0``
    refuses)."""
    gzip_q: float | None = None
    star_q: float | None = None
    for part in accept_encoding.split(","):
        coding, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            key, _, value = param.partition("=")
            if key.strip().lower() == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        coding = coding.strip().lower()
        if coding in ("gzip", "x-gzip"):
            gzip_q = q if gzip_q is None else max(gzip_q, q)
        elif coding == "*":
            star_q = q
    if gzip_q is not None:
        return gzip_q > 0
    return star_q is not None and star_q > 0


class _Handler:
    def __init__(self, store: _DirStore | _MemStore, cache_control: str) -> None:
        self.store = store
        self.cache_control = cache_control
        self.counts: Counter[int] = Counter()

    async def __call__(self, request: web.Request) -> web.StreamResponse:
        response = self._respond(request)
        self.counts[response.status] += 1
        return response

    def _respond(self, request: web.Request) -> web.Response:
        raw = request.match_info.get("path", "")
        if raw in ("", "/"):
            listing = "\n".join(self.store.names()) + "\n"
            return web.Response(text=listing, content_type="text/plain", charset="utf-8")
        name = clean_path(raw)
        entry = self.store.get(name) if name else None
        if entry is None:
            return web.Response(status=404, text="not found\n")
        headers = {
            "ETag": entry.etag,
            "Last-Modified": entry.last_modified,
            "Cache-Control": self.cache_control,
            "Vary": "Accept-Encoding",
        }
        if not_modified(request.headers, (entry.etag, entry.etag_gz), entry.mtime):
            return web.Response(status=304, headers=headers)
        body = entry.body
        if accepts_gzip(request.headers.get("Accept-Encoding", "")):
            packed = entry.gzipped()
            if packed is not None:
                body = packed
                headers["ETag"] = entry.etag_gz
                headers["Content-Encoding"] = "gzip"
        headers["Content-Type"] = entry.content_type
        # aiohttp sends the headers (Content-Length included) but no body for HEAD.
        return web.Response(body=body, headers=headers)


def _make_app(handler: _Handler) -> web.Application:
    app = web.Application()
    app.router.add_get("/{path:.*}", handler)  # HEAD included (allow_head=True)
    return app


def _listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Bound here, not by aiohttp, so that port=0 gives the real port without private attrs;
    # a deep backlog because benchmarks open connections in bursts.
    return socket.create_server((host, port), family=family, backlog=1024)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class BackgroundServer:
    """An aiohttp handler served on a background thread with its own event loop.

    The lifecycle both feed servers share (this module's ``FeedDirServer`` and the hostile
    test server in tests/integration/feed_server.py): the socket is bound here (``port=0``
    gives a free port, read from ``port``), the loop runs on a daemon thread, ``stop`` runs
    ``_before_stop`` (release handlers that wait) and cleans up within ``shutdown_timeout_s``.
    Every request of every method and path goes to ``_handle``.
    """

    shutdown_timeout_s: float = 1.0

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, access_log: bool = False):
        self.host = host
        self._requested_port = port
        self._access_log = access_log
        self._sock: socket.socket | None = None
        self._port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: web.AppRunner | None = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        raise NotImplementedError

    def _make_app(self) -> web.Application:
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._handle)
        return app

    async def _before_stop(self) -> None:
        """Runs on the server's loop first thing in ``stop``."""

    # ---- what callers use ----

    @property
    def port(self) -> int:
        """The bound port; still known after ``stop`` (tests build expected URLs then)."""
        if self._port is None:
            raise RuntimeError("the server was never started")
        return self._port

    @property
    def running(self) -> bool:
        """Serving now (started and not stopped)."""
        return self._thread is not None

    @property
    def base_url(self) -> str:
        """``http://host:port`` (no trailing slash)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def url(self, path: str) -> str:
        return f"{self.base_url}/{path.lstrip('/')}"

    # ---- lifecycle ----

    def start(self, timeout: float = 10.0) -> Self:
        if self._thread is not None:
            raise RuntimeError("already started")
        self._sock = _listen(self.host, self._requested_port)
        self._port = int(self._sock.getsockname()[1])
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._thread = threading.Thread(
            target=self._run_loop, args=(loop,), name="feed-server", daemon=True
        )
        self._thread.start()
        try:
            # Started from this thread so that a failure is raised here, to the caller.
            asyncio.run_coroutine_threadsafe(self._serve(), loop).result(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    async def _serve(self) -> None:
        app = self._make_app()
        # access_log=None turns aiohttp's per-request log line off entirely; a short
        # shutdown_timeout because handlers that hang are released by _before_stop.
        timeout = self.shutdown_timeout_s
        runner = (
            web.AppRunner(app, shutdown_timeout=timeout)
            if self._access_log
            else web.AppRunner(app, shutdown_timeout=timeout, access_log=None)
        )
        await runner.setup()
        self._runner = runner
        assert self._sock is not None
        await web.SockSite(runner, self._sock, backlog=1024).start()

    def _run_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_forever()
        finally:
            loop.close()

    async def _shutdown(self) -> None:
        await self._before_stop()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    def stop(self, timeout: float = 10.0) -> None:
        thread, loop = self._thread, self._loop
        if thread is not None and loop is not None:
            if loop.is_running():
                asyncio.run_coroutine_threadsafe(self._shutdown(), loop).result(timeout)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout)
        self._thread = None
        self._loop = None
        self._close_socket()

    def _close_socket(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


class FeedDirServer(BackgroundServer):
    """The feed server on a background thread with its own event loop.

    ``with FeedDirServer(directory) as srv: fetch(srv.url("ar.xml"))``; ``port=0`` picks a
    free port (``srv.port``). ``from_mapping({path: bytes})`` serves from memory; ``put`` and
    ``remove`` change such files while the server runs (a feed publishing new items).
    """

    def __init__(
        self,
        directory: Path | str | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_age: int | None = None,
        access_log: bool = False,
        _store: _MemStore | None = None,
    ) -> None:
        if (directory is None) == (_store is None):
            raise ValueError("give a directory, or use FeedDirServer.from_mapping")
        super().__init__(host=host, port=port, access_log=access_log)
        self.store: _DirStore | _MemStore = _store or _DirStore(Path(directory or "."))
        cache_control = "no-cache" if max_age is None else f"max-age={int(max_age)}"
        self._handler = _Handler(self.store, cache_control)

    def _make_app(self) -> web.Application:
        return _make_app(self._handler)

    @classmethod
    def from_mapping(
        cls,
        files: Mapping[str, bytes],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        last_modified: datetime | None = None,
        max_age: int | None = None,
        access_log: bool = False,
    ) -> FeedDirServer:
        """Serve ``{path: bytes}`` from memory; ``Last-Modified`` is ``last_modified``
        (default: now) until ``put`` gives a file its own."""
        store = _MemStore(files, last_modified)
        return cls(host=host, port=port, max_age=max_age, access_log=access_log, _store=store)

    @property
    def counts(self) -> Counter[int]:
        """Responses so far by status code (200, 304, 404, ...)."""
        return self._handler.counts

    def put(self, path: str, data: bytes, last_modified: datetime | None = None) -> None:
        """Add or replace an in-memory file (``from_mapping`` servers only)."""
        if not isinstance(self.store, _MemStore):
            raise TypeError("put() is for in-memory servers; write the file instead")
        self.store.put(path, data, last_modified or datetime.now(UTC))

    def remove(self, path: str) -> None:
        if not isinstance(self.store, _MemStore):
            raise TypeError("remove() is for in-memory servers; delete the file instead")
        self.store.remove(path)


def run(
    directory: Path | str,
    host: str = "127.0.0.1",
    port: int = 8765,
    *,
    max_age: int | None = None,
    access_log: bool = False,
) -> None:
    """Serve ``directory`` until interrupted (``newsflow feeds serve DIR``)."""
    handler = _Handler(
        _DirStore(Path(directory)), "no-cache" if max_age is None else f"max-age={int(max_age)}"
    )
    app = _make_app(handler)
    sock = _listen(host, port)
    if access_log:
        web.run_app(app, sock=sock, print=None)
    else:
        web.run_app(app, sock=sock, print=None, access_log=None)
