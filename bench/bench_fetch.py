"""Fetch-step benchmark: how cheaply the connector polls unchanged feeds (conditional GET -> 304).

Target: 10,000 unchanged feeds polled in under 60 s on one core. A ``FeedServer`` runs in a
child process (so its CPU is not ours); the real ``Fetcher`` sends ``--n`` conditional GETs to
one feed with ``--concurrency`` slots and prints wall time, requests/s, and the CPU time of the
fetching process (``time.process_time``), which is what the 60 s budget is about. Usage:
    python -m bench.bench_fetch [--n 10000] [--concurrency 64] [--per-host 64]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing as mp
import os
import resource
import time
from collections import Counter
from multiprocessing.connection import Connection

from streams.net.fetch import Fetcher
from streams.net.types import FetchLimits, FetchResult

FEED = b'<?xml version="1.0"?><rss version="2.0"><channel><title>bench</title></channel></rss>'


def _serve(conn: Connection, cpu: int | None) -> None:
    """Child process: serve one feed until told to stop."""
    from tests.integration.feed_server import FeedServer

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    with FeedServer() as srv:
        srv.set_feed("/feed.xml", FEED)
        conn.send(srv.url("/feed.xml"))
        conn.recv()
        conn.send(sum(srv.hits.values()))


async def _poll(url: str, n: int, concurrency: int, per_host: int) -> tuple[Counter[str], float]:
    limits = FetchLimits()
    async with Fetcher(
        user_agent="newsflow-bench/1.0", limits=limits, concurrency=concurrency, per_host=per_host
    ) as fetcher:
        first = await fetcher.fetch(url, allow_private=True)
        assert first.status == "ok", first
        validators = first.validators

        async def one(_: int) -> FetchResult:
            return await fetcher.fetch(url, validators, allow_private=True)

        started = time.perf_counter()
        # Like the poller: far more feeds than slots; the fetcher's semaphores do the queueing.
        results = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - started
    return Counter(r.status if r.status != "error" else f"error:{r.error}" for r in results), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--per-host", type=int, default=64)
    parser.add_argument("--json", help="also write the figures to this file")
    args = parser.parse_args()

    # One core for us, another for the server when there is one: the budget is "one core".
    cores = sorted(os.sched_getaffinity(0))
    server_cpu = cores[1] if len(cores) > 1 else None
    os.sched_setaffinity(0, {cores[0]})

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, server_cpu), daemon=True)
    proc.start()
    url = parent.recv()

    cpu0 = time.process_time()
    statuses, wall = asyncio.run(_poll(url, args.n, args.concurrency, args.per_host))
    cpu = time.process_time() - cpu0

    parent.send("stop")
    hits = parent.recv()
    proc.join(10)
    server_cpu_s = resource.getrusage(resource.RUSAGE_CHILDREN)
    figures = {
        "requests": args.n,
        "concurrency": args.concurrency,
        "per_host": args.per_host,
        "statuses": dict(statuses),
        "server_hits": hits,
        "wall_s": round(wall, 3),
        "requests_per_s": round(args.n / wall, 1),
        "fetcher_cpu_s": round(cpu, 3),
        "fetcher_cpu_us_per_request": round(cpu / args.n * 1e6, 1),
        "server_cpu_s": round(server_cpu_s.ru_utime + server_cpu_s.ru_stime, 3),
        "budget_s_for_10k": 60.0,
        "cpu_share_of_budget": round(cpu / args.n * 10_000 / 60.0, 4),
    }
    width = max(map(len, figures))
    for key, value in figures.items():
        print(f"{key:<{width}}  {value}")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(figures, fh, indent=2)


if __name__ == "__main__":
    main()
