"""Connector benchmark: whole path vs bare feedparser, and 10,000 unchanged feeds.

1. Throughput (side by side, alternating, in one run): ``--feeds`` synthetic feeds of
   ``--items`` items (multilingual, ~100-word summaries) served from memory by a feed server in
   a child process on the other core. *Bare*: ``feedparser.parse`` over the same bodies, in
   memory. *Whole*: the real connector (``Connector.run_once``: fetch over HTTP, body hash,
   parse, normalise, dedup, produce to the real Kafka with acks=all, flush, save state) from a
   fresh state. This process is pinned to one core. Target: whole >= 80 % of bare (entries/s).
2. Unchanged feeds: ``--many`` feeds (default 10,000) polled once to build state, then polled
   again in a child process pinned to one core: with validators (all 304) and with validators
   distrusted (unconditional GET, same body -> body hash, no parse). Target: < 60 s each.
   Reports wall time, CPU time and peak RSS of that child.

    python -m bench.bench_connector [--feeds 200] [--items 50] [--many 10000] [--rounds 2]

All feeds share one host here, so the per-host politeness limit is raised to the concurrency
(with real feeds it spreads over many hosts). Results: printed, and JSON in bench/results/.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import multiprocessing as mp
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import feedparser

from bench.common import ROOT, save_result
from connectors.feed_state import SqliteFeedStateStore
from connectors.feeds import FeedList, FeedSpec, save_feed_list
from connectors.producer import ArticleProducer
from connectors.rss.poller import Connector
from connectors.samplefeeds import synthetic_feed
from streams import topics
from streams.bootstrap import ensure_topics
from streams.settings import Settings


def _serve(conn: Connection, feeds: int, items: int, cpu: int | None) -> None:
    from connectors.feedserver import FeedDirServer

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    files = {f"f{i}.xml": synthetic_feed(i, items, full_text=False, seed=7) for i in range(feeds)}
    with FeedDirServer.from_mapping(files) as srv:
        conn.send(srv.base_url)
        conn.recv()


def _server(feeds: int, items: int) -> tuple[mp.Process, Connection, str]:
    parent, child = mp.Pipe()
    cpus = sorted(os.sched_getaffinity(0))
    proc = mp.Process(
        target=_serve, args=(child, feeds, items, cpus[-1] if len(cpus) > 1 else None)
    )
    proc.start()
    base = parent.recv()
    return proc, parent, base


def _warm_up(base: str, feeds: int) -> None:
    """Fetch every feed once, untimed: the server compresses each body on its first request,
    and that CPU is the publisher's, not ours."""
    import aiohttp

    async def run() -> None:
        async with aiohttp.ClientSession() as session:
            for i in range(feeds):
                async with session.get(f"{base}/f{i}.xml") as resp:
                    await resp.read()

    asyncio.run(run())


def _feed_list(base: str, feeds: int) -> FeedList:
    return FeedList(
        allow_private_addresses=True,
        feeds=tuple(FeedSpec(id=f"f{i}", url=f"{base}/f{i}.xml") for i in range(feeds)),
    )


def _settings(namespace: str, state: Path) -> Settings:
    os.environ["NEWSFLOW_TOPICS__NAMESPACE"] = namespace
    os.environ["NEWSFLOW_CONNECTOR__STATE_PATH"] = str(state)
    os.environ["NEWSFLOW_CONNECTOR__PER_HOST"] = os.environ.get(
        "NEWSFLOW_CONNECTOR__CONCURRENCY", "64"
    )
    os.environ["NEWSFLOW_CONNECTOR__METRICS_PORT"] = "0"
    return Settings()


def _run_connector(settings: Settings, flist: FeedList) -> tuple[dict[str, Any], float, float]:
    store = SqliteFeedStateStore(settings.connector.state_path)
    producer = ArticleProducer(settings)
    try:
        connector = Connector(settings.connector, flist, store, producer)
        cpu0, wall0 = time.process_time(), time.perf_counter()
        summary = asyncio.run(connector.run_once(every_feed=True))
        return summary.as_dict(), time.perf_counter() - wall0, time.process_time() - cpu0
    finally:
        producer.close()
        store.close()


def throughput(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    bodies = [synthetic_feed(i, args.items, full_text=False, seed=7) for i in range(args.feeds)]
    entries = sum(len(feedparser.parse(io.BytesIO(b)).entries) for b in bodies[:3])
    proc, conn, base = _server(args.feeds, args.items)
    rows: list[dict[str, Any]] = []
    try:
        flist = _feed_list(base, args.feeds)
        _warm_up(base, args.feeds)
        for rnd in range(args.rounds):
            t0 = time.perf_counter()
            n = sum(len(feedparser.parse(io.BytesIO(b)).entries) for b in bodies)
            bare_s = time.perf_counter() - t0
            ns = f"bench{uuid.uuid4().hex[:8]}."
            settings = _settings(ns, tmp / f"tp-{rnd}.sqlite")
            ensure_topics(settings, lambda _m: None, (topics.RAW,))
            summary, whole_s, whole_cpu = _run_connector(settings, flist)
            produced = summary["articles"].get("new", 0)
            rows.append(
                {
                    "round": rnd,
                    "entries": n,
                    "bare_s": bare_s,
                    "bare_per_s": n / bare_s,
                    "whole_s": whole_s,
                    "whole_cpu_s": whole_cpu,
                    "produced": produced,
                    "whole_per_s": produced / whole_s,
                    "ratio": (produced / whole_s) / (n / bare_s),
                }
            )
            r = rows[-1]
            print(
                f"round {rnd}: bare feedparser {r['bare_per_s']:.0f} entries/s, whole path "
                f"{r['whole_per_s']:.0f} articles/s ({produced}/{n} produced, poller CPU "
                f"{whole_cpu:.1f}s of {whole_s:.1f}s) -> ratio {r['ratio']:.2f}",
                flush=True,
            )
    finally:
        conn.send("stop")
        proc.join(10)
    del entries
    return {"feeds": args.feeds, "items": args.items, "rounds": rows}


def _pass(state: Path, feeds_yaml: Path, env: dict[str, str]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.bench_connector", "--pass-only", str(state), str(feeds_yaml)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-3000:])
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def pass_only(state: Path, feeds_yaml: Path) -> None:
    """Child: one `--once --all` pass over an existing state, pinned to one core."""
    from connectors.feeds import load_feed_list

    os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[0]})
    settings = Settings()
    summary, wall, cpu = _run_connector(settings, load_feed_list(feeds_yaml))
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"summary": summary, "wall_s": wall, "cpu_s": cpu, "peak_rss_mb": rss_mb}))


def unchanged(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    proc, conn, base = _server(args.many, args.many_items)
    try:
        flist = _feed_list(base, args.many)
        feeds_yaml = tmp / "many.yaml"
        save_feed_list(feeds_yaml, flist)
        ns = f"bench{uuid.uuid4().hex[:8]}."
        state = tmp / "many.sqlite"
        settings = _settings(ns, state)
        ensure_topics(settings, lambda _m: None, (topics.RAW,))
        t0 = time.perf_counter()
        first, wall, cpu = _run_connector(settings, flist)
        print(
            f"first poll of {args.many} feeds: {first['articles'].get('new', 0)} articles in "
            f"{wall:.1f}s (CPU {cpu:.1f}s); results {first['results']}",
            flush=True,
        )
        out: dict[str, Any] = {
            "feeds": args.many,
            "first_poll": {"wall_s": wall, "cpu_s": cpu, "summary": first},
        }
        for name, trust in (("conditional_304", True), ("unconditional_same_body", False)):
            copy = tmp / f"{name}.sqlite"
            src, dst = SqliteFeedStateStore(state), SqliteFeedStateStore(copy)
            states = list(src.load_all().values())
            for st in states:
                # Distrusted validators: every poll is a full GET, the body hash saves the parse.
                st.trust_validators = trust
            dst.save(states)
            src.close()
            dst.close()
            env = {**os.environ, "NEWSFLOW_CONNECTOR__STATE_PATH": str(copy)}
            r = _pass(copy, feeds_yaml, env)
            out[name] = r
            print(
                f"{name}: {args.many} feeds in {r['wall_s']:.1f}s wall, {r['cpu_s']:.1f}s CPU, "
                f"peak RSS {r['peak_rss_mb']:.0f} MB; results {r['summary']['results']}",
                flush=True,
            )
        out["total_s"] = time.perf_counter() - t0
        return out
    finally:
        conn.send("stop")
        proc.join(10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--items", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--many", type=int, default=10_000)
    parser.add_argument("--many-items", type=int, default=5)
    parser.add_argument("--skip-many", action="store_true")
    parser.add_argument("--pass-only", nargs=2, metavar=("STATE", "FEEDS"))
    args = parser.parse_args()
    if args.pass_only:
        pass_only(Path(args.pass_only[0]), Path(args.pass_only[1]))
        return
    with tempfile.TemporaryDirectory(prefix="bench-connector-") as tmpdir:
        tmp = Path(tmpdir)
        result: dict[str, Any] = {"throughput": throughput(args, tmp)}
        if not args.skip_many:
            result["unchanged"] = unchanged(args, tmp)
    rounds = result["throughput"]["rounds"]
    mean_ratio = sum(r["ratio"] for r in rounds) / len(rounds)
    print(f"whole path / bare feedparser: mean ratio {mean_ratio:.2f} (target >= 0.80)")
    path = save_result(f"connector-{time.strftime('%Y%m%d-%H%M%S')}.json", result)
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
