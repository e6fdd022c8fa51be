"""The fetch step's pure rules: the SSRF address policy, Retry-After, Cache-Control max-age,
the resolver guard (with a fake resolver: no network) and the capped decoders."""

from __future__ import annotations

import asyncio
import gzip
import socket
import zlib
from datetime import UTC, datetime, timedelta

import brotli  # type: ignore[import-untyped]
import pytest
from aiohttp.abc import AbstractResolver, ResolveResult

from streams.net.addresses import (
    BlockedAddressError,
    GuardedResolver,
    blocked_reason,
    forbidden_address,
)
from streams.net.decoding import DecodedBody, FetchFailure
from streams.net.headers import parse_max_age, parse_retry_after
from streams.net.types import FetchLimits

# ----------------------------------------------------------------- forbidden_address


@pytest.mark.parametrize(
    ("ip", "reason"),
    [
        # cloud metadata, in every spelling that reaches it
        ("169.254.169.254", "metadata"),
        ("169.254.170.2", "metadata"),
        ("100.100.100.200", "metadata"),
        ("fd00:ec2::254", "metadata"),
        ("::ffff:169.254.169.254", "metadata"),
        ("::ffff:a9fe:a9fe", "metadata"),
        ("64:ff9b::a9fe:a9fe", "metadata"),
        ("2002:a9fe:a9fe::1", "metadata"),
        # unspecified / "this network"
        ("0.0.0.0", "unspecified"),
        ("0.1.2.3", "unspecified"),
        ("::", "unspecified"),
        # loopback
        ("127.0.0.1", "loopback"),
        ("127.255.255.254", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("64:ff9b::7f00:1", "loopback"),
        ("2002:7f00:1::", "loopback"),
        # link-local
        ("169.254.1.1", "link_local"),
        ("fe80::1", "link_local"),
        ("fe80::1%eth0", "link_local"),
        # carrier-grade NAT
        ("100.64.0.1", "cgnat"),
        ("100.127.255.255", "cgnat"),
        # private
        ("10.0.0.1", "private"),
        ("172.16.0.1", "private"),
        ("172.31.255.255", "private"),
        ("192.168.1.1", "private"),
        ("fc00::1", "private"),
        ("fd12:3456::1", "private"),
        ("fec0::1", "private"),
        ("64:ff9b:1::1", "private"),
        ("::ffff:10.1.2.3", "private"),
        # multicast, reserved, not global
        ("224.0.0.1", "multicast"),
        ("239.255.255.250", "multicast"),
        ("ff02::1", "multicast"),
        ("240.0.0.1", "reserved"),
        ("255.255.255.255", "reserved"),
        ("::1.2.3.4", "reserved"),
        ("192.0.2.1", "not_global"),
        ("198.18.0.1", "not_global"),
        ("192.0.0.8", "not_global"),
        ("2001:db8::1", "not_global"),
        ("2001::1", "not_global"),
        # not an address at all
        ("example.com", "invalid"),
        ("127.1", "invalid"),
        ("", "invalid"),
    ],
)
def test_forbidden_address(ip: str, reason: str) -> None:
    assert forbidden_address(ip) == reason


@pytest.mark.parametrize(
    "ip",
    [
        "8.8.8.8",
        "1.1.1.1",
        "93.184.216.34",
        "100.63.255.255",  # just below CGNAT
        "100.128.0.0",  # just above
        "172.32.0.1",  # just outside 172.16/12
        "169.253.255.255",
        "2606:4700:4700::1111",
        "2a00:1450:4001:80b::200e",
        "::ffff:8.8.8.8",
        "64:ff9b::808:808",  # NAT64 of 8.8.8.8
        "2002:808:808::1",  # 6to4 of 8.8.8.8
    ],
)
def test_public_addresses_are_allowed(ip: str) -> None:
    assert forbidden_address(ip) is None


@pytest.mark.parametrize(
    ("ip", "guarded", "private_allowed"),
    [
        ("127.0.0.1", "loopback", None),
        ("10.0.0.1", "private", None),
        ("169.254.1.1", "link_local", None),
        ("100.64.0.1", "cgnat", None),
        ("fd12::1", "private", None),
        ("192.0.2.1", "not_global", None),
        # never unlocked: no feed lives there, and metadata holds credentials
        ("169.254.169.254", "metadata", "metadata"),
        ("fd00:ec2::254", "metadata", "metadata"),
        ("::ffff:169.254.169.254", "metadata", "metadata"),
        ("0.0.0.0", "unspecified", "unspecified"),
        ("224.0.0.1", "multicast", "multicast"),
        ("240.0.0.1", "reserved", "reserved"),
        ("8.8.8.8", None, None),
    ],
)
def test_allow_private_unlocks_only_private_ranges(
    ip: str, guarded: str | None, private_allowed: str | None
) -> None:
    assert blocked_reason(ip, allow_private=False) == guarded
    assert blocked_reason(ip, allow_private=True) == private_allowed


# ----------------------------------------------------------------- GuardedResolver


class FakeResolver(AbstractResolver):
    """Answers from a table, like a DNS server an attacker controls."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.calls: list[str] = []

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        self.calls.append(host)
        if host not in self.table:
            raise OSError(socket.EAI_NONAME, "Name or service not known")
        return [
            ResolveResult(
                hostname=host,
                host=ip,
                port=port,
                family=socket.AF_INET6 if ":" in ip else socket.AF_INET,
                proto=0,
                flags=socket.AI_NUMERICHOST,
            )
            for ip in self.table[host]
        ]

    async def close(self) -> None:
        pass


TABLE = {
    "public.test": ["93.184.216.34"],
    "rebind.test": ["169.254.169.254"],
    "mixed.test": ["10.0.0.7", "93.184.216.34", "::1"],
    "intranet.test": ["10.0.0.7"],
    "mapped.test": ["::ffff:127.0.0.1"],
}


def _resolve(host: str, *, allow_private: bool) -> list[str]:
    guard = GuardedResolver(FakeResolver(TABLE), allow_private=allow_private)
    return [r["host"] for r in asyncio.run(guard.resolve(host, 80))]


def test_resolver_passes_public_addresses() -> None:
    assert _resolve("public.test", allow_private=False) == ["93.184.216.34"]


def test_resolver_drops_forbidden_addresses_from_a_mix() -> None:
    assert _resolve("mixed.test", allow_private=False) == ["93.184.216.34"]
    assert _resolve("mixed.test", allow_private=True) == ["10.0.0.7", "93.184.216.34", "::1"]


@pytest.mark.parametrize("host", ["rebind.test", "intranet.test", "mapped.test"])
def test_resolver_refuses_names_resolving_only_to_forbidden_addresses(host: str) -> None:
    with pytest.raises(BlockedAddressError) as info:
        _resolve(host, allow_private=False)
    assert info.value.host == host
    assert isinstance(info.value, OSError)  # so aiohttp wraps it instead of crashing


def test_resolver_keeps_metadata_blocked_with_allow_private() -> None:
    assert _resolve("intranet.test", allow_private=True) == ["10.0.0.7"]
    with pytest.raises(BlockedAddressError, match="metadata"):
        _resolve("rebind.test", allow_private=True)


def test_resolver_lets_dns_errors_through() -> None:
    with pytest.raises(OSError) as info:
        _resolve("nowhere.test", allow_private=False)
    assert not isinstance(info.value, BlockedAddressError)


# ----------------------------------------------------------------- Retry-After

NOW = datetime(2026, 3, 1, 12, 0, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        ("  7 ", 7.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("99999999", 3600.0),  # capped
        ("Sun, 01 Mar 2026 12:02:00 GMT", 120.0),
        ("Sun, 01 Mar 2026 11:00:00 GMT", 0.0),  # in the past: never negative
        ("Mon, 02 Mar 2026 12:00:00 GMT", 3600.0),  # capped
        ("Sunday, 01-Mar-26 12:00:30 GMT", 30.0),  # RFC 850 form
        ("Sun Mar  1 12:00:10 2026", 10.0),  # asctime form
        ("-5", None),
        ("soon", None),
        ("", None),
        (None, None),
        ("١٢", None),  # non-ASCII digits are not delta-seconds
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, cap_s=3600.0, now=NOW) == expected


def test_parse_retry_after_defaults_to_the_current_time() -> None:
    later = (datetime.now(UTC) + timedelta(seconds=100)).strftime("%a, %d %b %Y %H:%M:%S GMT")
    seconds = parse_retry_after(later, cap_s=3600.0)
    assert seconds is not None and 95 <= seconds <= 100


# ----------------------------------------------------------------- Cache-Control


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("max-age=300", 300),
        ("public, max-age=600", 600),
        ("Max-Age=60, must-revalidate", 60),
        ('max-age="90"', 90),
        ("max-age = 45 ", 45),
        ("no-cache, max-age=0", 0),
        ("s-maxage=100", None),  # shared caches only
        ("s-maxage=100, max-age=20", 20),
        ("max-age=10, max-age=20", 10),  # the first occurrence decides
        ("max-age=-1", None),
        ("max-age=abc", None),
        ("max-age", None),
        ("max-age=", None),
        ("private", None),
        ("", None),
        (None, None),
        ("max-age=99999999999999", 2**31 - 1),
    ],
)
def test_parse_max_age(value: str | None, expected: int | None) -> None:
    assert parse_max_age(value) == expected


# ----------------------------------------------------------------- capped decoding


def _decode(encoding: str, data: bytes, max_body: int = 1 << 20, piece: int = 1000) -> bytes:
    body = DecodedBody(encoding, FetchLimits(max_body_bytes=max_body))
    for i in range(0, len(data), piece):
        body.feed(data[i : i + piece])
    return body.finish()


PAYLOAD = b"<rss><channel><title>t</title></channel></rss>" * 200


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("", PAYLOAD),
        ("identity", PAYLOAD),
        ("gzip", gzip.compress(PAYLOAD)),
        ("x-gzip", gzip.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)),
        ("deflate", zlib.compress(PAYLOAD)[2:-4]),  # raw deflate, as some servers send it
        ("br", brotli.compress(PAYLOAD)),
        ("GZIP", gzip.compress(PAYLOAD)),
        ("gzip, br", brotli.compress(gzip.compress(PAYLOAD))),  # undone in reverse order
    ],
)
def test_decoders_round_trip(encoding: str, data: bytes) -> None:
    assert _decode(encoding, data) == PAYLOAD
    assert _decode(encoding, data, piece=1) == PAYLOAD  # a slow drip, byte by byte


@pytest.mark.parametrize("encoding", ["gzip", "deflate", "br"])
def test_decoders_stop_at_the_body_cap(encoding: str) -> None:
    bomb = {
        "gzip": gzip.compress(bytes(50 << 20)),
        "deflate": zlib.compress(bytes(50 << 20)),
        "br": brotli.compress(bytes(50 << 20), quality=1),
    }[encoding]
    body = DecodedBody(encoding, FetchLimits(max_body_bytes=1 << 20))
    with pytest.raises(FetchFailure) as info:
        body.feed(bomb)  # all at once: the cap must hold inside a single call
    assert info.value.error == "too_large"
    assert sum(len(p) for p in body._parts) <= 1 << 20


def test_decoder_accepts_a_body_exactly_at_the_cap() -> None:
    assert _decode("gzip", gzip.compress(bytes(5000)), max_body=5000) == bytes(5000)
    with pytest.raises(FetchFailure, match="5000"):
        _decode("gzip", gzip.compress(bytes(5001)), max_body=5000)
    with pytest.raises(FetchFailure, match="5000"):
        _decode("", bytes(5001), max_body=5000)


@pytest.mark.parametrize(
    ("encoding", "data"),
    [
        ("gzip", b"this is not gzip at all"),
        ("br", b"this is not brotli at all"),
        ("deflate", b"\xff\xff\xff\xff\xff"),
        ("gzip", gzip.compress(PAYLOAD)[:-20]),  # truncated
        ("br", brotli.compress(PAYLOAD)[:-5]),  # truncated
        ("gzip", b"\x1f"),  # one byte
        ("deflate", b"\x78"),
    ],
)
def test_decoders_reject_bad_data(encoding: str, data: bytes) -> None:
    with pytest.raises(FetchFailure) as info:
        _decode(encoding, data)
    assert info.value.error == "bad_encoding"


@pytest.mark.parametrize("encoding", ["compress", "zstd", "gzip, weird"])
def test_unknown_content_encoding_is_bad_encoding(encoding: str) -> None:
    with pytest.raises(FetchFailure) as info:
        DecodedBody(encoding, FetchLimits())
    assert info.value.error == "bad_encoding"


def test_empty_body_with_content_encoding_is_empty() -> None:
    assert _decode("gzip", b"") == b""
    assert _decode("br", b"") == b""


def test_trailing_bytes_after_a_gzip_stream_are_ignored() -> None:
    assert _decode("gzip", gzip.compress(PAYLOAD) + b"\n\n") == PAYLOAD
    assert _decode("deflate", zlib.compress(PAYLOAD) + b"\0") == PAYLOAD


@pytest.mark.parametrize("piece", [1, 1000, 1 << 20])
def test_trailing_bytes_after_a_br_stream_are_bad_encoding(piece: int) -> None:
    with pytest.raises(FetchFailure) as info:
        _decode("br", brotli.compress(PAYLOAD) + b"junk", piece=piece)
    assert info.value.error == "bad_encoding"
