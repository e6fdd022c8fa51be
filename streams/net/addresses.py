"""The SSRF address policy every outgoing HTTP request of newsflow passes (feeds and pages).

Foundation layer (``streams/net``): used by ``streams.net.fetch.Fetcher``, which both the feed
connector and the extract stage use; imports nothing of newsflow.

- ``forbidden_address`` says why an IP must not be dialled (``None``: public unicast).
- ``blocked_reason`` applies the fetch's policy: ``allow_private=True`` (a feed list that
  deliberately points at an intranet) unlocks loopback, private, link-local, CGNAT and other
  non-global unicast ranges. Cloud metadata endpoints, unspecified, multicast and reserved
  addresses stay blocked always: no feed or page lives there and the metadata service is the
  classic SSRF prize.
- ``GuardedResolver`` runs the check after DNS resolution, inside the resolver aiohttp connects
  with, so the address checked is the address dialled (no DNS-rebinding window). When a name
  resolves to a mix, the forbidden addresses are dropped and only the rest is dialled.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Final

from aiohttp.abc import AbstractResolver, ResolveResult

__all__ = [
    "ALWAYS_BLOCKED",
    "BlockedAddressError",
    "GuardedResolver",
    "blocked_reason",
    "forbidden_address",
]

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
