"""Content-Encoding undone chunk by chunk under two caps (wire bytes and decoded bytes).

Foundation layer (``streams/net``), used by ``streams.net.fetch.Fetcher``. zlib gets
``max_length`` and brotli ``output_buffer_limit``, so a bomb never expands in memory past the
cap (plus brotli's ~32 KiB minimum output buffer). Stacked codings (``gzip, br``) are undone in
reverse order; bytes after the end of a gzip/deflate stream are ignored (padding is common),
after a br stream they are ``bad_encoding`` (brotli cannot tell where its stream ended inside a
chunk); a compressed stream that stops early is ``bad_encoding``.
"""

from __future__ import annotations

import zlib
from typing import Any, Protocol

import brotli  # no stubs; used through Any

from streams.net.types import FetchLimits

__all__ = ["DecodedBody", "FetchFailure"]


class FetchFailure(Exception):
    """A classified failure raised inside a fetch; ``Fetcher.fetch`` turns it into the
    ``FetchResult``'s ``error`` (a short class such as ``too_large``) and ``error_message``.
    A per-hop gate (see ``Fetcher.fetch``) may raise it too, to refuse a hop."""

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
            raise FetchFailure("bad_encoding", f"invalid {self._coding} data: {exc}") from None
        self._out += len(out)
        if self._out > self._cap:
            raise FetchFailure("too_large", f"body exceeds {self._cap} bytes after {self._coding}")
        return out

    def finish(self) -> None:
        if self._fed and (self._d is None or not self._d.eof):
            raise FetchFailure("bad_encoding", f"{self._coding} stream ends early")


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
            raise FetchFailure("bad_encoding", "bytes after the end of the br stream")
        self._fed = True
        parts: list[bytes] = []
        try:
            chunk: bytes = self._d.process(data, output_buffer_limit=self._cap - self._out + 1)
            while True:
                self._out += len(chunk)
                if self._out > self._cap:
                    raise FetchFailure("too_large", f"body exceeds {self._cap} bytes after br")
                parts.append(chunk)
                if self._d.can_accept_more_data() or self._d.is_finished():
                    break
                # The limit was reached inside this input: drain with empty input, as brotli
                # requires, still bounded per call.
                chunk = self._d.process(b"", output_buffer_limit=self._cap - self._out + 1)
        except brotli.error as exc:
            raise FetchFailure("bad_encoding", f"invalid br data: {exc}") from None
        return b"".join(parts)

    def finish(self) -> None:
        if self._fed and not self._d.is_finished():
            raise FetchFailure("bad_encoding", "br stream ends early")


class DecodedBody:
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
                raise FetchFailure("bad_encoding", f"unsupported Content-Encoding {coding!r}")
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
                raise FetchFailure("too_large", f"body exceeds {self._cap} bytes")
            self._parts.append(data)

    def finish(self) -> bytes:
        for stage in self._stages:
            stage.finish()
        return b"".join(self._parts)
