"""Fetch-step benchmark: how cheaply the connector polls unchanged feeds (conditional GET -> 304).

Target: 10,000 unchanged feeds polled in under 60 s on one core. A ``FeedServer`` runs in a
child process pinned to another core (so its CPU is not ours); this process is pinned to one.
In alternating rounds (>= 3 of each): *fetcher*, the real guarded ``Fetcher`` sending ``--n``
conditional GETs to one feed with ``--concurrency`` slots, and *bare*, a plain aiohttp session
sending the same requests with the same concurrency (no SSRF check, caps or pacing). Prints
the median and min-max of requests per wall second and per CPU second of each side and of the
ratio fetcher/bare, and the CPU per request, which is what the 60 s budget is about. Usage:
    python -m bench.bench_fetch [--n 10000] [--concurrency 64] [--per-host 64] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing as mp
import os
import time
from collections import Counter
from collections.abc import Callable
from multiprocessing.connection import Connection
from typing import Any

import aiohttp

from bench.common import (
    MIN_ROUNDS,
    ROOT,
    alternate,
    fmt_spread,
    machine_load,
    ratio_report,
    save_result,
    spread,
)
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


async def _bare(url: str, n: int, concurrency: int) -> tuple[Counter[str], float]:
    """The same conditional GETs through a bare aiohttp session: the floor for the fetcher."""
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        async with session.get(url) as resp:
            await resp.read()
            headers = {"If-None-Match": resp.headers.get("ETag", "")}
        slots = asyncio.Semaphore(concurrency)

        async def one(_: int) -> str:
            async with slots, session.get(url, headers=headers) as resp:
                await resp.read()
                return "not_modified" if resp.status == 304 else str(resp.status)

        started = time.perf_counter()
        statuses = await asyncio.gather(*(one(i) for i in range(n)))
        wall = time.perf_counter() - started
    return Counter(statuses), wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--per-host", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    args = parser.parse_args()
    load = machine_load(busy=True)
    print(f"load average {load['loadavg']} on {load['cpu_count']} CPUs", flush=True)

    # One core for us, another for the server when there is one: the budget is "one core".
    cores = sorted(os.sched_getaffinity(0))
    server_cpu = cores[1] if len(cores) > 1 else None
    os.sched_setaffinity(0, {cores[0]})

    ctx = mp.get_context("spawn")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_serve, args=(child, server_cpu), daemon=True)
    proc.start()
    url = parent.recv()

    def side(run: Callable[[], tuple[Counter[str], float]]) -> Callable[[int], dict[str, Any]]:
        def measure(_rnd: int) -> dict[str, Any]:
            cpu0 = time.process_time()
            statuses, wall = run()
            cpu = time.process_time() - cpu0
            return {
                "statuses": dict(statuses),
                "s": wall,
                "cpu_s": cpu,
                "per_s": args.n / wall,
                "per_cpu_s": args.n / cpu,
                "cpu_us_per_request": cpu / args.n * 1e6,
            }

        return measure

    try:
        rounds = alternate(
            {
                "fetcher": side(
                    lambda: asyncio.run(_poll(url, args.n, args.concurrency, args.per_host))
                ),
                "bare": side(lambda: asyncio.run(_bare(url, args.n, args.concurrency))),
            },
            args.rounds,
        )
    finally:
        parent.send("stop")
        hits = parent.recv()
        proc.join(10)
    print("-- requests per wall second")
    wall = ratio_report(rounds, "per_s", [("fetcher", "bare", None)])
    print("-- requests per CPU second of this process")
    cpu = ratio_report(rounds, "per_cpu_s", [("fetcher", "bare", None)], unit="/CPU s")
    us = spread([r["cpu_us_per_request"] for r in rounds["fetcher"]])
    share = us["median"] * 10_000 / 1e6 / 60.0
    print(f"fetcher CPU per request {fmt_spread(us)} us: 10,000 feeds = {share:.1%} of 60 s")
    result = {
        "requests": args.n,
        "concurrency": args.concurrency,
        "per_host": args.per_host,
        "server_hits": hits,
        "rounds": rounds,
        "wall": wall,
        "cpu": cpu,
        "fetcher_cpu_us_per_request": us,
        "budget_s_for_10k": 60.0,
    }
    path = save_result(f"fetch-{time.strftime('%Y%m%d-%H%M%S')}.json", result, load)
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
