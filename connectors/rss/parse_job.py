"""What a parser process runs: one fetched body -> digest + Kafka-ready records.

The poller hands changed bodies to a pool of parser processes started from a fork server
(see ``rss.poller``). Everything a worker needs is imported by this module and nothing else:
the fork server preloads it once, so workers fork with it in memory. The task function and the
pool initializer live here rather than in ``poller`` because a worker imports the module of
every function it is sent: with them in ``poller`` each worker imported aiohttp, the fetcher,
metrics and kafka-python (~0.3 s CPU per worker per run) to call code that needs none of it.
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import random
import resource
import signal
import threading
from collections.abc import Callable
from typing import Any, TypeVar

from connectors.feed_state import FeedState
from connectors.feeds import FeedSpec
from connectors.records import WireRecord, wire_record
from connectors.rss.digest import Digest, digest_fetch
from connectors.rss.schedule import SchedulePolicy
from streams.net.types import FetchResult, Validators

T = TypeVar("T")
# Limits of one parser process (issue 14.11): whatever a body does to feedparser, a worker gets
# this much address space beyond what it had after start-up, and one task this much CPU.
# Parsing a capped feed needs far less (a 1,000-item feed with 200,000-character contents
# peaked below 300 MB, and the parse of a 72 MB million-entry feed, capped before feedparser,
# took 0.9 s CPU); over a limit the task fails with MemoryError/ParseCpuExceeded, the feed
# counts a failed parse and backs off, and the worker lives on.
PARSE_MEMORY_BYTES = 1 << 30
PARSE_CPU_S = 30
_cpu_budget_s: int | None = None


class ParseCpuExceeded(Exception):
    """A parse task used more than its CPU budget (SIGXCPU from RLIMIT_CPU)."""


def _on_sigxcpu(signum: int, frame: object) -> None:
    raise ParseCpuExceeded(f"parse used more than {_cpu_budget_s} s of CPU")


def limit_worker(memory_bytes: int = PARSE_MEMORY_BYTES, cpu_s: int = PARSE_CPU_S) -> None:
    """Cap this process's address space now and each task's CPU time (see ``within_budget``).

    Only ever called in parser processes: the connector itself runs with no such limits.
    """
    global _cpu_budget_s
    with open("/proc/self/statm", encoding="ascii") as statm:
        size = int(statm.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
    _, hard = resource.getrlimit(resource.RLIMIT_AS)
    wanted = size + memory_bytes
    if hard != resource.RLIM_INFINITY:
        wanted = min(wanted, hard)
    resource.setrlimit(resource.RLIMIT_AS, (wanted, hard))
    _cpu_budget_s = cpu_s
    signal.signal(signal.SIGXCPU, _on_sigxcpu)


def within_budget(fn: Callable[..., T], *args: Any) -> T:
    """``fn(*args)`` with at most the per-task CPU budget when ``limit_worker`` ran here.

    RLIMIT_CPU counts the process's whole life, so each task moves the soft limit to what
    the process used so far plus the budget; the kernel then sends SIGXCPU, which raises
    ``ParseCpuExceeded`` between two Python bytecodes (long C calls finish first; every field
    they see is capped).
    """
    if _cpu_budget_s is None:
        return fn(*args)
    usage = resource.getrusage(resource.RUSAGE_SELF)
    used = int(usage.ru_utime + usage.ru_stime) + 1
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = used + _cpu_budget_s
    if hard != resource.RLIM_INFINITY:
        soft = min(soft, hard)
    resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
    try:
        return fn(*args)
    finally:
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


def digest_job(
    feed: FeedSpec,
    state: FeedState,
    fetched: FetchResult,
    sent: Validators | None,
    now: float,
    policy: SchedulePolicy,
    limit: int,
    seed: int,
) -> tuple[Digest, list[WireRecord]]:
    """``digest_fetch`` with a picklable signature (it runs in parser processes too).

    The articles come back encoded for Kafka, and the digest without them: bytes cost next to
    nothing to pickle, while unpickling pydantic articles in the polling process cost ~100 us
    per article there, on the one core that also fetches and produces.
    """
    digest = within_budget(
        lambda: digest_fetch(
            feed, state, fetched, sent=sent, now=now, policy=policy, rng=random.Random(seed)
        )
    )
    records = [wire_record(article, limit) for article in digest.articles]
    trimmed = sum(1 for record in records if record.trimmed)
    if trimmed:
        digest.truncated["record_size"] += trimmed
    digest.articles = []
    return digest, records


def exit_with_parent() -> None:
    """Pool initializer: limit this parser process (``limit_worker``), and end it when the
    connector is gone.

    Nothing else would after a SIGKILL or an OOM kill of the connector: the worker waits on
    its task queue forever (it holds both ends of that pipe) and keeps the fork server alive.
    Seen after the killed-mid-run test; spawned workers leaked the same way.
    """
    limit_worker()
    parent = multiprocessing.parent_process()
    if parent is None or parent.sentinel is None:
        return

    def watch(sentinel: int) -> None:
        multiprocessing.connection.wait([sentinel])
        os._exit(0)

    threading.Thread(target=watch, args=(parent.sentinel,), daemon=True).start()


def parser_context() -> multiprocessing.context.BaseContext:
    ctx = multiprocessing.get_context("forkserver")
    ctx.set_forkserver_preload([__name__])
    return ctx
