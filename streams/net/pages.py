"""Fetching article pages like a good citizen: the extract stage's one call per article.

Foundation layer (``streams/net``): built on the guarded ``Fetcher`` (SSRF check after DNS, wire
and decoded size caps, timeouts, redirect limits), plus, per host:

- robots.txt (``streams.net.robots``): fetched once per origin with the same fetcher and
  User-Agent, cached ``robots_ttl_s``, shared by concurrent callers (one fetch in flight per
  origin), checked on every redirect hop. 404 and other 4xx allow all; 5xx, 429 and network
  errors disallow the host for ``robots_error_ttl_s`` (RFC 9309), unless an earlier good copy
  exists, which keeps applying. A host whose robots.txt cannot be reached at all (DNS,
  connect, TLS, timeout) reports that (``network_error``/``timeout``), not
  ``robots_denied``. A Crawl-delay widens the host's spacing up to ``max_crawl_delay_s``.
- concurrency, spacing and backoff (``streams.net.pacing``): ``per_host`` in flight, starts
  ``min_spacing_s`` apart (defaults 2 and 1 s; per host in settings, per call via
  ``host_policy``); a 429/503 backs off that host only (Retry-After, capped at
  ``backoff_max_s``; without one ``backoff_initial_s`` doubling). Every host has its own queue,
  so a slow, hanging or throttling host never holds up calls for other hosts.
- a deadline per call (``deadline_s``) covering queueing, robots.txt, backoff waits, redirects
  and the body; the transfer itself is also bounded by ``total_timeout_s``.

``fetch`` never raises (except ``asyncio.CancelledError``); every outcome is a ``PageResult``
whose ``status`` is one of ``PAGE_STATUSES``. Usage::

    async with PageFetcher(settings.page_fetch) as pages:
        result = await pages.fetch(url, host_policy=HostPolicy(per_host=1, min_spacing_s=5))
        if result.status == "fetched":
            html = result.body  # bytes; result.charset is the HTTP header's word only
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Final, Literal, get_args

from aiohttp.abc import AbstractResolver
from yarl import URL

from streams.net.decoding import FetchFailure
from streams.net.fetch import Fetcher
from streams.net.headers import content_type_charset
from streams.net.pacing import HostPacer, Pace, host_key
from streams.net.robots import RobotsRules, merge_rules, robots_agent, rules_from_fetch
from streams.net.types import FetchLimits, FetchResult
from streams.settings import HostPolicy, PageFetchSettings

__all__ = [
    "PAGE_ACCEPT",
    "PAGE_STATUSES",
    "PageFetcher",
    "PageResult",
    "PageStatus",
    "page_status",
]

PageStatus = Literal[
    "fetched",  # 2xx with a body within the caps
    "robots_denied",  # robots.txt disallows the URL, or answers 5xx/429 (RFC 9309)
    "backoff",  # the host is backing off (429/503) for longer than this call's deadline
    "too_large",  # over max_wire_bytes or max_page_bytes (nothing is kept)
    "timeout",  # deadline_s, total_timeout_s or a read/connect timeout ran out
    "http_4xx",  # the page answered 4xx (429 included: retry_after_s says when)
    "http_5xx",  # the page answered 5xx (503 included)
    "refused",  # the address guard: loopback, private, metadata... (SSRF)
    "redirect_loop",  # a redirect loop or more than max_redirects hops
    "bad_url",  # not an http(s) URL with a host
    "bad_response",  # malformed HTTP, broken compression, a redirect without target, ...
    "network_error",  # DNS, connect, TLS, connection dropped
    "internal",  # a bug; never expected
]
PAGE_STATUSES: Final = frozenset(get_args(PageStatus))

PAGE_ACCEPT: Final = "text/html, application/xhtml+xml;q=0.9, */*;q=0.5"
ROBOTS_ACCEPT: Final = "text/plain, */*;q=0.5"

_BY_ERROR: Final[dict[str, PageStatus]] = {
    "robots_denied": "robots_denied",
    "backoff": "backoff",
    "too_large": "too_large",
    "timeout": "timeout",
    "blocked_address": "refused",
    "bad_url": "bad_url",
    "redirect_loop": "redirect_loop",
    "too_many_redirects": "redirect_loop",
    "bad_redirect": "bad_response",
    "bad_response": "bad_response",
    "bad_encoding": "bad_response",
    "http_304": "bad_response",
    "dns": "network_error",
    "connect": "network_error",
    "tls": "network_error",
    "disconnected": "network_error",
    "client_error": "network_error",
}
_THROTTLED: Final = frozenset({"http_429", "http_503"})
# robots.txt failures that say the host is unreachable, reported as such for the page
_UNREACHABLE_HOST: Final = frozenset({"dns", "connect", "tls", "timeout", "disconnected"})


def page_status(result: FetchResult) -> PageStatus:
    """The page outcome of one ``FetchResult`` (``error`` keeps the finer class)."""
    if result.status == "ok":
        return "fetched"
    error = result.error or ""
    status = _BY_ERROR.get(error)
    if status is not None:
        return status
    if error.startswith("http_") and result.http_status is not None:
        if 400 <= result.http_status < 500:
            return "http_4xx"
        if 500 <= result.http_status < 600:
            return "http_5xx"
        return "bad_response"
    if result.status == "not_modified":  # we never send validators for pages
        return "bad_response"
    return "internal"


@dataclass(frozen=True, slots=True)
class PageResult:
    status: PageStatus
    url: str  # as asked
    final_url: str  # the URL that answered (after redirects) or where it failed
    http_status: int | None = None
    headers: Mapping[str, str] = field(default_factory=dict)  # lower-case names
    body: bytes | None = None  # decoded (decompressed) bytes, status "fetched" only
    content_type: str | None = None
    charset: str | None = None  # from the Content-Type header only (a BOM/meta may differ)
    elapsed_s: float = 0.0  # the whole call: queueing, robots.txt, backoff, transfer
    error: str | None = None  # the finer class: "http_404", "dns", "robots_denied", "deadline"
    error_message: str | None = None
    retry_after_s: float | None = None  # on 429/503, capped
    wire_bytes: int = 0

    @property
    def ok(self) -> bool:
        return self.status == "fetched"


@dataclass(slots=True)
class _Call:
    """One ``fetch`` call's context, seen by its hop gate."""

    first_host: str
    host_policy: HostPolicy | None
    deadline_at: float
    allow_private: bool
    current_url: str


def _headers(pairs: tuple[tuple[str, str], ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


class PageFetcher:
    """See the module docstring. One per process (or stage worker); not thread-safe."""

    def __init__(
        self, settings: PageFetchSettings, *, resolver: AbstractResolver | None = None
    ) -> None:
        """``resolver`` replaces name resolution under the address guard (tests)."""
        self.settings = settings
        self.agent = settings.robots_agent or robots_agent(settings.user_agent)
        self.limits = FetchLimits(
            connect_timeout_s=settings.connect_timeout_s,
            read_timeout_s=settings.read_timeout_s,
            total_timeout_s=settings.total_timeout_s,
            max_compressed_bytes=settings.max_wire_bytes,
            max_body_bytes=settings.max_page_bytes,
            max_redirects=settings.max_redirects,
            retry_after_cap_s=settings.backoff_max_s,
        )
        self.robots_limits = FetchLimits(
            connect_timeout_s=min(settings.connect_timeout_s, settings.robots_timeout_s),
            read_timeout_s=min(settings.read_timeout_s, settings.robots_timeout_s),
            total_timeout_s=settings.robots_timeout_s,
            max_compressed_bytes=settings.robots_max_bytes,
            max_body_bytes=settings.robots_max_bytes,
            max_redirects=5,  # RFC 9309 §2.3.1.2: at least five hops
            retry_after_cap_s=settings.backoff_max_s,
        )
        self._fetcher = Fetcher(
            user_agent=settings.user_agent,
            limits=self.limits,
            concurrency=settings.concurrency,
            per_host=settings.per_host,
            accept=PAGE_ACCEPT,
            resolver=resolver,
        )
        self._pacer = HostPacer()
        self._robots: OrderedDict[str, RobotsRules] = OrderedDict()
        self._robots_tasks: dict[str, asyncio.Task[RobotsRules]] = {}

    async def __aenter__(self) -> PageFetcher:
        await self._fetcher.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def close(self) -> None:
        tasks = list(self._robots_tasks.values())
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(BaseException):
                await task
        await self._fetcher.close()

    # ------------------------------------------------------------------ the call

    async def fetch(
        self,
        url: str,
        *,
        host_policy: HostPolicy | None = None,
        deadline_s: float | None = None,
        allow_private: bool | None = None,
    ) -> PageResult:
        """GET one page politely; never raises (except ``CancelledError``).

        ``host_policy`` overrides the configured politeness for this URL's host (e.g. a feed's
        own setting); ``deadline_s`` the configured budget; ``allow_private`` the configured
        address policy (``newsflow extract --allow-private``)."""
        loop = asyncio.get_running_loop()
        started = loop.time()
        budget = self.settings.deadline_s if deadline_s is None else deadline_s
        try:
            first_host = host_key(URL(url))
        except (ValueError, TypeError):
            first_host = ""  # the fetcher reports bad_url
        call = _Call(
            first_host=first_host,
            host_policy=host_policy,
            deadline_at=started + budget,
            allow_private=self.settings.allow_private if allow_private is None else allow_private,
            current_url=url,
        )

        def gate(target: URL) -> contextlib.AbstractAsyncContextManager[None]:
            return self._page_gate(target, call)

        try:
            async with asyncio.timeout_at(call.deadline_at):
                result = await self._fetcher.fetch(
                    url, allow_private=call.allow_private, hop_gate=gate
                )
        except TimeoutError:
            return PageResult(
                status="timeout",
                url=url,
                final_url=call.current_url,
                elapsed_s=loop.time() - started,
                error="deadline",
                error_message=f"page deadline of {budget:g}s exceeded",
            )
        self._note_outcome(result)
        headers = _headers(result.headers)
        return PageResult(
            status=page_status(result),
            url=url,
            final_url=result.url,
            http_status=result.http_status,
            headers=headers,
            body=result.body if result.status == "ok" else None,
            content_type=result.content_type,
            charset=content_type_charset(result.content_type),
            elapsed_s=loop.time() - started,
            error=result.error,
            error_message=result.error_message,
            retry_after_s=result.retry_after_s,
            wire_bytes=result.bytes_compressed,
        )

    def hosts_in_backoff(self) -> dict[str, float]:
        """Hosts backing off after 429/503 -> seconds left (for a gauge: its ``len``)."""
        return self._pacer.in_backoff(asyncio.get_running_loop().time())

    # ------------------------------------------------------------------ per hop

    @asynccontextmanager
    async def _page_gate(self, target: URL, call: _Call) -> AsyncIterator[None]:
        call.current_url = str(target)
        rules = await self._robots_for(target, call.allow_private)
        if rules.kind == "refused":
            raise FetchFailure(rules.reason, f"robots.txt of {target.host} refused: {rules.reason}")
        if rules.kind == "disallow_all" and rules.reason in _UNREACHABLE_HOST:
            # The host itself cannot be reached: say so (network_error/timeout), not "robots".
            raise FetchFailure(
                rules.reason, f"robots.txt of {target.host} unreachable ({rules.reason})"
            )
        if not rules.allows(str(target), self.agent):
            why = "disallows" if rules.kind == "rules" else f"unreachable ({rules.reason})"
            raise FetchFailure("robots_denied", f"robots.txt of {target.host} {why}: {target}")
        key = host_key(target)
        async with self._pacer.hold(key, self._pace(key, call, rules), call.deadline_at):
            yield

    def _policy(self, key: str, call: _Call | None) -> HostPolicy | None:
        if call is not None and call.host_policy is not None and key == call.first_host:
            return call.host_policy
        hosts = self.settings.hosts
        if not hosts:
            return None
        exact = hosts.get(key)
        if exact is not None or key.startswith("["):  # IPv6: exact only
            return exact
        name, _, port = key.rpartition(":") if ":" in key else (key, "", "")
        if name.replace(".", "").isdigit():  # IPv4: exact only
            return None
        labels = name.split(".")
        for i in range(1, len(labels)):  # example.org also covers news.example.org
            candidate = ".".join(labels[i:])
            policy = hosts.get(f"{candidate}:{port}" if port else candidate)
            if policy is not None:
                return policy
        return None

    def _pace(self, key: str, call: _Call | None, rules: RobotsRules | None) -> Pace:
        policy = self._policy(key, call)
        per_host = policy.per_host if policy else self.settings.per_host
        spacing = policy.min_spacing_s if policy else self.settings.min_spacing_s
        if rules is not None and self.settings.max_crawl_delay_s > 0:
            delay = rules.crawl_delay(self.agent)
            if delay is not None:
                spacing = max(spacing, min(delay, self.settings.max_crawl_delay_s))
        return Pace(per_host=per_host, min_spacing_s=spacing)

    # ------------------------------------------------------------------ robots.txt

    async def _robots_for(self, target: URL, allow_private: bool) -> RobotsRules:
        origin = target.origin()
        key = f"{origin} {'private' if allow_private else 'guarded'}"
        cached = self._robots.get(key)
        if cached is not None and cached.expires_at > asyncio.get_running_loop().time():
            self._robots.move_to_end(key)
            return cached
        task = self._robots_tasks.get(key)
        if task is None:
            task = asyncio.create_task(self._load_robots(key, origin, allow_private, cached))
            self._robots_tasks[key] = task
            task.add_done_callback(lambda t: self._robots_done(key, t))
        # shield: a caller that hits its deadline must not cancel the fetch others wait for
        return await asyncio.shield(task)

    def _robots_done(self, key: str, task: asyncio.Task[RobotsRules]) -> None:
        self._robots_tasks.pop(key, None)
        if not task.cancelled():
            task.exception()  # retrieved even when every waiter left

    async def _load_robots(
        self, key: str, origin: URL, allow_private: bool, previous: RobotsRules | None
    ) -> RobotsRules:
        loop = asyncio.get_running_loop()
        deadline_at = loop.time() + self.settings.robots_timeout_s

        @asynccontextmanager
        async def gate(target: URL) -> AsyncIterator[None]:
            hop = host_key(target)
            async with self._pacer.hold(hop, self._pace(hop, None, None), deadline_at):
                yield

        url = str(origin.with_path("/robots.txt"))
        try:
            async with asyncio.timeout_at(deadline_at):
                result = await self._fetcher.fetch(
                    url,
                    allow_private=allow_private,
                    limits=self.robots_limits,
                    accept=ROBOTS_ACCEPT,
                    hop_gate=gate,
                )
        except TimeoutError:
            result = FetchResult(status="error", url=url, error="timeout")
        if result.error == "backoff":
            # The host is throttling us: the page waits or fails as "backoff"; nothing cached.
            raise FetchFailure("backoff", result.error_message or "host in backoff")
        self._note_outcome(result)
        now = loop.time()
        rules = merge_rules(
            previous,
            rules_from_fetch(
                result,
                now=now,
                ttl_s=self.settings.robots_ttl_s,
                error_ttl_s=self.settings.robots_error_ttl_s,
            ),
        )
        self._robots[key] = rules
        self._robots.move_to_end(key)
        while len(self._robots) > self.settings.robots_cache_size:
            self._robots.popitem(last=False)
        return rules

    def _note_outcome(self, result: FetchResult) -> None:
        """429/503 put the answering host in backoff; a success resets its doubling."""
        try:
            key = host_key(URL(result.url))
        except (ValueError, TypeError):
            return
        if result.error in _THROTTLED:
            self._pacer.note_throttled(
                key,
                result.retry_after_s,
                initial_s=self.settings.backoff_initial_s,
                cap_s=self.settings.backoff_max_s,
            )
        elif result.status == "ok":
            self._pacer.note_ok(key)
