"""Enrich-stage benchmark: a real `newsflow worker enrich` process on a private topic.

Articles are built from the development corpora in ../shared/data (not shipped; see
streams/enrich/training/data.py) (ar, en, fr, de, tr sentences; title +
~100-word summary, or ~600-word content with --long), produced first, then consumed by one
worker. Alternating rounds (>= 3 of each): *pure*, ``pipeline.enrich_batch`` over the first
500 articles in this process, and *worker*, a fresh worker on a fresh private topic, measured
from the first to the last enriched record. Prints the median and min-max of articles/s of
each side and of worker/pure, the pure path per CPU second, the worker's tokens/s, peak RSS
(VmHWM) and time to first output. Writes bench/results/enrich.json with the machine's load.
    python -m bench.bench_enrich [--n 3000] [--long] [--rounds 3]
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaConsumer, TopicPartition

from bench.common import (
    MIN_ROUNDS,
    alternate,
    fmt_spread,
    machine_load,
    private_env,
    produce_all,
    ratio_report,
    save_result,
    spread,
    start_worker,
    time_drain,
)
from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.enrich import pipeline
from streams.enrich.training.data import read_corpus
from streams.kafka_clients import client_options
from streams.schema import FeedRef, RawArticle, Source, encode
from streams.schema.ids import article_id
from streams.schema.models import ExtractedArticle
from streams.settings import Settings

LANGS = {
    "ar": "ar_anercorp",
    "en": "en_conll03",
    "fr": "fr_wikiann",
    "de": "de_wikiann",
    "tr": "tr_wiki",
}


def sentences(lang: str) -> list[str]:
    return [" ".join(row["tokens"]) for row in read_corpus(f"{LANGS[lang]}.dev")]


def make_raws(n: int, words: int, seed: int = 11) -> list[RawArticle]:
    rnd = random.Random(seed)
    pools = {lang: sentences(lang) for lang in LANGS}
    now = datetime.now(UTC)
    out = []
    for i in range(n):
        lang = rnd.choice(list(LANGS))
        text: list[str] = []
        while len(text) < words:
            text += rnd.choice(pools[lang]).split()
        body = " ".join(text[:words])
        url = f"https://bench.example/{lang}/{i}"
        title = " ".join(rnd.choice(pools[lang]).split()[:12])
        long = words > 200
        out.append(
            RawArticle(
                article_id=article_id(url),
                source=Source(
                    feed=FeedRef(feed_id=f"bench-{lang}", url="https://bench.example/feed"),
                    url=url,
                    title=title,
                    summary="" if long else body,
                    content=body if long else None,
                    language_hint=lang if i % 2 else None,
                    fetched_at=now,
                    first_seen_at=now,
                ),
            )
        )
    return out


def tokens(raw: RawArticle) -> int:
    src = raw.source
    return len(f"{src.title} {src.summary} {src.content or ''}".split())


def vm(pid: int, key: str) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(key):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=3000)
    parser.add_argument("--long", action="store_true", help="~600-word articles")
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    args = parser.parse_args()
    load = machine_load(busy=True)
    print(f"load average {load['loadavg']} on {load['cpu_count']} CPUs", flush=True)
    words = 600 if args.long else 100
    raws = make_raws(args.n, words)
    n_tokens = sum(tokens(r) for r in raws)
    tokens_per_article = n_tokens / len(raws)

    stamp = pipeline.stamp(datetime.now(UTC), "bench")
    sample = raws[: min(len(raws), 500)]
    pipeline.enrich_batch(sample[:10], stamp, 20000)  # load models first, untimed
    run_id = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))

    def pure(_rnd: int) -> dict[str, Any]:
        cpu0, t0 = time.process_time(), time.perf_counter()
        for i in range(0, len(sample), 64):
            pipeline.enrich_batch(sample[i : i + 64], stamp, 20000)
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        return {
            "articles": len(sample),
            "s": wall,
            "per_s": len(sample) / wall,
            "per_cpu_s": len(sample) / cpu,
        }

    def worker(rnd: int) -> dict[str, Any]:
        unique = f"{run_id}r{rnd}"
        (tmp / unique).mkdir()
        env = private_env(unique, tmp / unique, web_port=16067)
        settings = Settings()
        ensure_topics(settings, lambda _m: None)
        # The enrich stage's input as wired now (the extract stage's output since it exists):
        # the raw records as the extract stage forwards them when no page body was found.
        spec = topics.STAGES["enrich"]["input"]
        records = [ExtractedArticle(article_id=raw.article_id, source=raw.source) for raw in raws]
        produce_all(
            settings,
            spec.topic_name(settings.topics),
            [(rec.article_id.encode(), encode(rec)) for rec in records],
        )
        out_topic = topics.ENRICHED.topic_name(settings.topics)
        consumer = KafkaConsumer(**client_options(settings.kafka), group_id=None)
        parts = [TopicPartition(out_topic, p) for p in consumer.partitions_for_topic(out_topic)]
        consumer.assign(parts)
        log = tmp / unique / "enrich-worker.log"
        proc = start_worker("enrich", env, log)
        peak = {"rss": 0.0, "cpu": 0.0}

        def tick() -> None:  # sampled while the worker is alive
            peak["rss"] = max(peak["rss"], vm(proc.pid, "VmHWM"))
            peak["cpu"] = cpu_seconds(proc.pid)

        try:
            drain = time_drain(
                proc, lambda: sum(consumer.end_offsets(parts).values()), len(raws), 900, log, tick
            )
        finally:
            consumer.close()
        rate = drain.rate(len(raws))
        return {
            "articles": len(raws),
            "per_s": rate,
            "startup_to_first_s": drain.first - drain.started,
            "peak_rss_mb": peak["rss"],
            "cpu_s": peak["cpu"],
        }

    rounds = alternate({"pure": pure, "worker": worker}, args.rounds)
    print(f"{args.n} articles of ~{words} words ({n_tokens} tokens)")
    report = ratio_report(rounds, "per_s", [("worker", "pure", None)], unit="articles/s")
    pure_cpu = spread([r["per_cpu_s"] for r in rounds["pure"]])
    rss = spread([r["peak_rss_mb"] for r in rounds["worker"]])
    first = spread([r["startup_to_first_s"] for r in rounds["worker"]])
    print(f"pure enrich_batch per CPU second: {fmt_spread(pure_cpu)} articles")
    print(
        f"worker tokens/s median {report['sides']['worker']['median'] * tokens_per_article:.0f}; "
        f"peak RSS {fmt_spread(rss)} MB; first output after {fmt_spread(first, 1)} s "
        "(startup + model load)"
    )
    result = {
        "n": args.n,
        "words_per_article": words,
        "tokens": n_tokens,
        "rounds": rounds,
        "throughput": report,
        "pure_articles_per_cpu_s": pure_cpu,
        "worker_peak_rss_mb": rss,
        "at": datetime.now(UTC).isoformat(),
    }
    save_result("enrich-long.json" if args.long else "enrich.json", result, load)


if __name__ == "__main__":
    main()
