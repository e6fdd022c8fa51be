"""`newsflow reindex`: rebuild the article indices under the current template, then swap.

For template changes (new analysers, new fields). Each month's write name
(``<prefix>-YYYY.MM``) gets a new concrete index ``<prefix>_r<stamp>_YYYY.MM`` (outside the
template's pattern, so it is not searchable before it is complete), filled:

1. from the old index: every document's base fields, with the derived fields (per-language
   sub-fields) computed again by today's code (``sinks.elastic.derive``);
2. from the enriched topic, from its start to the end seen now: every article still held is
   rebuilt from the contract record, overwriting step 1's copy;

then one atomic ``_aliases`` call moves the month's write name and the read alias to the new
index (dropping the old concrete index), and a last pass over the topic, from step 2's end to
the new end, replays what the index worker wrote into the old index meanwhile. The index
worker may keep running throughout; writes are idempotent (``_id = article_id``). Every
write goes to the index that already holds the article, feeds merged
(``sinks.placement.write_placed``): the topic's later records of an article first indexed in
an earlier month, and duplicates left by code older than the placement, end as one document.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from elasticsearch import Elasticsearch
from kafka import KafkaConsumer, TopicPartition

from streams import topics
from streams.enrich import linking
from streams.kafka_clients import client_options
from streams.schema import Article, decode
from streams.settings import Settings
from streams.sinks import placement
from streams.sinks.elastic import (
    derive,
    index_for,
    make_client,
    template_for,
    template_name,
    to_document,
)
from streams.topic_range import assign_all, batches_until

Say = Callable[[str], None]


@dataclass
class MonthPlan:
    write_name: str  # <prefix>-YYYY.MM: what index_for() routes to
    old: str  # the concrete index behind it now
    new: str  # the concrete index being built


def _months(es: Elasticsearch, settings: Settings, stamp: str) -> list[MonthPlan]:
    prefix = settings.elastic.index_prefix
    plans: list[MonthPlan] = []
    resolved = es.indices.resolve_index(name=[f"{prefix}-*", f"{prefix}_r*"])
    aliases = {a["name"]: a["indices"] for a in resolved.get("aliases", [])}
    concrete = {i["name"] for i in resolved.get("indices", [])}
    names = {n for n in concrete if n.startswith(f"{prefix}-")} | {
        a for a in aliases if a.startswith(f"{prefix}-")
    }
    for name in sorted(names):
        month = name[len(prefix) + 1 :]
        old = name if name in concrete else aliases[name][0]
        plans.append(MonthPlan(name, old, f"{prefix}_r{stamp}_{month}"))
    return plans


def _create_target(es: Elasticsearch, settings: Settings, name: str) -> None:
    body = template_for(es, settings.elastic)["template"]
    es.indices.create(index=name, settings=body["settings"], mappings=body["mappings"])


def _scan_old(es: Elasticsearch, index: str) -> Iterator[dict[str, Any]]:
    after: list[Any] | None = None
    while True:
        resp = es.search(
            index=index,
            size=1000,
            sort=[{"article_id": "asc"}],
            search_after=after,
            query={"match_all": {}},
        )
        hits = resp["hits"]["hits"]
        if not hits:
            return
        for hit in hits:
            yield hit["_source"]
        after = hits[-1]["sort"]


def _copy_old(es: Elasticsearch, plan: MonthPlan, built: list[str], say: Say) -> int:
    """Copy one month; an article an earlier month's new index already holds (a duplicate
    written before documents were placed across months) is merged into that copy."""
    done, errors = 0, list[dict[str, Any]]()
    chunk: list[tuple[str, str, dict[str, Any]]] = []
    where = ",".join([*built, plan.new])
    for doc in _scan_old(es, plan.old):
        chunk.append((plan.new, doc["article_id"], derive(doc, linking.labels)))
        if len(chunk) == 500:
            ok, failed = placement.write_placed(es, where, chunk)
            done, errors, chunk = done + ok, errors + failed, []
    ok, failed = placement.write_placed(es, where, chunk)
    done, errors = done + ok, errors + failed
    if errors:
        raise RuntimeError(f"{len(errors)} documents of {plan.old} failed to copy: {errors[:3]}")
    say(f"  {plan.old} -> {plan.new}: {done} documents copied")
    return done


def _topic_pass(
    es: Elasticsearch,
    settings: Settings,
    targets: dict[str, str],
    start: dict[TopicPartition, int] | None,
    say: Say,
) -> tuple[int, dict[TopicPartition, int]]:
    """Rebuild from the enriched topic between ``start`` (default: beginning) and now."""
    name = topics.ENRICHED.topic_name(settings.topics)
    consumer = KafkaConsumer(
        **client_options(settings.kafka),
        enable_auto_commit=False,
        group_id=None,
        consumer_timeout_ms=2000,
    )
    written = 0
    try:
        parts, end = assign_all(consumer, name)
        for tp in parts:
            if start is None:
                consumer.seek_to_beginning(tp)
            else:
                consumer.seek(tp, start.get(tp, 0))
        now = datetime.now(UTC)
        # Where an article may already be: the new indices (never the old ones, which go),
        # plus months only the topic has (their write names get created as we go).
        where = list(targets.values()) if targets else [settings.elastic.alias]
        for batch in batches_until(consumer, parts, end, max_records=1000):
            actions: list[tuple[str, str, dict[str, Any]]] = []
            for messages in batch.values():
                for message in messages:
                    try:
                        article = decode(Article, message.value)
                    except ValueError:
                        continue  # not a contract record: the index stage dead-letters those
                    write_name = index_for(settings.elastic, article.source.first_seen_at)
                    target = targets.get(write_name, write_name)
                    if targets and target not in where:
                        where.append(target)
                    actions.append(
                        (target, article.article_id, to_document(article, now, linking.labels))
                    )
            # Each article to the index that holds it, feeds merged (sinks.placement).
            for i in range(0, len(actions), 500):
                ok, failed = placement.write_placed(es, ",".join(where), actions[i : i + 500])
                if failed:
                    raise RuntimeError(f"{len(failed)} articles failed to index: {failed[:3]}")
                written += ok
    finally:
        consumer.close()
    say(f"  {written} article(s) rebuilt from {name}")
    return written, end


def reindex(settings: Settings, say: Say) -> list[MonthPlan]:
    es = make_client(settings.elastic)
    try:
        es.indices.put_index_template(
            name=template_name(settings.elastic), **template_for(es, settings.elastic, say)
        )
        stamp = datetime.now(UTC).strftime("%Y%m%d%H%M%S%f")
        plans = _months(es, settings, stamp)
        if not plans:
            say("nothing to reindex: no article index exists yet")
            return []
        say(f"reindexing {len(plans)} month(s) into new indices ({stamp})")
        built: list[str] = []
        for plan in plans:
            _create_target(es, settings, plan.new)
            _copy_old(es, plan, built, say)
            built.append(plan.new)
        targets = {p.write_name: p.new for p in plans}
        _written, end = _topic_pass(es, settings, targets, None, say)
        es.indices.refresh(index=",".join(p.new for p in plans))
        actions: list[dict[str, Any]] = []
        for p in plans:
            if p.old == p.write_name:  # a concrete index holds the write name: drop it
                actions.append({"remove_index": {"index": p.old}})
            else:
                actions.append({"remove": {"index": p.old, "alias": p.write_name}})
                actions.append({"remove": {"index": p.old, "alias": settings.elastic.alias}})
            actions.append({"add": {"index": p.new, "alias": p.write_name, "is_write_index": True}})
            actions.append({"add": {"index": p.new, "alias": settings.elastic.alias}})
        es.indices.update_aliases(actions=actions)
        say("aliases swapped atomically: " + ", ".join(f"{p.write_name} -> {p.new}" for p in plans))
        # What the index worker wrote into the old indices while we copied is in the topic.
        _topic_pass(es, settings, {}, end, say)
        for p in plans:
            if p.old != p.write_name:
                es.indices.delete(index=p.old)
                say(f"  deleted {p.old}")
        return plans
    finally:
        es.close()
