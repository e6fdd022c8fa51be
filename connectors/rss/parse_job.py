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
import threading

from connectors.feed_state import FeedState
from connectors.feeds import FeedSpec
from connectors.records import WireRecord, wire_record
from connectors.rss.digest import Digest, digest_fetch
from connectors.rss.schedule import SchedulePolicy
from streams.net.types import FetchResult, Validators


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
    digest = digest_fetch(
        feed, state, fetched, sent=sent, now=now, policy=policy, rng=random.Random(seed)
    )
    records = [wire_record(article, limit) for article in digest.articles]
    trimmed = sum(1 for record in records if record.trimmed)
    if trimmed:
        digest.truncated["record_size"] += trimmed
    digest.articles = []
    return digest, records


def exit_with_parent() -> None:
    """Pool initializer: end this parser process when the connector is gone.

    Nothing else would after a SIGKILL or an OOM kill of the connector: the worker waits on
    its task queue forever (it holds both ends of that pipe) and keeps the fork server alive.
    Seen after the killed-mid-run test; spawned workers leaked the same way.
    """
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
