"""Enrich-worker memory on long real news: does RSS level off after warm-up? (issue 14 item 8)

A real `newsflow worker enrich` process on private topics is fed Arabic news articles from
``../shared/data/unlabelled/ar_saudinewsnet`` (not shipped; ~1,600 characters each, 31,030
articles — cycled with a fresh id when ``--n`` is larger, so the vocabulary stops growing after
the first pass) in chunks of ``--chunk``. After each chunk is fully enriched, the worker's
VmRSS is sampled. Prints RSS at each checkpoint and the growth between the warm-up mark
(``--warm``, default 10,000 articles) and the end; the target is ≤ 10 %.
Writes bench/results/<--out> (memory.json) with the machine's load.

``--probe`` loads bench/memprobe into the worker: at every checkpoint it reports the live
Python objects by type (the models frozen by ``gc.freeze()`` excluded) and glibc's heap figures
(in use vs. free but kept), which tells a growing cache or retained messages (objects grow)
from fragmentation or native memory (objects flat, heap or RSS grow). Strings are not counted
by the gc: a cache of str values grows RSS with a flat object count. ``--trace-from N`` adds
tracemalloc snapshots (slow: several times the CPU).

    python -m bench.bench_memory [--n 30000] [--warm 10000] [--chunk 2000] [--data DIR]
        [--probe] [--trace-from N] [--out memory.json] [--web-port 16068]

One long run per invocation (not alternated: the quantity is a growth curve, not a rate).
Results of issue 14.8 (SaudiNewsNet, nice -n 10 on the shared 2-core machine):
memory-before.json (RSS +19.7 % from 10k to 20k articles), memory-after-wordcaches.json (word
caches bounded: +8.1 % from 10k to 24k), memory-after-24k.json (+ linker memos: +4.1 %),
memory-after.json (+ small-value caches at 20,000 entries).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
import time
import uuid
import zipfile
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from bench.bench_enrich import vm
from bench.common import machine_load, private_env, produce_all, save_result, start_worker
from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.kafka_clients import client_options
from streams.schema import FeedRef, Source, encode
from streams.schema.ids import article_id
from streams.schema.models import ExtractedArticle
from streams.settings import Settings

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def articles(data: Path) -> Iterator[dict[str, str]]:
    folder = data / "unlabelled" / "ar_saudinewsnet"
    zips = sorted(folder.glob("*.zip"))
    if not zips:
        raise SystemExit(f"no SaudiNewsNet zips in {folder} (use --data DIR)")
    for path in zips:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                for row in json.loads(zf.read(name)):
                    if row.get("content"):
                        yield row


def records(data: Path, n: int) -> Iterator[ExtractedArticle]:
    now = datetime.now(UTC)
    made = 0
    cycle = 0
    while made < n:
        for row in articles(data):
            if made >= n:
                return
            url = f"{row['url']}#bench{cycle}"
            yield ExtractedArticle(
                article_id=article_id(url),
                source=Source(
                    feed=FeedRef(
                        feed_id=f"bench-{row.get('source', 'ar')}", url="https://b.example/"
                    ),
                    url=url,
                    title=row.get("title") or "",
                    summary="",
                    content=row["content"],
                    language_hint="ar",
                    fetched_at=now,
                    first_seen_at=now,
                ),
            )
            made += 1
        cycle += 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=30000)
    parser.add_argument("--warm", type=int, default=10000)
    parser.add_argument("--chunk", type=int, default=2000)
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--timeout", type=float, default=3600)
    parser.add_argument(
        "--probe",
        action="store_true",
        help="load bench/memprobe into the worker: live objects by type and glibc heap figures "
        "at every checkpoint (bench/results/memory-probe/)",
    )
    parser.add_argument(
        "--trace-from",
        type=int,
        default=0,
        help="with --probe: start tracemalloc at this many articles and dump a snapshot at "
        "every later checkpoint (diff two with --diff A B)",
    )
    parser.add_argument("--out", default="memory.json", help="file name in bench/results/")
    parser.add_argument("--web-port", type=int, default=16068, help="the worker's web port")
    args = parser.parse_args()
    load_before = machine_load(busy=True)
    print(f"load average {load_before['loadavg']} on {load_before['cpu_count']} CPUs", flush=True)

    unique = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="newsflow-bench-mem-"))
    env = private_env(unique, tmp, web_port=args.web_port)
    probe_dir: Path | None = None
    if args.probe:
        probe_dir = tmp / "probe"
        probe_dir.mkdir()
        env["NEWSFLOW_MEMPROBE"] = str(probe_dir)
        here = str(Path(__file__).resolve().parent / "memprobe")
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        print(f"probe answers in {probe_dir}", flush=True)
    settings = Settings()
    ensure_topics(settings, lambda _m: None)
    in_topic = topics.STAGES["enrich"]["input"].topic_name(settings.topics)
    out_topic = topics.ENRICHED.topic_name(settings.topics)
    consumer = KafkaConsumer(**client_options(settings.kafka), group_id=None)
    parts = [TopicPartition(out_topic, p) for p in consumer.partitions_for_topic(out_topic)]
    consumer.assign(parts)
    log = tmp / "enrich-worker.log"
    proc = start_worker("enrich", env, log)
    samples: list[dict[str, Any]] = []
    sent = 0
    chars = 0
    started = time.monotonic()
    deadline = started + args.timeout
    try:
        chunk: list[tuple[bytes, bytes]] = []
        for rec in records(args.data, args.n):
            chars += len(rec.source.content or "")
            chunk.append((rec.article_id.encode(), encode(rec)))
            if len(chunk) < args.chunk:
                continue
            sent = _feed(settings, in_topic, chunk, sent, consumer, parts, proc, log, deadline)
            chunk = []
            samples.append(_sample(proc.pid, sent, started))
            print(_line(samples[-1]), flush=True)
            if probe_dir is not None:
                _probe(probe_dir, samples[-1], args.trace_from)
        if chunk:
            sent = _feed(settings, in_topic, chunk, sent, consumer, parts, proc, log, deadline)
            samples.append(_sample(proc.pid, sent, started))
            print(_line(samples[-1]), flush=True)
    finally:
        consumer.close()
        proc.terminate()
        try:
            proc.wait(120)  # a loaded machine: the worker's shutdown can take over 30 s
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    warm = next((s for s in samples if s["articles"] >= args.warm), samples[0])
    end = samples[-1]
    growth = (end["rss_mb"] - warm["rss_mb"]) / warm["rss_mb"]
    print(
        f"{sent} articles, {chars / max(sent, 1):.0f} characters each on average; RSS "
        f"{warm['rss_mb']:.0f} MB at {warm['articles']} -> {end['rss_mb']:.0f} MB at "
        f"{end['articles']}: {growth:+.1%} (target <= +10%); peak {end['hwm_mb']:.0f} MB"
    )
    save_result(
        args.out,
        {
            "n": sent,
            "chars_per_article": chars / max(sent, 1),
            "warm": args.warm,
            "growth": growth,
            "samples": samples,
        },
        load_before,
    )


def _feed(
    settings: Settings,
    topic: str,
    chunk: list[tuple[bytes, bytes]],
    sent: int,
    consumer: KafkaConsumer,
    parts: list[TopicPartition],
    proc: Any,
    log: Path,
    deadline: float,
) -> int:
    produce_all(settings, topic, chunk)
    target = sent + len(chunk)
    while sum(consumer.end_offsets(parts).values()) < target:
        if proc.poll() is not None:
            raise RuntimeError(f"worker exited: {log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out at {sent} articles; see {log}")
        time.sleep(0.2)
    return target


def _probe(folder: Path, sample: dict[str, Any], trace_from: int) -> None:
    """Ask the worker's probe for object counts (and a tracemalloc snapshot); keep a summary."""
    n = sample["articles"]
    what = "snap" if trace_from and n >= trace_from else "counts"
    (folder / f"{n:08d}.req").write_text(what)
    answer = folder / f"{n:08d}.json"
    deadline = time.monotonic() + 300
    while not answer.exists() and time.monotonic() < deadline:
        time.sleep(0.5)
    if not answer.exists():
        print("  probe: no answer", flush=True)
        return
    got = json.loads(answer.read_text())
    sample["probe"] = {k: got.get(k) for k in ("objects", "malloc", "traced_mb", "threads")}
    sample["probe"]["top_types"] = got.get("top_types", [])[:15]
    m = got.get("malloc") or {}
    print(
        f"  probe: {got.get('objects')} objects, malloc in use {m.get('in_use_mb', 0):.0f} MB, "
        f"free kept {m.get('free_kept_mb', 0):.0f} MB, mmap {m.get('mmap_mb', 0):.0f} MB, "
        f"traced {got.get('traced_mb', 0) or 0:.0f} MB, threads {got.get('threads')}; "
        + ", ".join(f"{t} {c}" for t, c in got.get("top_types", [])[:8]),
        flush=True,
    )


def _sample(pid: int, articles: int, started: float) -> dict[str, Any]:
    return {
        "articles": articles,
        "rss_mb": vm(pid, "VmRSS"),
        "hwm_mb": vm(pid, "VmHWM"),
        "elapsed_s": round(time.monotonic() - started, 1),
    }


def _line(s: dict[str, Any]) -> str:
    rate = s["articles"] / max(s["elapsed_s"], 1e-9)
    return (
        f"{s['articles']:>7} articles  RSS {s['rss_mb']:7.0f} MB  peak {s['hwm_mb']:7.0f} MB  "
        f"{s['elapsed_s']:7.1f} s  ({rate:.0f}/s)"
    )


if __name__ == "__main__":
    main()
