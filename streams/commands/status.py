"""`newsflow status`: one screen for operators — services, topics and lag, stages, DLQ, feeds.

Everything is read from the sources of truth: Kafka (end offsets, consumer-group offsets),
the processes' own ``/health/ready`` and ``/metrics`` (two scrapes a moment apart give the
current throughput), Elasticsearch (reachable, document count behind the alias) and the
connector's feed state (health per feed, worst first). Nothing here changes anything.
"""

from __future__ import annotations

import json
import time
import urllib.error
import urllib.request
from typing import Any

from connectors.rss.schedule import HEALTH_ORDER
from streams import topics
from streams.settings import Settings


def _probe(port: int) -> dict[str, Any] | None:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/health/ready", timeout=2) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as exc:  # 503: answers, but not ready
        return dict(json.loads(exc.read() or b"{}"))
    except (OSError, ValueError):
        return None


def processes(settings: Settings) -> list[dict[str, Any]]:
    web = settings.faust.web_port
    out = []
    for name, port in (
        ("connector", settings.connector.metrics_port),
        ("enrich", web),
        ("index", web + 1),
        ("extract", web + 2),
    ):
        report = _probe(port) if port else None
        out.append({"process": name, "port": port, "up": report is not None, "health": report})
    return out


def kafka_view(settings: Settings) -> dict[str, Any]:
    from kafka import KafkaConsumer

    from streams.ops import LagReader
    from streams.topic_range import assign_all
    from streams.worker import group_id

    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers, group_id=None)
    reader = LagReader(settings)
    try:
        out: dict[str, Any] = {"topics": [], "stages": []}
        for spec in topics.ALL:
            name = spec.topic_name(settings.topics)
            _, end = assign_all(consumer, name)
            out["topics"].append(
                {
                    "topic": name,
                    "partitions": len(end),
                    "records": sum(end.values()),
                    "dead_letter": spec.dead_letter,
                }
            )
        for stage, wiring in topics.STAGES.items():
            source = wiring["input"].topic_name(settings.topics)
            lag = reader.lag(group_id(settings, stage), source)
            out["stages"].append(
                {"stage": stage, "input": source, "lag": sum(lag.values()), "lag_by_partition": lag}
            )
        return out
    finally:
        reader.close()
        consumer.close()


def throughput(settings: Settings, seconds: float = 2.0) -> dict[str, Any]:
    """Articles per second by stage, from two scrapes of the running processes; plus
    ``extract_outcomes``: the extract worker's articles by extraction status so far."""
    from streams.commands.run import scrape, total

    full_text: dict[str, float] = {}

    web = settings.faust.web_port
    ports = [settings.connector.metrics_port, web, web + 1, web + 2]

    def counts() -> dict[str, float]:
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for port in ports:
            merged.update(scrape(port))
        full_text.clear()
        full_text.update(
            {
                dict(labels)["outcome"]: value
                for (name, labels), value in merged.items()
                if name == "newsflow_extract_pages_total" and value
            }
        )
        return {
            "connector": total(merged, "newsflow_articles_total", stage="connector"),
            "extract": total(
                merged, "newsflow_articles_total", stage="extract", outcome="extracted"
            ),
            "enrich": total(merged, "newsflow_articles_total", stage="enrich", outcome="enriched"),
            "index": total(merged, "newsflow_articles_total", stage="index", outcome="indexed"),
        }

    first = counts()
    time.sleep(seconds)
    second = counts()
    rates: dict[str, Any] = {k: round((second[k] - first[k]) / seconds, 1) for k in first}
    rates["extract_outcomes"] = dict(sorted(full_text.items()))
    return rates


def feeds_view(settings: Settings) -> list[dict[str, Any]]:
    from connectors.feeds import FeedListError, load_feed_list
    from streams.commands.feed_report import feed_rows, worst_first

    try:
        flist = load_feed_list(settings.connector.feeds_file)
    except FeedListError:
        return []
    return worst_first(feed_rows(settings.connector, flist))


def elastic_view(settings: Settings) -> dict[str, Any]:
    from elasticsearch import NotFoundError

    from streams.sinks.elastic import make_client

    es = make_client(settings.elastic)
    try:
        count = es.count(index=settings.elastic.alias)["count"]
        return {"reachable": True, "alias": settings.elastic.alias, "documents": count}
    except NotFoundError:
        return {
            "reachable": False,
            "alias": settings.elastic.alias,
            "error": "alias not found: run `newsflow bootstrap`",
        }
    except Exception as exc:  # noqa: BLE001 - shown, not raised
        return {
            "reachable": False,
            "alias": settings.elastic.alias,
            "error": f"{type(exc).__name__}: {exc}"[:200],
        }
    finally:
        es.close()


def collect(settings: Settings, sample_s: float = 2.0) -> dict[str, Any]:
    out: dict[str, Any] = {"processes": processes(settings)}
    try:
        out["kafka"] = kafka_view(settings)
    except Exception as exc:  # noqa: BLE001 - an operator still wants the rest of the screen
        out["kafka"] = {"error": f"{type(exc).__name__}: {exc}"[:200]}
    out["elasticsearch"] = elastic_view(settings)
    running = any(p["up"] for p in out["processes"])
    out["throughput_per_s"] = throughput(settings, sample_s) if running else {}
    out["feeds"] = feeds_view(settings)
    return out


def render(status: dict[str, Any], worst_feeds: int = 15) -> list[str]:
    lines = ["PROCESSES"]
    for p in status["processes"]:
        h = p["health"] or {}
        state = "down" if not p["up"] else ("ready" if h.get("ready") else "NOT READY")
        extra = ", ".join(f"{k}: {v}" for k, v in (h.get("problems") or {}).items())
        if h.get("stalled"):
            extra = "stalled " + extra
        lines.append(f"  {p['process']:<10} :{p['port']:<6} {state:<10} {extra}")
    k = status["kafka"]
    lines.append("TOPICS")
    if "error" in k:
        lines.append(f"  Kafka unreachable: {k['error']}")
    else:
        for t in k["topics"]:
            lines.append(
                f"  {t['topic']:<40} {t['partitions']:>2} partitions {t['records']:>9} records"
            )
        lines.append("STAGES")
        rate = status.get("throughput_per_s", {})
        lines.append(f"  connector  {rate.get('connector', '-'):>8} articles/s")
        for s in k["stages"]:
            lines.append(
                f"  {s['stage']:<10} {rate.get(s['stage'], '-'):>8} articles/s   lag {s['lag']}"
            )
        outcomes = rate.get("extract_outcomes") or {}
        if outcomes:
            lines.append("  full text  " + "  ".join(f"{o} {n:.0f}" for o, n in outcomes.items()))
        dlq = [t for t in k["topics"] if t["dead_letter"]]
        lines.append("DEAD LETTERS  " + "  ".join(f"{t['topic']}: {t['records']}" for t in dlq))
    e = status["elasticsearch"]
    lines.append(
        f"ELASTICSEARCH  {e['alias']}: {e['documents']} documents"
        if e["reachable"]
        else f"ELASTICSEARCH  unreachable: {e['error']}"
    )
    feeds = status["feeds"]
    counts = {h: sum(1 for f in feeds if f["health"] == h) for h in HEALTH_ORDER}
    lines.append("FEEDS  " + "  ".join(f"{h} {n}" for h, n in counts.items() if n))
    for f in feeds[:worst_feeds]:
        if f["health"] in ("ok", "not-modified", "pending"):
            break
        age = f["last_new_item_age_s"]
        lines.append(
            f"  {f['health']:<8} {f['id']:<30} last new "
            f"{'-' if age is None else f'{age / 3600:.1f}h'} ago  "
            f"{f['last_error'] or ''}"[:150]
        )
    return lines
