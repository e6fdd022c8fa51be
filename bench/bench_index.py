"""Index-stage benchmark: the real `newsflow worker index` next to a bare `helpers.bulk` loop.

Same documents (~3 KB enriched articles, multilingual), same local Elasticsearch, alternating
rounds (bare, stage, bare, stage, ...; >= 3 of each) in one run:
1. bare: elasticsearch.helpers.bulk over the documents (chunks of the stage's batch size) into
   a fresh index, documents built by the sink's own ``to_document``/``index_for``;
2. stage: the articles are produced to a fresh private enriched topic first, then a real index
   worker consumes them; throughput is measured from the first to the last document visible.
Each round's indices are deleted after it. Prints the median and min-max of each side and of
the per-round ratio, and writes bench/results/index.json with the machine's load. Usage:
    python -m bench.bench_index [--n 20000] [--rounds 3]
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from elasticsearch import helpers

from bench.common import (
    MIN_ROUNDS,
    alternate,
    machine_load,
    private_env,
    produce_all,
    ratio_report,
    save_result,
    start_worker,
    time_drain,
)
from streams import topics
from streams.commands.bootstrap import ensure_elastic, ensure_topics
from streams.schema import Article, Entity, EntityMention, FeedRef, LanguageInfo, Source, encode
from streams.schema.ids import article_id
from streams.settings import Settings
from streams.sinks.elastic import index_for, index_template, make_client, to_document

WORDS = {
    "en": [
        "government",
        "minister",
        "election",
        "parliament",
        "economy",
        "market",
        "talks",
        "border",
        "security",
        "agreement",
        "president",
        "capital",
        "report",
        "officials",
        "week",
        "city",
    ],
    "ar": [
        "الحكومة",
        "وزير",
        "الانتخابات",
        "البرلمان",
        "الاقتصاد",
        "السوق",
        "محادثات",
        "الحدود",
        "الأمن",
        "اتفاق",
        "الرئيس",
        "العاصمة",
        "تقرير",
        "المسؤولين",
        "الأسبوع",
        "المدينة",
    ],
    "fr": [
        "gouvernement",
        "ministre",
        "élection",
        "parlement",
        "économie",
        "marché",
        "accord",
        "frontière",
        "sécurité",
        "président",
        "capitale",
        "rapport",
        "responsables",
        "semaine",
        "ville",
    ],
}
ENTS = [("PER", "Zeki Akturk"), ("LOC", "Ankara"), ("LOC", "دمشق"), ("ORG", "البرلمان التركي")]


def make_articles(n: int, seed: int = 7) -> list[Article]:
    rnd = random.Random(seed)
    base = datetime(2026, 11, 1, tzinfo=UTC)
    out = []
    for i in range(n):
        lang = rnd.choice(list(WORDS))
        body = " ".join(rnd.choice(WORDS[lang]) for _ in range(180))  # ~3 KB documents
        url = f"https://bench.example/{lang}/{i}"
        when = base + timedelta(seconds=i)
        ents = tuple(
            Entity(
                text=t,
                type=ty,
                normalized=t.lower(),
                confidence=0.9,
                count=1,
                mentions=(EntityMention(field="content", start=0, end=len(t)),),
            )
            for ty, t in rnd.sample(ENTS, 2)
        )
        out.append(
            Article(
                article_id=article_id(url),
                source=Source(
                    feed=FeedRef(feed_id=f"bench-{lang}", url="https://bench.example/f"),
                    url=url,
                    title=" ".join(body.split()[:9]),
                    summary=body[:300],
                    content=body,
                    fetched_at=when,
                    first_seen_at=when,
                ),
                language=LanguageInfo(code=lang, confidence=0.99, method="text"),
                entities=ents,
            )
        )
    return out


def bare_bulk(settings: Settings, articles: list[Article], prefix: str, chunk: int) -> float:
    client = make_client(settings.elastic)
    now = datetime.now(UTC)
    actions = (
        {
            "_index": index_for(
                settings.elastic.model_copy(update={"index_prefix": prefix}), a.source.first_seen_at
            ),
            "_id": a.article_id,
            "_source": to_document(a, now),
        }
        for a in articles
    )
    started = time.perf_counter()
    helpers.bulk(client, actions, chunk_size=chunk, refresh=False)
    client.indices.refresh(index=f"{prefix}-*")
    elapsed = time.perf_counter() - started
    client.close()
    return elapsed


def stage_run(settings: Settings, env: dict[str, str], articles: list[Article]) -> dict[str, float]:
    topic = topics.ENRICHED.topic_name(settings.topics)
    produce_all(settings, topic, [(a.article_id.encode(), encode(a)) for a in articles])
    client = make_client(settings.elastic)
    log = Path(env["NEWSFLOW_FAUST__DATADIR"]).parent / "index-worker.log"
    proc = start_worker("index", env, log)

    def count() -> int:
        # Documents indexed on the primaries, from the indexing stats: no forced refresh (it
        # would slow indexing down) and no wait for the 1 s refresh either. Counting visible
        # documents put a random 0-1 s on the first and on the last figure of every round:
        # +-10 % on a 10 s round, and the bare side (refreshed explicitly) had none.
        stats = client.indices.stats(index=f"{settings.elastic.index_prefix}-*", metric="indexing")
        return int(stats["_all"]["primaries"].get("indexing", {}).get("index_total", 0))

    try:
        drain = time_drain(proc, count, len(articles), 600, log)
    finally:
        client.close()
    return {"seconds": drain.last - drain.first, "docs": len(articles) - drain.first_count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS)
    args = parser.parse_args()
    load = machine_load(busy=True)
    print(f"load average {load['loadavg']} on {load['cpu_count']} CPUs", flush=True)
    base = Settings()
    run_id = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
    bare_prefix = f"bench-bare-v1-{run_id}"
    client = make_client(base.elastic)
    client.indices.put_index_template(
        name=bare_prefix,
        **index_template(
            base.elastic.model_copy(
                update={"index_prefix": bare_prefix, "alias": f"bench-bare-{run_id}"}
            )
        ),
    )
    articles = make_articles(args.n)
    size_kb = sum(len(encode(a)) for a in articles) / len(articles) / 1024
    print(f"{args.n} articles, {size_kb:.1f} KB each on the wire", flush=True)
    store_bytes: list[int] = []

    def bare(_rnd: int) -> dict[str, float]:
        try:
            seconds = bare_bulk(base, articles, bare_prefix, base.index.batch_size)
        finally:
            client.indices.delete(index=f"{bare_prefix}-*", ignore_unavailable=True)
        return {"docs": args.n, "s": seconds, "per_s": args.n / seconds}

    def stage(rnd: int) -> dict[str, float]:
        unique = f"{run_id}r{rnd}"
        (tmp / unique).mkdir()
        env = private_env(unique, tmp / unique, web_port=16066)
        settings = Settings()
        ensure_topics(settings, lambda _m: None)
        ensure_elastic(settings, lambda _m: None)
        try:
            run = stage_run(settings, env, articles)
            stats = client.indices.stats(index=f"{settings.elastic.index_prefix}-*", metric="store")
            store_bytes.append(stats["_all"]["primaries"]["store"]["size_in_bytes"])
        finally:
            client.indices.delete(
                index=f"{settings.elastic.index_prefix}-*", ignore_unavailable=True
            )
            client.options(ignore_status=404).indices.delete_index_template(
                name=settings.elastic.index_prefix
            )
        return {"docs": run["docs"], "s": run["seconds"], "per_s": run["docs"] / run["seconds"]}

    try:
        rounds = alternate({"bare": bare, "stage": stage}, args.rounds)
    finally:
        client.options(ignore_status=404).indices.delete_index_template(name=bare_prefix)
        client.close()
    report = ratio_report(rounds, "per_s", [("stage", "bare", 0.85)], unit="docs/s")
    stage_median = report["sides"]["stage"]["median"]
    print(f"stage >= 2000 docs/s: {'met' if stage_median >= 2000 else 'MISSED'} (median)")
    index_mb = store_bytes[-1] / 1e6 * 100000 / args.n if store_bytes else None
    if index_mb is not None:
        print(f"index size: {index_mb:.1f} MB per 100k articles")
    result = {
        "n": args.n,
        "doc_kb": round(size_kb, 2),
        "rounds": rounds,
        "throughput": report,
        "index_mb_per_100k": index_mb,
        "at": datetime.now(UTC).isoformat(),
    }
    save_result("index.json", result, load)


if __name__ == "__main__":
    main()
