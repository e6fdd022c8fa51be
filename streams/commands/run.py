"""`newsflow run`: the whole pipeline under one supervisor, with a live view.

Starts (or reuses) the local stack when the settings point at it, bootstraps, then runs the
connector, the extract worker(s) (``NEWSFLOW_EXTRACT__WORKERS``, default 1: page fetching is
I/O, one process keeps many pages in flight), the enrich workers (one per CPU core unless
``NEWSFLOW_ENRICH__WORKERS`` says otherwise) and one index worker as child processes (each its
own process group, logs under ``<state dir>/logs``). Long-running mode restarts a child that
dies and stops everything on Ctrl-C/SIGTERM. ``--once`` polls every feed once, waits until the
index has caught up with everything produced, checks that every produced article is in the index
or in a dead-letter topic, prints a summary and exits non-zero if anything was lost or stuck.
The summary reads the children's own ``/metrics``; the live view (``liveview``: drawn in place
on a terminal, one line per change otherwise) adds run totals that survive a child's restart,
the current lag read from Kafka, feeds by health and recent errors.

A feed list with ``allow_private_addresses: true`` (the demo, tests) also lets the extract
workers fetch article pages on private addresses (``NEWSFLOW_PAGE_FETCH__ALLOW_PRIVATE``),
unless that variable is set already.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from prometheus_client.parser import text_string_to_metric_families

from streams import topics
from streams.kafka_clients import client_options
from streams.settings import Settings

Say = Callable[[str], None]
STAGES = ("extract", "enrich", "index")  # in flow order


@dataclass
class Child:
    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    metrics_port: int | None
    proc: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    restart_at: float | None = None  # monotonic time of the next start after an exit
    metrics_host: str = "127.0.0.1"  # where its /metrics answers (see ``reach``)

    def start(self) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "streams.commands.cli", *self.args],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # Ctrl-C reaches the supervisor, which stops us in order
            )

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout_s: float = 30.0) -> None:
        if not self.alive() or self.proc is None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def tail(self, lines: int = 15) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""


def reach(bind: str) -> str:
    """The address to connect to for a server bound to ``bind`` (a wildcard: loopback)."""
    host = bind.strip("[]")
    if host in ("", "0.0.0.0", "::"):  # noqa: S104 - compared, not bound
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def scrape(
    port: int | None, host: str = "127.0.0.1"
) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Samples of a child's /metrics (empty when it does not answer)."""
    if not port:
        return {}
    try:
        url = f"http://{reach(host)}:{port}/metrics"
        with urllib.request.urlopen(url, timeout=2) as resp:
            text = resp.read().decode()
    except OSError:
        return {}
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return sum(
        v
        for (n, lbl), v in samples.items()
        if n == name and all(dict(lbl).get(k) == want for k, want in labels.items())
    )


def by_label(
    samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, label: str
) -> dict[str, float]:
    """``name``'s samples summed by one label (other labels merged), non-zero only, sorted."""
    out: dict[str, float] = {}
    for (n, lbl), v in samples.items():
        if n == name and v:
            key = dict(lbl).get(label, "")
            out[key] = out.get(key, 0.0) + v
    return dict(sorted(out.items()))


@dataclass
class Pipeline:
    settings: Settings
    feeds: Path
    state_dir: Path
    say: Say
    extra_env: dict[str, str] = field(default_factory=dict)  # for every worker (the demo)
    children: dict[str, Child] = field(default_factory=dict)

    def __post_init__(self) -> None:
        base = {
            **os.environ,
            "NEWSFLOW_CONNECTOR__FEEDS_FILE": str(self.feeds),
            **self.extra_env,
        }
        if "NEWSFLOW_PAGE_FETCH__ALLOW_PRIVATE" not in base and private_feed_list(self.feeds):
            base["NEWSFLOW_PAGE_FETCH__ALLOW_PRIVATE"] = "true"
        web = self.settings.faust.web_port
        logs = self.state_dir / "logs"
        # The first enrich, index and extract workers keep their well-known ports (web,
        # web + 1 and web + 2, which `newsflow status` scrapes); further workers follow.
        slots = [
            ("enrich", "enrich", web),
            ("index", "index", web + 1),
            ("extract", "extract", web + 2),
        ]
        port = web + 3
        for i in range(1, enrich_workers(self.settings)):
            slots.append((f"enrich-{i + 1}", "enrich", port))
            port += 1
        for i in range(1, self.settings.extract.workers):
            slots.append((f"extract-{i + 1}", "extract", port))
            port += 1
        for name, stage, port in slots:
            env = {
                **base,
                "NEWSFLOW_FAUST__WEB_PORT": str(port),
                "NEWSFLOW_FAUST__DATADIR": str(self.state_dir / f"faust-{name}"),
            }
            self.children[name] = Child(
                name,
                ["worker", stage, "-l", "warning"],
                env,
                logs / f"{name}.log",
                port,
                metrics_host=self.settings.faust.web_host,
            )

    @property
    def workers(self) -> list[str]:
        return [name for name in self.children if name != "connector"]

    def connector(self, once: bool) -> Child:
        port = 0 if once else self.settings.connector.metrics_port
        args = ["connect", "--feeds", str(self.feeds)]
        if once:
            args += ["--once", "--all", "--json"]
        env = {**os.environ, "NEWSFLOW_CONNECTOR__METRICS_PORT": str(port)}
        child = Child(
            "connector",
            args,
            env,
            self.state_dir / "logs" / "connector.log",
            port or None,
            metrics_host=self.settings.connector.metrics_host,
        )
        self.children["connector"] = child
        return child

    def start_workers(self) -> None:
        for name in self.workers:
            self.children[name].start()

    def stop(self) -> None:
        for name in ("connector", *self.workers):  # upstream first: nothing new arrives
            child = self.children.get(name)
            if child is not None:
                child.stop()

    def samples(self) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
        merged: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
        for child in self.children.values():
            for key, value in scrape(child.metrics_port, child.metrics_host).items():
                merged[key] = merged.get(key, 0.0) + value
        return merged

    def supervise(
        self,
        stop: Callable[[], bool],
        interval_s: float = 2.0,
        out: IO[str] | None = None,
        tty: bool | None = None,
    ) -> None:
        """Long-running: restart dead children (with backoff, without pausing the view) and
        show the live view (see ``liveview``) on ``out`` (stdout)."""
        from streams.commands import liveview

        monitor = Monitor(self)
        try:
            with liveview.Printer(out or sys.stdout, tty) as printer:
                while not stop():
                    now = time.monotonic()
                    for child in self.children.values():
                        if child.proc is None:
                            continue
                        if child.restart_at is None and not child.alive():
                            child.restarts += 1
                            child.restart_at = now + min(30.0, 2.0**child.restarts)
                            monitor.exited(child)
                        if child.restart_at is not None and now >= child.restart_at:
                            child.restart_at = None
                            child.start()
                    printer.show(monitor.snapshot())
                    time.sleep(interval_s)
        finally:
            monitor.close()


class Monitor:
    """Collects what the live view shows: the children's /metrics (run totals across restarts),
    the groups' current lag from Kafka, feed health from the connector's state, recent errors."""

    def __init__(self, pipe: Pipeline, feeds_every_s: float = 10.0) -> None:
        from streams.commands import liveview

        self.pipe = pipe
        self.totals = liveview.RunTotals()
        self.rates = liveview.Rates()
        self.events = liveview.Events()
        self.logs = liveview.LogErrors()
        self.started = time.monotonic()
        self.feeds_every_s = feeds_every_s
        self._feeds: dict[str, int] = {}
        self._feeds_at = float("-inf")
        self._feed_errors: dict[str, str] = {}
        self._dead_seen: dict[str, float] = {}
        self._reader: Any = None

    def exited(self, child: Child) -> None:
        """``child`` died: keep what it counted, say so with its last log line."""
        self.totals.bank(child.name)
        code = child.proc.returncode if child.proc is not None else None
        last = next((ln for ln in reversed(child.tail(5).splitlines()) if ln.strip()), "")
        delay = max(0.0, (child.restart_at or time.monotonic()) - time.monotonic())
        self.events.add(
            child.name,
            f"exited (code {code}); restart #{child.restarts} in {delay:.0f}s; last log: {last}",
        )

    def snapshot(self) -> Any:
        import dataclasses

        from streams.commands import liveview

        for child in self.pipe.children.values():
            if child.alive():
                self.totals.update(child.name, scrape(child.metrics_port, child.metrics_host))
            for line in self.logs.new(str(child.log)):
                self.events.add(child.name, line)
        merged = self.totals.merged()
        now = time.monotonic()
        snap = liveview.snapshot(
            merged,
            elapsed_s=now - self.started,
            rates={},
            lag=self._lag(),
            feeds=self._feed_health(now),
            processes={
                name: (c.alive(), c.restarts)
                for name, c in self.pipe.children.items()
                if c.proc is not None
            },
        )
        for error, count in snap.dead_letters.items():
            seen = self._dead_seen.get(error, 0.0)
            if count > seen:
                self.events.add("dead letters", f"+{count - seen:.0f} {error}")
            self._dead_seen[error] = count
        return dataclasses.replace(
            snap, rates=self.rates.add(now, snap.done), events=tuple(self.events.items)
        )

    def _lag(self) -> dict[str, int | None]:
        from streams.ops import LagReader
        from streams.worker import group_id

        settings = self.pipe.settings
        try:
            if self._reader is None:
                self._reader = LagReader(settings)
            return {
                stage: sum(
                    self._reader.lag(
                        group_id(settings, stage),
                        topics.STAGES[stage]["input"].topic_name(settings.topics),
                    ).values()
                )
                for stage in STAGES
            }
        except Exception:  # noqa: BLE001 - Kafka unreadable now: show "?", try again later
            self.close()
            return dict.fromkeys(STAGES)

    def _feed_health(self, now: float) -> dict[str, int]:
        if now - self._feeds_at < self.feeds_every_s:
            return self._feeds
        self._feeds_at = now
        from connectors.feeds import FeedListError, load_feed_list
        from connectors.rss.schedule import HEALTH_ORDER
        from streams.commands.feed_report import feed_rows

        conf = self.pipe.settings.connector.model_copy(update={"feeds_file": self.pipe.feeds})
        try:
            rows = [r for r in feed_rows(conf, load_feed_list(self.pipe.feeds)) if r["enabled"]]
        except (FeedListError, OSError, ValueError) as exc:
            self.events.add("feeds", f"feed state unreadable: {exc}")
            return self._feeds
        self._feeds = {h: n for h in HEALTH_ORDER if (n := sum(r["health"] == h for r in rows))}
        for row in rows:
            error = row["last_error"]
            if error and self._feed_errors.get(row["id"]) != error:
                self.events.add(f"feed {row['id']}", f"{row['health']}: {error}")
            if error:
                self._feed_errors[row["id"]] = error
            else:
                self._feed_errors.pop(row["id"], None)
        return self._feeds

    def close(self) -> None:
        if self._reader is not None:
            reader, self._reader = self._reader, None
            with contextlib.suppress(Exception):  # closing a broken client
                reader.close()


def private_feed_list(path: Path) -> bool:
    """Whether the feed list allows private addresses (its feeds, so its pages, are local)."""
    from connectors.feeds import FeedListError, load_feed_list

    try:
        return load_feed_list(path).allow_private_addresses
    except FeedListError:
        return False


def enrich_workers(settings: Settings) -> int:
    """How many enrich workers `newsflow run` starts: the setting, or one per CPU core.

    Enrichment is the pipeline's CPU bottleneck and one worker uses one core; more workers than
    the raw topic has partitions would sit idle.
    """
    wanted = settings.enrich.workers or os.cpu_count() or 1
    return max(1, min(wanted, settings.topics.partitions))


def wait_joined(settings: Settings, pipe: Pipeline, say: Say, timeout_s: float = 180.0) -> None:
    """Until every worker has joined its stage's consumer group (a stable group).

    A worker that joins after the articles started flowing takes partitions whose progress
    was not committed yet, and their records are processed twice (at-least-once: harmless to
    the index, but a run that counts should not start that way)."""
    from kafka import KafkaAdminClient

    from streams.worker import group_id

    want: Counter[str] = Counter(
        child.args[1] for name, child in pipe.children.items() if name != "connector"
    )
    admin = KafkaAdminClient(**client_options(settings.kafka))
    deadline = time.monotonic() + timeout_s
    joined: dict[str, int] = {}
    try:
        while time.monotonic() < deadline:
            groups = {stage: group_id(settings, stage) for stage in want}
            described = admin.describe_groups(list(groups.values()))
            joined = {
                stage: len(described[g]["members"])
                if described[g]["group_state"] == "Stable"
                else 0
                for stage, g in groups.items()
                if g in described
            }
            if all(joined.get(stage, 0) >= n for stage, n in want.items()):
                return
            for name in pipe.workers:
                if not pipe.children[name].alive():
                    raise RuntimeError(f"the {name} worker died:\n{pipe.children[name].tail()}")
            time.sleep(0.5)
        say(f"warning: not every worker joined its group within {timeout_s:.0f}s: {joined}")
    finally:
        admin.close()


def raw_ends(settings: Settings) -> dict[str, dict[int, int]]:
    from kafka import KafkaConsumer

    from streams.topic_range import assign_all

    consumer = KafkaConsumer(**client_options(settings.kafka), group_id=None)
    try:
        out = {}
        for spec in topics.ALL:
            _, end = assign_all(consumer, spec.topic_name(settings.topics))
            out[spec.name] = {tp.partition: off for tp, off in end.items()}
        return out
    finally:
        consumer.close()


def keys_between(settings: Settings, spec: topics.TopicSpec, start: dict[int, int]) -> list[str]:
    """Keys of the records of ``spec`` from ``start`` to the end seen now."""
    from kafka import KafkaConsumer

    from streams.topic_range import assign_all, batches_until

    consumer = KafkaConsumer(
        **client_options(settings.kafka), group_id=None, enable_auto_commit=False
    )
    try:
        parts, end = assign_all(consumer, spec.topic_name(settings.topics))
        for tp in parts:
            consumer.seek(tp, start.get(tp.partition, 0))
        return [
            (m.key or b"").decode("utf-8", "replace")
            for batch in batches_until(consumer, parts, end)
            for ms in batch.values()
            for m in ms
        ]
    finally:
        consumer.close()


def wait_caught_up(settings: Settings, timeout_s: float, say: Say) -> bool:
    """Until every stage's consumer group has no lag (extract, enrich, then index)."""
    from streams.ops import LagReader
    from streams.worker import group_id

    reader = LagReader(settings)
    deadline = time.monotonic() + timeout_s
    try:
        last = ""
        while time.monotonic() < deadline:
            lags = {
                stage: sum(
                    reader.lag(
                        group_id(settings, stage),
                        topics.STAGES[stage]["input"].topic_name(settings.topics),
                    ).values()
                )
                for stage in STAGES
            }
            line = "waiting for the workers: lag " + " ".join(f"{k} {v}" for k, v in lags.items())
            if line != last:
                say(line)
                last = line
            if not any(lags.values()):
                # An upstream stage may still be producing its last batch: confirm once more.
                time.sleep(1.0)
                again = sum(
                    sum(
                        reader.lag(
                            group_id(settings, stage),
                            topics.STAGES[stage]["input"].topic_name(settings.topics),
                        ).values()
                    )
                    for stage in STAGES
                )
                if again == 0:
                    return True
            time.sleep(1.0)
        return False
    finally:
        reader.close()


def verify(settings: Settings, produced: list[str], dead: set[str]) -> dict[str, Any]:
    """Which produced ids are searchable, dead-lettered, missing, or duplicated in the index."""
    from streams.sinks.elastic import make_client

    es = make_client(settings.elastic)
    es.indices.refresh(index=settings.elastic.alias)
    wanted = sorted(set(produced))
    found: Counter[str] = Counter()
    for i in range(0, len(wanted), 1000):
        chunk = wanted[i : i + 1000]
        resp = es.search(
            index=settings.elastic.alias,
            query={"ids": {"values": chunk}},
            size=len(chunk) * 2,
            source=False,
        )
        found.update(hit["_id"] for hit in resp["hits"]["hits"])
    missing = [a for a in wanted if a not in found and a not in dead]
    duplicated = [a for a, n in found.items() if n > 1]
    langs = (
        es.search(
            index=settings.elastic.alias,
            query={"ids": {"values": wanted[:10000]}},
            size=0,
            aggs={
                "lang": {"terms": {"field": "language.code", "size": 30}},
                "people": {"terms": {"field": "entities.person", "size": 8}},
                "orgs": {"terms": {"field": "entities.org", "size": 8}},
                "places": {"terms": {"field": "entities.location", "size": 8}},
            },
        )
        if wanted
        else None
    )
    aggs = langs["aggregations"] if langs is not None else {}

    def buckets(name: str) -> list[tuple[str, int]]:
        return [(b["key"], b["doc_count"]) for b in aggs.get(name, {}).get("buckets", [])]

    return {
        "produced": len(wanted),
        "indexed": len(found),
        "dead_lettered": len(dead & set(wanted)),
        "missing": missing,
        "duplicated": duplicated,
        "languages": buckets("lang"),
        "top_people": buckets("people"),
        "top_orgs": buckets("orgs"),
        "top_places": buckets("places"),
    }


def run_once(
    settings: Settings,
    feeds: Path,
    state_dir: Path,
    say: Say,
    timeout_s: float = 600.0,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    pipe = Pipeline(settings, feeds, state_dir, say, extra_env=dict(extra_env or {}))
    marks = raw_ends(settings)
    pipe.start_workers()
    try:
        wait_joined(settings, pipe, say)
        connector = pipe.connector(once=True)
        say(f"polling every feed of {feeds} once")
        connector.start()
        assert connector.proc is not None
        code = connector.proc.wait()
        polled: dict[str, Any] = {}
        for line in reversed(connector.log.read_text(errors="replace").splitlines()):
            if line.startswith("{"):
                polled = json.loads(line)
                break
        if code not in (0, 3) or not polled:
            raise RuntimeError(f"the connector failed (exit {code}):\n{connector.tail()}")
        for name in pipe.workers:
            if not pipe.children[name].alive():
                raise RuntimeError(f"the {name} worker died:\n{pipe.children[name].tail()}")
        caught_up = wait_caught_up(settings, timeout_s, say)
        samples = pipe.samples()
        stage_counts = {
            "extracted": total(
                samples, "newsflow_articles_total", stage="extract", outcome="extracted"
            ),
            "full_text": by_label(samples, "newsflow_extract_pages_total", "outcome"),
            "enriched": total(
                samples, "newsflow_articles_total", stage="enrich", outcome="enriched"
            ),
            "indexed": total(samples, "newsflow_articles_total", stage="index", outcome="indexed"),
            "dead_lettered": total(samples, "newsflow_dead_letters_total"),
        }
    finally:
        pipe.stop()
    produced = keys_between(settings, topics.RAW, marks[topics.RAW.name])
    dead: set[str] = set()
    for spec in topics.DEAD_LETTER_TOPICS:
        dead |= set(keys_between(settings, spec, marks[spec.name]))
    result = verify(settings, produced, dead)
    result.update(
        {
            "connector": polled,
            "stages": stage_counts,
            "stuck": not caught_up,
            "seconds": round(time.monotonic() - started, 1),
            "ok": caught_up
            and not result["missing"]
            and not result["duplicated"]
            and polled.get("delivery_failures", 0) == 0,
        }
    )
    return result


def render_summary(r: dict[str, Any]) -> list[str]:
    c = r["connector"]
    lines = [
        f"feeds: {c.get('polled', 0)}/{c.get('feeds_total', 0)} polled, results "
        + ", ".join(f"{k} {v}" for k, v in sorted(c.get("results", {}).items())),
        "connector: "
        + (
            ", ".join(f"{k} {v}" for k, v in sorted(c.get("articles", {}).items())) or "no articles"
        ),
        f"extract: {r['stages'].get('extracted', 0):.0f} forwarded ("
        + (
            ", ".join(
                f"{k} {v:.0f}" for k, v in sorted((r["stages"].get("full_text") or {}).items())
            )
            or "no pages"
        )
        + ")",
        f"enrich: {r['stages']['enriched']:.0f} enriched; index: {r['stages']['indexed']:.0f} "
        f"indexed; dead letters: {r['stages']['dead_lettered']:.0f}",
        f"this run: {r['produced']} produced, {r['indexed']} searchable, "
        f"{r['dead_lettered']} dead-lettered, {len(r['missing'])} missing, "
        f"{len(r['duplicated'])} duplicated",
        "languages: " + ", ".join(f"{k} {n}" for k, n in r["languages"]),
        "top people: " + ", ".join(f"{k} ({n})" for k, n in r["top_people"]),
        "top organisations: " + ", ".join(f"{k} ({n})" for k, n in r["top_orgs"]),
        "top places: " + ", ".join(f"{k} ({n})" for k, n in r["top_places"]),
        f"time: {r['seconds']} s",
    ]
    if c.get("failing_feeds"):
        lines.append(
            "failing feeds: " + "; ".join(f"{k}: {v}" for k, v in c["failing_feeds"].items())
        )
    if r["stuck"]:
        lines.append("STUCK: the workers did not catch up in time (see their logs)")
    if r["missing"]:
        lines.append(f"LOST: {len(r['missing'])} article(s), e.g. {r['missing'][:3]}")
    return lines
