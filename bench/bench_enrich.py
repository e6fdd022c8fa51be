"""Enrich-stage benchmark: a real `newsflow worker enrich` process on a private topic.

Articles are built from the development corpora in ../shared/data (not shipped; see
streams/enrich/training/data.py) (ar, en, fr, de, tr sentences; title +
~100-word summary, or ~600-word content with --long), produced first, then consumed by one
worker. Reports articles/s and tokens/s from the first to the last enriched record, the
worker's peak RSS (VmHWM) and its CPU seconds, next to the pure path (pipeline.enrich_batch)
measured in this process on the same articles. Writes bench/results/enrich.json.
    python -m bench.bench_enrich [--n 3000] [--long]
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

from kafka import KafkaConsumer, TopicPartition

from bench.common import private_env, produce_all, save_result, start_worker, time_drain
from streams import topics
from streams.commands.bootstrap import ensure_topics
from streams.enrich import pipeline
from streams.enrich.training.data import read_corpus
from streams.schema import FeedRef, RawArticle, Source, encode
from streams.schema.ids import article_id
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
    args = parser.parse_args()
    words = 600 if args.long else 100
    raws = make_raws(args.n, words)
    n_tokens = sum(tokens(r) for r in raws)

    stamp = pipeline.stamp(datetime.now(UTC), "bench")
    sample = raws[: min(len(raws), 500)]
    pipeline.enrich_batch(sample[:10], stamp, 20000)  # load models first
    started = time.process_time()
    for i in range(0, len(sample), 64):
        pipeline.enrich_batch(sample[i : i + 64], stamp, 20000)
    pure_cpu = time.process_time() - started
    pure_rate = len(sample) / pure_cpu

    unique = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
    env = private_env(unique, tmp, web_port=16067)
    settings = Settings()
    ensure_topics(settings, lambda _m: None)
    produce_all(
        settings,
        topics.RAW.topic_name(settings.topics),
        [(raw.article_id.encode(), encode(raw)) for raw in raws],
    )
    out_topic = topics.ENRICHED.topic_name(settings.topics)
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    parts = [TopicPartition(out_topic, p) for p in consumer.partitions_for_topic(out_topic)]
    consumer.assign(parts)
    log = tmp / "enrich-worker.log"
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
    peak_rss, worker_cpu = peak["rss"], peak["cpu"]
    first, t0 = drain.first, drain.started
    result = {
        "n": args.n,
        "words_per_article": words,
        "tokens": n_tokens,
        "worker_articles_per_s": round(rate, 1),
        "worker_tokens_per_s": round(rate * n_tokens / len(raws)),
        "worker_startup_to_first_s": round(first - t0, 1),
        "worker_peak_rss_mb": round(peak_rss),
        "worker_cpu_s": round(worker_cpu, 1),
        "pure_articles_per_cpu_s": round(pure_rate, 1),
        "pure_tokens_per_cpu_s": round(pure_rate * n_tokens / len(raws)),
        "at": datetime.now(UTC).isoformat(),
    }
    print(f"{args.n} articles of ~{words} words ({n_tokens} tokens)")
    print(f"{'path':<34}{'articles/s':>12}{'tokens/s':>12}")
    print(
        f"{'pure enrich_batch (per CPU s)':<34}{pure_rate:>12.1f}"
        f"{result['pure_tokens_per_cpu_s']:>12}"
    )
    print(f"{'worker (wall, 1 process)':<34}{rate:>12.1f}{result['worker_tokens_per_s']:>12}")
    print(
        f"worker peak RSS {result['worker_peak_rss_mb']} MB; first output after "
        f"{result['worker_startup_to_first_s']} s (startup + model load)"
    )
    save_result("enrich-long.json" if args.long else "enrich.json", result)


if __name__ == "__main__":
    main()
