"""`newsflow status`: one screen for operators — services, topics and lag, stages, full text,
DLQ, feeds.

Everything is read from the sources of truth: Kafka (end offsets, consumer-group offsets),
the processes' own ``/health/ready`` and ``/metrics`` (two scrapes a moment apart give the
current throughput), Elasticsearch (reachable, document count behind the alias) and the
connector's feed state (health per feed, worst first). The FULL TEXT part is the extract
worker's own ``/metrics`` (port web + 2, figures since it started): articles by
``extraction.status`` and host class, fetch and extraction latency (count, mean, p50/p95
estimated from the histogram buckets as Prometheus' ``histogram_quantile`` does), hosts in
backoff and the feeds whose pages fail most. Nothing here changes anything.
"""

from __future__ import annotations

import json
import math
import time
import urllib.error
import urllib.request
from typing import Any

from connectors.rss.schedule import HEALTH_ORDER
from streams import topics
from streams.commands.liveview import printable
from streams.kafka_clients import client_options
from streams.settings import Settings

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def _probe(port: int, host: str = "127.0.0.1") -> dict[str, Any] | None:
    from streams.commands.run import reach

    try:
        url = f"http://{reach(host)}:{port}/health/ready"
        with urllib.request.urlopen(url, timeout=2) as r:
            return dict(json.loads(r.read()))
    except urllib.error.HTTPError as exc:  # 503: answers, but not ready
        return dict(json.loads(exc.read() or b"{}"))
    except (OSError, ValueError):
        return None


def _ports(settings: Settings) -> list[tuple[str, int, str]]:
    """(process, port, bind address) of the connector and the first worker of each stage."""
    web, host = settings.faust.web_port, settings.faust.web_host
    return [
        ("connector", settings.connector.metrics_port, settings.connector.metrics_host),
        ("enrich", web, host),
        ("index", web + 1, host),
        ("extract", web + 2, host),
    ]


def processes(settings: Settings) -> list[dict[str, Any]]:
    out = []
    for name, port, host in _ports(settings):
        report = _probe(port, host) if port else None
        out.append({"process": name, "port": port, "up": report is not None, "health": report})
    return out


def kafka_view(settings: Settings) -> dict[str, Any]:
    from kafka import KafkaConsumer

    from streams.ops import LagReader
    from streams.topic_range import assign_all
    from streams.worker import group_id

    consumer = KafkaConsumer(**client_options(settings.kafka), group_id=None)
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
    """Articles per second by stage, from two scrapes of the running processes."""
    from streams.commands.run import scrape, total

    def counts() -> dict[str, float]:
        merged: Samples = {}
        for _name, port, host in _ports(settings):
            merged.update(scrape(port, host))
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
    return {k: round((second[k] - first[k]) / seconds, 1) for k in first}


def quantile(q: float, buckets: list[tuple[float, float]]) -> float | None:
    """``histogram_quantile`` over cumulative ``(upper bound, count)`` buckets: linear
    interpolation inside the bucket; in the +Inf bucket, the highest finite bound."""
    buckets = sorted(buckets)
    if not buckets or buckets[-1][1] <= 0:
        return None
    rank = q * buckets[-1][1]
    lower, below = 0.0, 0.0
    for bound, count in buckets:
        if count >= rank:
            if math.isinf(bound):
                return lower
            if count == below:
                return bound
            return lower + (bound - lower) * (rank - below) / (count - below)
        lower, below = bound, count
    return lower


def latency(samples: Samples, name: str) -> dict[str, Any]:
    """Count, mean and p50/p95 (seconds) of histogram ``name``, all its label sets merged."""
    by_bound: dict[float, float] = {}
    count = total_s = 0.0
    for (n, labels), value in samples.items():
        if n == f"{name}_bucket":
            bound = float(dict(labels)["le"])
            by_bound[bound] = by_bound.get(bound, 0.0) + value
        elif n == f"{name}_count":
            count += value
        elif n == f"{name}_sum":
            total_s += value
    buckets = list(by_bound.items())
    p50, p95 = quantile(0.5, buckets), quantile(0.95, buckets)
    return {
        "count": int(count),
        "mean_s": round(total_s / count, 4) if count else None,
        "p50_s": None if p50 is None else round(p50, 4),
        "p95_s": None if p95 is None else round(p95, 4),
    }


def extract_view(samples: Samples, worst_feeds: int = 10) -> dict[str, Any]:
    """The extract worker's full-text figures from one scrape of its /metrics (see above)."""
    from streams.commands.run import by_label

    pages = "newsflow_extract_pages_total"
    per_feed: dict[str, dict[str, float]] = {}
    for (n, labels), value in samples.items():
        if n == "newsflow_extract_feed_pages_total" and value:
            lbl = dict(labels)
            per_feed.setdefault(lbl["feed"], {})[lbl["result"]] = value
    feeds: list[dict[str, Any]] = []
    for feed, results in per_feed.items():
        ok, failed = results.get("ok", 0.0), results.get("failed", 0.0)
        if failed:
            wanted = ok + failed
            feeds.append(
                {
                    "feed": feed,
                    "ok": int(ok),
                    "failed": int(failed),
                    "failure_ratio": round(failed / wanted, 3),
                }
            )
    feeds.sort(key=lambda f: (-f["failure_ratio"], -f["failed"], f["feed"]))
    return {
        "outcomes": {k: int(v) for k, v in by_label(samples, pages, "outcome").items()},
        "host_classes": {k: int(v) for k, v in by_label(samples, pages, "host_class").items()},
        "fetch": latency(samples, "newsflow_extract_fetch_seconds"),
        "extract": latency(samples, "newsflow_extract_text_seconds"),
        "hosts_in_backoff": int(samples.get(("newsflow_extract_hosts_in_backoff", ()), 0)),
        "failing_feeds": feeds[:worst_feeds],
    }


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
    extract_up = any(p["up"] for p in out["processes"] if p["process"] == "extract")
    if extract_up:
        from streams.commands.run import scrape

        out["extract"] = extract_view(scrape(settings.faust.web_port + 2, settings.faust.web_host))
    else:
        out["extract"] = {}
    out["feeds"] = feeds_view(settings)
    return out


def _seconds(value: float | None) -> str:
    return "-" if value is None else (f"{value * 1000:.0f}ms" if value < 1 else f"{value:.1f}s")


def render_extract(x: dict[str, Any]) -> list[str]:
    """The FULL TEXT lines (nothing when the extract worker is down)."""
    if not x:
        return []
    lines = ["FULL TEXT  (extract worker, since it started)"]
    outcomes = x["outcomes"]
    lines.append(
        "  outcomes    " + ("  ".join(f"{o} {n}" for o, n in outcomes.items()) or "none yet")
    )
    if x["host_classes"]:
        lines.append("  host class  " + "  ".join(f"{c} {n}" for c, n in x["host_classes"].items()))
    for label, key in (("fetch", "fetch"), ("extract", "extract")):
        lat = x[key]
        lines.append(
            f"  {label:<10}  {lat['count']} pages  mean {_seconds(lat['mean_s'])}  "
            f"p50 {_seconds(lat['p50_s'])}  p95 {_seconds(lat['p95_s'])}"
        )
    lines.append(f"  hosts in backoff  {x['hosts_in_backoff']}")
    for f in x["failing_feeds"][:5]:
        lines.append(
            f"  failing   {printable(f['feed'], 60):<30} {f['failed']}/{f['ok'] + f['failed']} "
            "pages failed "
            f"({f['failure_ratio']:.0%})"
        )
    return lines


def render(status: dict[str, Any], worst_feeds: int = 15) -> list[str]:
    lines = ["PROCESSES"]
    for p in status["processes"]:
        h = p["health"] or {}
        state = "down" if not p["up"] else ("ready" if h.get("ready") else "NOT READY")
        extra = printable(", ".join(f"{k}: {v}" for k, v in (h.get("problems") or {}).items()))
        if h.get("stalled"):
            extra = "stalled " + extra
        lines.append(f"  {p['process']:<10} :{p['port']:<6} {state:<10} {extra}")
    k = status["kafka"]
    lines.append("TOPICS")
    if "error" in k:
        lines.append(f"  Kafka unreachable: {printable(k['error'], 300)}")
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
        dlq = [t for t in k["topics"] if t["dead_letter"]]
        lines.append("DEAD LETTERS  " + "  ".join(f"{t['topic']}: {t['records']}" for t in dlq))
    lines.extend(render_extract(status.get("extract") or {}))
    e = status["elasticsearch"]
    lines.append(
        f"ELASTICSEARCH  {e['alias']}: {e['documents']} documents"
        if e["reachable"]
        else f"ELASTICSEARCH  unreachable: {printable(e['error'], 300)}"
    )
    feeds = status["feeds"]
    counts = {h: sum(1 for f in feeds if f["health"] == h) for h in HEALTH_ORDER}
    lines.append("FEEDS  " + "  ".join(f"{h} {n}" for h, n in counts.items() if n))
    for f in feeds[:worst_feeds]:
        if f["health"] in ("ok", "not-modified", "pending"):
            break
        age = f["last_new_item_age_s"]
        lines.append(
            f"  {f['health']:<8} {printable(f['id'], 60):<30} last new "
            f"{'-' if age is None else f'{age / 3600:.1f}h'} ago  "
            f"{printable(f['last_error'] or '')}"[:150]
        )
    return lines
