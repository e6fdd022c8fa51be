"""Index-stage benchmark: the real `newsflow worker index` next to a bare `helpers.bulk` loop.

Same documents (~3 KB enriched articles, multilingual), same local Elasticsearch, same run:
1. bare: elasticsearch.helpers.bulk over the documents (chunks of the stage's batch size);
2. stage: the articles are produced to a private enriched topic first, then a real index
   worker consumes them; throughput is measured from the first to the last document visible.
Prints a table and writes bench/results/index.json. Usage:
    python -m bench.bench_index [--n 20000]
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

from bench.common import private_env, produce_all, save_result, start_worker, time_drain
from streams import topics
from streams.bootstrap import ensure_elastic, ensure_topics
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
                count=1,  # type: ignore[arg-type]
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
        # No forced refresh (it would slow indexing down); the 1 s refresh interval delays
        # the first and the last visible document alike.
        return int(client.count(index=settings.elastic.alias)["count"])

    try:
        drain = time_drain(proc, count, len(articles), 600, log)
    finally:
        client.close()
    return {"seconds": drain.last - drain.first, "docs": len(articles) - drain.first_count}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=20000)
    args = parser.parse_args()
    base = Settings()
    unique = uuid.uuid4().hex[:8]
    tmp = Path(tempfile.mkdtemp(prefix="newsflow-bench-"))
    env = private_env(unique, tmp, web_port=16066)
    settings = Settings()
    ensure_topics(settings, lambda _m: None)
    ensure_elastic(settings, lambda _m: None)
    bare_prefix = f"bench-bare-v1-{unique}"
    client = make_client(base.elastic)
    client.indices.put_index_template(
        name=bare_prefix,
        **index_template(
            settings.elastic.model_copy(
                update={"index_prefix": bare_prefix, "alias": f"bench-bare-{unique}"}
            )
        ),
    )
    articles = make_articles(args.n)
    size_kb = sum(len(encode(a)) for a in articles) / len(articles) / 1024
    print(f"{args.n} articles, {size_kb:.1f} KB each on the wire", flush=True)
    try:
        # bare, stage, bare again into a fresh index: the stage is compared with the mean of
        # the two bare runs, so warm-up and drift on a shared machine do not favour either.
        bare_1 = bare_bulk(settings, articles, bare_prefix, settings.index.batch_size)
        stage = stage_run(settings, env, articles)
        client.indices.delete(index=f"{bare_prefix}-*")
        bare_2 = bare_bulk(settings, articles, bare_prefix, settings.index.batch_size)
        stats = client.indices.stats(index=f"{settings.elastic.index_prefix}-*", metric="store")
        store = stats["_all"]["primaries"]["store"]["size_in_bytes"]
    finally:
        for pattern in (f"{bare_prefix}-*", f"{settings.elastic.index_prefix}-*"):
            client.indices.delete(index=pattern, ignore_unavailable=True)
        for name in (bare_prefix, settings.elastic.index_prefix):
            client.options(ignore_status=404).indices.delete_index_template(name=name)
        client.close()
    bare_rates = (args.n / bare_1, args.n / bare_2)
    bare_rate = sum(bare_rates) / 2
    stage_rate = stage["docs"] / stage["seconds"]
    result = {
        "n": args.n,
        "doc_kb": round(size_kb, 2),
        "bare_bulk_docs_per_s": round(bare_rate),
        "bare_runs_docs_per_s": [round(r) for r in bare_rates],
        "stage_docs_per_s": round(stage_rate),
        "stage_vs_bare": round(stage_rate / bare_rate, 3),
        "index_mb_per_100k": round(store / 1e6 * 100000 / args.n, 1),
        "at": datetime.now(UTC).isoformat(),
    }
    print(f"{'path':<28}{'docs/s':>10}")
    print(
        f"{'bare helpers.bulk (mean)':<28}{bare_rate:>10.0f}"
        f"   (runs: {bare_rates[0]:.0f} before, {bare_rates[1]:.0f} after the stage)"
    )
    print(f"{'index stage (worker)':<28}{stage_rate:>10.0f}")
    print(
        f"stage / bare = {result['stage_vs_bare']:.2f} (target >= 0.85); "
        f"stage >= 2000 docs/s: {'met' if stage_rate >= 2000 else 'MISSED'}"
    )
    print(f"index size: {result['index_mb_per_100k']} MB per 100k articles")
    save_result("index.json", result)


if __name__ == "__main__":
    main()
