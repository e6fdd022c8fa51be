"""Whole-pipeline benchmark: feeds -> connector -> extract -> enrich -> index -> searchable.

The real processes, as ``newsflow run`` starts them: ``newsflow connect`` (a feed list pointing
at a local load generator, ``allow_private_addresses: true``), ``newsflow worker extract``, one
``newsflow worker enrich`` per core (``enrich_workers``: ``NEWSFLOW_ENRICH__WORKERS`` or the CPU
count, capped by the partitions) and ``newsflow worker index``, each run in its own private
namespace (topics, consumer groups, alias, index prefix, dead-letter index, feed state, faust
data dirs) on the shared local Kafka and Elasticsearch, with its own metrics ports. Everything
private is deleted after each run.

Two modes, measured side by side in alternating rounds (``bench.common.alternate``: summary,
full, summary, full, ...; ``--rounds``, at least 3), each round with fresh processes:

- ``summary``: synthetic feeds (``streams.tooling.samplefeeds.synthetic_feed``, 20 items per
  feed, ~100-word summaries) whose feed list says ``full_text: never``: the extract stage
  forwards every article unfetched (status ``skipped``).
- ``full``: the same feeds with ``full_text: always``; every item links to a page on the
  generator's own HTTP server (``bench.pages``: realistic 30-120 KB news pages with menus,
  teasers, comments, scripts and footers around a 5-9 KB article, made on request from the
  same synthetic stories). Pacing towards that one local host is relaxed through the feeds'
  ``page_per_host`` (``--page-per-host``, 16) and ``page_min_spacing_s``
  (``--page-spacing-s``, 0); a real deployment paces every site at 2 in flight, >= 1 s apart.

Per round and mode:

1. throughput (``--summary-articles`` 5,000 / ``--full-articles`` 2,000): a few warm-up
   articles first (start-up costs stay out), then every article is on the feeds before the
   connector sees them (the feed list grows; the connector re-reads it). ``e2e/s`` is articles
   / (last searchable - first ``fetched_at``); ``sust/s`` (the capacity) the rate between
   10 % and 90 % of them searchable. Per stage, from each process's ``/metrics`` sampled every
   0.5 s: produced/s, extracted/s, enriched/s, indexed/s.
2. latency: the generator publishes new items at ``--latency-fraction`` (50 %) of that round's
   capacity (or of ``--peak``/``--peak-full``) for ``--seconds``, feeds polled every second.
   Per new article, exactly: ``fetched_at`` (the poll that saw it; ``first_seen_at`` is the
   same moment) -> raw record -> extracted record -> enriched record -> ``indexed_at`` ->
   *searchable*, the moment a search first returned it (the alias is polled every 0.2 s; the
   midpoint of the polls before and at the first sighting, so the refresh interval is
   included). Also publish -> searchable and the index worker's ``newsflow_end_to_end_seconds``.

CPU seconds and peak RSS (VmHWM) of every process (the connector with its parse workers, the
extract worker, the enrich workers together), the generator, Elasticsearch and Kafka come from
/proc; the machine's busy CPU from /proc/stat, so CPU taken by other work on the machine is
shown as ``other``. CPU per article gives the rate the 2 cores could carry if nothing else ran
(``bound``) and names the costly stage. The 1-minute load average is recorded before and after
every round (the machine is shared).

``--refresh-interval 1s,250ms`` sets the private indices' ``index.refresh_interval`` and makes
one side per interval and mode (alternated like the modes): how to measure a refresh change
before making it in the template.

    python -m bench.bench_pipeline                               # 3 rounds, both modes
    python -m bench.bench_pipeline --modes summary --summary-articles 10000
    python -m bench.bench_pipeline --modes summary --peak 300 --no-throughput \\
        --refresh-interval 1s,250ms                              # latency at 150/s, 2 refreshes

Settings of the stages come from the environment as usual (e.g.
``NEWSFLOW_INDEX__BATCH_SIZE=1000``); the effective ones are recorded in the results.
Results: tables, median and min-max per mode, the targets (summary >= 390/s and p95 <= 2 s,
issue 12; full text >= 60/s and p95 <= 5 s, issue 15) and JSON in
``bench/results/pipeline-<timestamp>.json`` (with the machine's load before and after).
"""

from __future__ import annotations

import argparse
import contextlib
import math
import multiprocessing as mp
import os
import re
import signal
import socket
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from bench.common import (
    MIN_ROUNDS,
    ROOT,
    Side,
    alternate,
    fmt_spread,
    machine_load,
    private_env,
    ratio_report,
    save_result,
    spread,
)
from streams import topics
from streams.commands.bootstrap import ensure_elastic, ensure_topics
from streams.commands.run import Child, enrich_workers, scrape, total
from streams.kafka_clients import client_options
from streams.settings import Settings
from streams.sinks.elastic import make_client


@dataclass
class PageOptions:
    """Politeness towards the local page server and the index refresh (set by ``main``)."""

    per_host: int = 16
    spacing_s: float = 0.0
    refresh_interval: str | None = None  # e.g. "200ms": the private indices' refresh_interval


PAGES = PageOptions()
ITEMS = 20  # items per synthetic feed (typical of news feeds)
WARM_FEEDS, WARM_ITEMS = 5, 4  # polled first, so that start-up costs stay out of the figures
SEED = 7
CLK = os.sysconf("SC_CLK_TCK")
ARTICLES = "newsflow_articles_total"
E2E = "newsflow_end_to_end_seconds"


# ---- the load generator (child process) ------------------------------------------------------


def _generator(conn: Connection, feeds: int, last_items: int, pages: bool, cpu: int | None) -> None:
    from bench.pages import PageStore, localise
    from streams.commands.feedserver import FeedDirServer
    from streams.tooling.samplefeeds import synthetic_feed

    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    store = PageStore({}, None)
    with FeedDirServer(_store=store) as srv:
        store.serve_at(srv.base_url)

        def feed(i: int, items: int, generation: int = 0) -> bytes:
            xml = synthetic_feed(i, items, full_text=False, seed=SEED, generation=generation)
            return localise(xml, srv.base_url) if pages else xml

        def body(i: int, generation: int) -> bytes:
            return feed(i, last_items if i == feeds - 1 else ITEMS, generation)

        files = {f"f{i}.xml": body(i, 0) for i in range(feeds)}
        for j in range(WARM_FEEDS):  # warm-up feeds: other feed numbers, so other languages
            files[f"w{j}.xml"] = feed(feeds + j, WARM_ITEMS)
        for name, data in files.items():
            srv.put(name, data)
            entry = srv.store.get(name)
            if entry is not None:  # compress now, not on the first request
                entry.gzipped()
        conn.send(srv.base_url)
        while True:
            msg = conn.recv()
            if msg[0] != "publish":
                break
            _, rate, duration_s, burst = msg
            gens = [0] * feeds
            log: list[tuple[int, int, float]] = []
            published, nxt = 0, 0
            started = time.time()
            while (now := time.time()) - started < duration_s:
                while published < rate * (now - started):
                    gens[nxt] += burst
                    srv.put(f"f{nxt}.xml", body(nxt, gens[nxt]))
                    log.append((nxt, gens[nxt], time.time()))
                    published += burst
                    nxt = (nxt + 1) % feeds
                time.sleep(0.02)
            conn.send(("published", published, log))


class Generator:
    """Parent-side handle of the load generator process."""

    def __init__(self, feeds: int, last_items: int, pages: bool) -> None:
        ctx = mp.get_context("spawn")  # nothing of this process (clients, threads) is inherited
        self.conn, child = ctx.Pipe()
        cpus = sorted(os.sched_getaffinity(0))
        self.proc = ctx.Process(
            target=_generator,
            args=(child, feeds, last_items, pages, cpus[-1] if len(cpus) > 1 else None),
            daemon=True,
        )
        self.proc.start()
        if not self.conn.poll(300):
            raise RuntimeError("the load generator did not start")
        self.base_url: str = self.conn.recv()

    def publish(self, rate: float, duration_s: float, burst: int) -> None:
        self.conn.send(("publish", rate, duration_s, burst))

    def result(self) -> tuple[int, list[tuple[int, int, float]]] | None:
        if not self.conn.poll():
            return None
        _, published, log = self.conn.recv()
        return published, log

    def stop(self) -> None:
        with contextlib.suppress(OSError):
            self.conn.send(("stop",))
        self.proc.join(10)
        if self.proc.is_alive():
            self.proc.terminate()
            self.proc.join(5)


# ---- /proc ------------------------------------------------------------------------------------


def _children_map() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(root: int, kids: dict[int, list[int]]) -> list[int]:
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo += kids.get(pid, [])
    return out


def _cpu_s(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK


def _status_mb(pid: int, key: str) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(key):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def _machine_busy_s() -> float:
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / CLK


@dataclass
class ProcGroup:
    """A process and its descendants (the connector's parse workers, Elasticsearch's JVM)."""

    name: str
    roots: tuple[int, ...]
    cpu: dict[int, float] = field(default_factory=dict)  # last CPU seen per pid
    hwm: dict[int, float] = field(default_factory=dict)  # VmHWM per pid
    base_cpu: float = 0.0  # CPU before this phase (the shared stack runs already)

    def sample(self, kids: dict[int, list[int]]) -> None:
        for pid in (p for root in self.roots for p in _tree(root, kids)):
            cpu = _cpu_s(pid)
            if cpu is None:
                continue
            self.cpu[pid] = cpu
            self.hwm[pid] = max(self.hwm.get(pid, 0.0), _status_mb(pid, "VmHWM"))

    def cpu_s(self) -> float:
        return sum(self.cpu.values()) - self.base_cpu

    def peak_rss_mb(self) -> float:
        """Largest single process (what a per-worker memory limit applies to)."""
        return max(self.hwm.values(), default=0.0)


def _stack_pids(settings: Settings) -> dict[str, int]:
    from streams.infra import elastic, kafka

    out = {}
    for name, mod in (("elasticsearch", elastic), ("kafka", kafka)):
        try:
            tracked = mod.pidfile(settings.infra).read()
        except Exception:  # noqa: BLE001 - a stack not started by `infra up`: not measured
            tracked = None
        if tracked is not None and Path(f"/proc/{tracked.pid}").exists():
            out[name] = tracked.pid
    return out


# ---- one phase's processes and samples ---------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Sample:
    t: float
    produced: float
    extracted: float
    enriched: float
    indexed: float


class Phase:
    """A private namespace, the three pipeline processes, the generator, and the samplers."""

    def __init__(self, name: str, tmp: Path, feeds_yaml: Path, interval_s: float) -> None:
        self.name = name
        self.unique = "p" + uuid.uuid4().hex[:8]
        self.dir = tmp / self.unique
        self.dir.mkdir(parents=True)
        env = private_env(self.unique, self.dir, web_port=_free_port())
        extra = {
            "NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX": f"bench-dead-letters-{self.unique}",
            "NEWSFLOW_CONNECTOR__STATE_PATH": str(self.dir / "feed-state.sqlite"),
            "NEWSFLOW_CONNECTOR__FEEDS_FILE": str(feeds_yaml),
            # One local host serves every feed: the per-host politeness limit would serialise
            # them (real feeds spread over many hosts).
            "NEWSFLOW_CONNECTOR__PER_HOST": os.environ.get("NEWSFLOW_CONNECTOR__CONCURRENCY", "64"),
            "NEWSFLOW_CONNECTOR__MIN_INTERVAL_S": str(interval_s),
            "NEWSFLOW_CONNECTOR__MAX_INTERVAL_S": str(interval_s),
            # The article pages are on the local load generator (as `newsflow run` sets it
            # for a feed list with allow_private_addresses).
            "NEWSFLOW_PAGE_FETCH__ALLOW_PRIVATE": "true",
        }
        env.update(extra)
        os.environ.update(extra)
        self.settings = Settings()
        self.env = env
        self.children: dict[str, Child] = {}
        # The workers `newsflow run` starts: extract, one enrich worker per core (or
        # NEWSFLOW_ENRICH__WORKERS), one index worker.
        self.workers = ["extract"]
        self.workers += [f"enrich-{i + 1}" for i in range(enrich_workers(self.settings))]
        self.workers += ["index"]
        for name in self.workers:
            port = _free_port()
            child_env = {
                **env,
                "NEWSFLOW_FAUST__WEB_PORT": str(port),
                "NEWSFLOW_FAUST__DATADIR": str(self.dir / f"faust-{name}"),
                "NEWSFLOW_CONNECTOR__METRICS_PORT": "0",
            }
            self.children[name] = Child(
                name,
                ["worker", name.split("-")[0], "-l", "warning"],
                child_env,
                self.dir / f"{name}.log",
                port,
            )
        port = _free_port()
        self.children["connector"] = Child(
            "connector",
            ["connect", "--feeds", str(feeds_yaml)],
            {**env, "NEWSFLOW_CONNECTOR__METRICS_PORT": str(port)},
            self.dir / "connector.log",
            port,
        )
        self.es = make_client(self.settings.elastic)
        self.groups: dict[str, ProcGroup] = {}
        self.samples: list[Sample] = []
        self.counts: list[tuple[float, int]] = []  # (time, searchable docs)
        self.generator: Generator | None = None
        self.machine0 = 0.0
        self.bench_cpu0 = 0.0
        self.started = time.time()
        self.history: list[dict[str, float]] = []  # CPU snapshots, one per tick

    # ---- setup and teardown

    def bootstrap(self) -> None:
        ensure_topics(self.settings, lambda _m: None)
        ensure_elastic(self.settings, lambda _m: None, self.es)
        if PAGES.refresh_interval:  # measuring another refresh interval than the template's
            self.es.indices.put_settings(
                index=f"{self.settings.elastic.index_prefix}-*",
                settings={"index": {"refresh_interval": PAGES.refresh_interval}},
            )
        for name, pid in _stack_pids(self.settings).items():
            group = ProcGroup(name, (pid,))
            group.sample(_children_map())
            group.base_cpu = sum(group.cpu.values())
            self.groups[name] = group
        self.machine0 = _machine_busy_s()
        self.bench_cpu0 = time.process_time()

    def start_generator(self, feeds: int, last_items: int, pages: bool) -> str:
        self.generator = Generator(feeds, last_items, pages)
        self.groups["generator"] = ProcGroup("generator", (self.generator.proc.pid or 0,))
        return self.generator.base_url

    def start_workers(self, timeout_s: float = 180.0) -> None:
        pids: dict[str, list[int]] = {}
        for name in self.workers:
            child = self.children[name]
            child.start()
            assert child.proc is not None
            pids.setdefault(name.split("-")[0], []).append(child.proc.pid)
        for stage, roots in pids.items():  # one CPU/RSS group per stage
            self.groups[stage] = ProcGroup(stage, tuple(roots))
        self._wait_groups_stable(timeout_s)

    def _wait_groups_stable(self, timeout_s: float) -> None:
        """Until both stages' consumer groups have their partitions (models loaded before)."""
        from kafka import KafkaAdminClient

        from streams.worker import group_id

        admin = KafkaAdminClient(**client_options(self.settings.kafka))
        want = {group_id(self.settings, s) for s in ("extract", "enrich", "index")}
        deadline = time.monotonic() + timeout_s
        try:
            while time.monotonic() < deadline:
                self.tick()
                for name in self.workers:
                    if not self.children[name].alive():
                        raise RuntimeError(f"{name} worker died:\n{self.children[name].tail()}")
                states = {g["group_id"]: g.get("group_state") for g in admin.list_groups()}
                if all(states.get(g) == "Stable" for g in want):
                    return
                time.sleep(0.5)
        finally:
            admin.close()
        raise RuntimeError(f"workers not ready in {timeout_s:.0f}s; see {self.dir}")

    def start_connector(self) -> None:
        child = self.children["connector"]
        child.start()
        assert child.proc is not None
        self.groups["connector"] = ProcGroup("connector", (child.proc.pid,))

    def stop(self) -> None:
        self.tick()  # last CPU and RSS figures before the processes go
        for name in ("connector", *self.workers):  # upstream first, as `newsflow run` does
            self.children[name].stop()
        if self.generator is not None:
            self.generator.stop()

    def cleanup(self) -> None:
        from kafka import KafkaAdminClient

        es, s = self.es, self.settings.elastic
        es.options(ignore_status=404).indices.delete(
            index=f"{s.index_prefix}-*", ignore_unavailable=True
        )
        es.options(ignore_status=404).indices.delete(index=s.dead_letter_index)
        for template in (s.index_prefix, s.dead_letter_index):
            es.options(ignore_status=404).indices.delete_index_template(name=template)
        es.close()
        admin = KafkaAdminClient(**client_options(self.settings.kafka))
        try:
            mine = [t for t in admin.list_topics() if self.unique in t]
            if mine:
                admin.delete_topics(mine)
            groups = [g["group_id"] for g in admin.list_groups() if self.unique in g["group_id"]]
            if groups:
                admin.delete_groups(groups)
        except Exception as exc:  # noqa: BLE001 - leftovers are private; say so and go on
            print(f"  (cleanup of Kafka topics/groups of {self.unique} failed: {exc})")
        finally:
            admin.close()

    # ---- sampling

    def tick(self, metrics: bool = False, count: bool = False) -> None:
        kids = _children_map()
        for group in self.groups.values():
            group.sample(kids)
        snap = {name: g.cpu_s() for name, g in self.groups.items()}
        snap["machine"] = _machine_busy_s() - self.machine0
        snap["bench"] = time.process_time() - self.bench_cpu0
        snap["t"] = time.time()
        self.history.append(snap)
        if metrics:
            merged: dict[Any, float] = {}
            for child in self.children.values():
                if child.alive():  # several enrich workers: their counters add up
                    for key, value in scrape(child.metrics_port).items():
                        merged[key] = merged.get(key, 0.0) + value
            self.samples.append(
                Sample(
                    time.time(),
                    total(merged, ARTICLES, stage="connector"),
                    total(merged, ARTICLES, stage="extract", outcome="extracted"),
                    total(merged, ARTICLES, stage="enrich", outcome="enriched"),
                    total(merged, ARTICLES, stage="index", outcome="indexed"),
                )
            )
        if count:
            n = int(self.es.count(index=self.settings.elastic.alias)["count"])
            self.counts.append((time.time(), n))

    def check_alive(self) -> None:
        for name in ("connector", *self.workers):
            child = self.children[name]
            if child.proc is not None and not child.alive():
                raise RuntimeError(f"{name} exited:\n{child.tail()}")

    def at(self, when: float) -> dict[str, float]:
        """The CPU snapshot taken last at or before ``when`` (ticks are 0.2-0.5 s apart)."""
        before = [snap for snap in self.history if snap["t"] <= when]
        return before[-1] if before else self.history[0]

    def now(self) -> dict[str, float]:
        self.tick()
        return self.history[-1]

    def cpu_between(self, m0: dict[str, float], m1: dict[str, float], n: int) -> dict[str, Any]:
        """CPU seconds per process between two snapshots, the machine's, the rest of it, and
        milliseconds per article (``n`` articles went through in between)."""
        wall = m1["t"] - m0["t"]
        out: dict[str, Any] = {"wall_s": round(wall, 2)}
        ours = 0.0
        per_article: dict[str, float] = {}
        for name in PROCS:
            if name in m1:
                used = m1[name] - m0.get(name, 0.0)
                out[name] = round(used, 2)
                per_article[name] = round(1000 * used / max(n, 1), 2)
                ours += used
        out["bench"] = round(m1["bench"] - m0["bench"], 2)
        machine = m1["machine"] - m0["machine"]
        out["machine_busy"] = round(machine, 2)
        out["other"] = round(max(0.0, machine - ours - out["bench"]), 2)
        cores = len(os.sched_getaffinity(0))
        out["machine_busy_pct"] = round(100 * machine / (wall * cores), 1) if wall else 0.0
        # The pipeline's own CPU per article (publisher and this benchmark left out), and the
        # rate the cores could sustain at that cost if nothing else ran.
        pipeline_ms = sum(
            per_article.get(k, 0.0)
            for k in ("connector", "extract", "enrich", "index", "elasticsearch", "kafka")
        )
        per_article["pipeline"] = round(pipeline_ms, 2)
        out["ms_per_article"] = per_article
        out["cpu_bound_per_s"] = round(cores * 1000 / pipeline_ms, 1) if pipeline_ms else None
        return out

    def resources(self) -> dict[str, Any]:
        return {
            name: {
                "cpu_s": round(g.cpu_s(), 2),
                "peak_rss_mb": round(g.peak_rss_mb()),
                "processes": len(g.cpu),
            }
            for name, g in self.groups.items()
        }

    def settings_used(self) -> dict[str, Any]:
        s = self.settings
        return {
            "partitions": s.topics.partitions,
            "workers": self.workers,
            "extract": s.extract.model_dump(),
            "page_fetch": s.page_fetch.model_dump(
                include={"concurrency", "per_host", "min_spacing_s", "hosts"}
            ),
            "enrich": s.enrich.model_dump(),
            "index": s.index.model_dump(),
            "connector": {
                "concurrency": s.connector.concurrency,
                "per_host": s.connector.per_host,
                "parse_workers": s.connector.parse_workers,
                "interval_s": s.connector.min_interval_s,
            },
        }


# ---- measurements -------------------------------------------------------------------------------


def _feed_list(base: str, feeds: int, path: Path, kind: str, warm: bool = False) -> None:
    """The feed list: ``summary`` feeds say ``full_text: never`` (the extract stage forwards
    them unfetched); ``full`` feeds say ``full_text: always`` with the page pacing of
    ``--page-per-host``/``--page-spacing-s`` for their (local) site."""
    from connectors.feeds import FeedList, FeedSpec, save_feed_list

    names = [f"w{j}" for j in range(WARM_FEEDS)] if warm else []
    names += [f"f{i}" for i in range(feeds)]
    extra: dict[str, Any] = {"full_text": "never"}
    if kind == "full":
        extra = {
            "full_text": "always",
            "page_per_host": PAGES.per_host,
            "page_min_spacing_s": PAGES.spacing_s,
        }
    save_feed_list(
        path,
        FeedList(
            allow_private_addresses=True,
            feeds=tuple(FeedSpec(id=name, url=f"{base}/{name}.xml", **extra) for name in names),
        ),
    )


def _stage_rate(samples: list[Sample], attr: str) -> dict[str, float]:
    """From the last sample before the counter moved to the first at its final value."""
    vals = [(s.t, getattr(s, attr)) for s in samples]
    if len(vals) < 2 or vals[-1][1] <= vals[0][1]:
        return {"count": vals[-1][1] if vals else 0.0, "per_s": 0.0, "peak_5s_per_s": 0.0}
    low, high = vals[0][1], vals[-1][1]
    start = max(t for t, v in vals if v == low)
    end = min(t for t, v in vals if v == high)
    peak = 0.0
    j = 0
    for i in range(len(vals)):  # best 5-second window
        while vals[i][0] - vals[j][0] > 5.0:
            j += 1
        if vals[i][0] - vals[j][0] >= 4.0:
            peak = max(peak, (vals[i][1] - vals[j][1]) / (vals[i][0] - vals[j][0]))
    return {
        "count": high - low,
        "per_s": round((high - low) / max(end - start, 1e-9), 1),
        "peak_5s_per_s": round(peak, 1),
    }


def _time_at(counts: list[tuple[float, int]], level: float) -> float:
    """When the searchable count reached ``level`` (linear between samples)."""
    prev_t, prev_n = counts[0]
    for t, n in counts:
        if n >= level:
            if n == prev_n:
                return t
            return prev_t + (t - prev_t) * (level - prev_n) / (n - prev_n)
        prev_t, prev_n = t, n
    return counts[-1][0]


def _ts(value: str) -> float:
    return datetime.fromisoformat(value).timestamp()


def _percentiles(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    v = sorted(values)

    def pct(p: float) -> float:
        k = (len(v) - 1) * p
        lo, hi = math.floor(k), math.ceil(k)
        return v[lo] + (v[hi] - v[lo]) * (k - lo)

    return {
        "p50": round(pct(0.5), 3),
        "p95": round(pct(0.95), 3),
        "p99": round(pct(0.99), 3),
        "max": round(v[-1], 3),
        "n": len(v),
    }


def _histogram(samples: dict[Any, float]) -> list[tuple[float, float]]:
    buckets = [
        (float(dict(lbl)["le"]), v) for (name, lbl), v in samples.items() if name == f"{E2E}_bucket"
    ]
    return sorted(buckets)


def _histogram_percentiles(
    before: list[tuple[float, float]], after: list[tuple[float, float]]
) -> dict[str, float]:
    """p50/p95/p99 of the observations between two scrapes, linear within a bucket."""
    base = dict(before)
    delta = [(le, v - base.get(le, 0.0)) for le, v in after]
    if not delta or delta[-1][1] <= 0:
        return {}
    n = delta[-1][1]
    out: dict[str, float] = {"n": n}
    for name, p in (("p50", 0.5), ("p95", 0.95), ("p99", 0.99)):
        want, lo, below = p * n, 0.0, 0.0
        for le, cum in delta:
            if cum >= want:
                if math.isinf(le):
                    out[name] = lo  # beyond the last finite bucket: its lower bound
                else:
                    share = (want - below) / (cum - below) if cum > below else 1.0
                    out[name] = round(lo + (le - lo) * share, 3)
                break
            lo, below = le, cum
    return out


class Watcher:
    """The moment each document first shows up in a search of the alias.

    One index worker keeps one bulk request in flight, so documents become visible in
    ``indexed_at`` order (a bulk's documents share one ``indexed_at``; a refresh may split a
    bulk, hence ``gte``): each poll asks only for documents at or after the newest seen.
    """

    def __init__(self, es: Any, alias: str, since: float) -> None:
        self.es, self.alias = es, alias
        self.watermark = int(since * 1000)
        self.seen: dict[str, float] = {}
        self.prev: float | None = None
        self.gaps: list[float] = []

    def poll(self) -> None:
        start = time.time()
        resp = self.es.search(
            index=self.alias,
            query={"range": {"indexed_at": {"gte": self.watermark, "format": "epoch_millis"}}},
            size=10000,
            source=False,
            docvalue_fields=[{"field": "indexed_at", "format": "epoch_millis"}],
            track_total_hits=False,
        )
        when = start if self.prev is None else (self.prev + start) / 2
        if self.prev is not None:
            self.gaps.append(start - self.prev)
        self.prev = start
        for hit in resp["hits"]["hits"]:
            self.seen.setdefault(hit["_id"], when)
            self.watermark = max(self.watermark, int(float(hit["fields"]["indexed_at"][0])))


def _scan(es: Any, alias: str, fields: list[str]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    after: list[Any] | None = None
    while True:
        resp = es.search(
            index=alias,
            size=5000,
            sort=[{"article_id": "asc"}],
            source=fields,
            search_after=after,
            track_total_hits=False,
        )
        hits = resp["hits"]["hits"]
        if not hits:
            return out
        out += [{"_id": h["_id"], **h["_source"]} for h in hits]
        after = hits[-1]["sort"]


def _record_times(settings: Settings, spec: topics.TopicSpec) -> dict[str, float]:
    """article_id -> record timestamp (seconds) of the first record of each key in a topic."""
    from kafka import KafkaConsumer

    from streams.topic_range import assign_all, batches_until

    consumer = KafkaConsumer(
        **client_options(settings.kafka), group_id=None, enable_auto_commit=False
    )
    try:
        parts, end = assign_all(consumer, spec.topic_name(settings.topics))
        consumer.seek_to_beginning(*parts)
        out: dict[str, float] = {}
        for batch in batches_until(consumer, parts, end):
            for records in batch.values():
                for m in records:
                    out.setdefault((m.key or b"").decode(), m.timestamp / 1000)
        return out
    finally:
        consumer.close()


# ---- phase 1: throughput ------------------------------------------------------------------------


def throughput(kind: str, n: int, tmp: Path, timeout_s: float) -> dict[str, Any]:
    full = kind == "full"
    feeds = math.ceil(n / ITEMS)
    last = n - (feeds - 1) * ITEMS
    feeds_yaml = tmp / f"tp-{kind}-{n}.yaml"
    phase = Phase(f"{kind} {n}", tmp, feeds_yaml, interval_s=3600)
    print(f"\n== throughput: {n} {kind} articles ({feeds} feeds x {ITEMS} items)", flush=True)
    try:
        phase.bootstrap()
        base = phase.start_generator(feeds, last, full)
        _feed_list(base, 0, feeds_yaml, kind, warm=True)
        phase.start_workers()
        phase.start_connector()
        # A few warm-up articles first: connector (parse workers start on first need), enrich
        # and index are past their start-up when the measured feeds appear in the list.
        warm = WARM_FEEDS * WARM_ITEMS
        deadline = time.monotonic() + timeout_s
        while not phase.counts or phase.counts[-1][1] < warm:
            phase.tick(count=True)
            phase.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up stuck; see {phase.dir}")
            time.sleep(0.25)
        phase.counts.clear()
        listed_at = time.time()
        _feed_list(base, feeds, feeds_yaml, kind, warm=True)  # the connector re-reads the list
        last_progress, last_n = time.monotonic(), -1
        next_metrics = 0.0
        target = warm + n
        while True:
            now = time.monotonic()
            scrape_now = now >= next_metrics
            if scrape_now:
                next_metrics = now + 0.5
            phase.tick(metrics=scrape_now, count=True)
            done = phase.counts[-1][1]
            if done != last_n:
                last_progress, last_n = now, done
            if done >= target:
                end_snap = phase.history[-1]
                break
            phase.check_alive()
            if now - last_progress > timeout_s:
                raise RuntimeError(
                    f"no progress for {timeout_s:.0f}s at {done - warm}/{n}; {phase.dir}"
                )
            time.sleep(0.25)
        phase.tick(metrics=True)
        agg = phase.es.search(
            index=phase.settings.elastic.alias,
            size=0,
            query={
                "range": {"fetched_at": {"gte": int(listed_at * 1000), "format": "epoch_millis"}}
            },
            aggs={
                "first": {"min": {"field": "fetched_at"}},
                "last": {"max": {"field": "indexed_at"}},
            },
        )["aggregations"]
        first_poll = agg["first"]["value"] / 1000
        t_end = _time_at(phase.counts, target)
        t10, t90 = (_time_at(phase.counts, warm + f * n) for f in (0.1, 0.9))
        result: dict[str, Any] = {
            "kind": kind,
            "articles": n,
            "feeds": feeds,
            "first_poll_after_list_change_s": round(first_poll - listed_at, 2),
            "seconds": round(t_end - first_poll, 2),
            "e2e_per_s": round(n / (t_end - first_poll), 1),
            "sustained_per_s": round(0.8 * n / max(t90 - t10, 1e-9), 1),
            "last_indexed_to_all_searchable_s": round(t_end - agg["last"]["value"] / 1000, 2),
            "stages": {
                "connector": _stage_rate(phase.samples, "produced"),
                "extract": _stage_rate(phase.samples, "extracted"),
                "enrich": _stage_rate(phase.samples, "enriched"),
                "index": _stage_rate(phase.samples, "indexed"),
            },
            # CPU from the first poll (the connector's start-up left out) to all searchable.
            "cpu_window": phase.cpu_between(phase.at(first_poll), end_snap, n),
            "resources": phase.resources(),
            "settings": phase.settings_used(),
            "load_avg": Path("/proc/loadavg").read_text().split()[:3],
        }
        print(_one_line(result), flush=True)
        return result
    except Exception as exc:  # noqa: BLE001 - one failed phase is reported, the others still run
        print(f"  FAILED: {exc}", flush=True)
        return {"kind": kind, "articles": n, "error": str(exc)[-2000:], "logs": str(phase.dir)}
    finally:
        phase.stop()
        phase.cleanup()


def _one_line(r: dict[str, Any]) -> str:
    st = r["stages"]
    return (
        f"  {r['articles']} in {r['seconds']}s: e2e {r['e2e_per_s']}/s, sustained "
        f"{r['sustained_per_s']}/s; produced {st['connector']['per_s']}/s, enriched "
        f"{st['enrich']['per_s']}/s, indexed {st['index']['per_s']}/s; machine busy "
        f"{r['cpu_window']['machine_busy_pct']}% (other {r['cpu_window']['other']} CPU s)"
    )


# ---- phases 2 and 3: continuous publishing (steady state, latency) ---------------------------


_URL_K = re.compile(r"/f(\d+)/s\d+/(\d+)$")


def continuous(
    label: str, kind: str, rate: float, duration_s: float, burst: int, tmp: Path, stall_s: float
) -> dict[str, Any]:
    """Publish ``rate`` articles/s for ``duration_s`` while the pipeline runs; per article, when
    it became searchable and what each stage took."""
    full = kind == "full"
    # Feeds are polled every second and each changes about every 3 s, so a poll finds `burst`
    # new items (the connector parses ITEMS/burst entries per new article); none falls off a
    # feed unseen unless polls fall behind by more than ITEMS/burst changes.
    feeds = max(10, math.ceil(3 * rate / burst))
    feeds_yaml = tmp / f"{label}-{kind}.yaml"
    phase = Phase(f"{label} {kind}", tmp, feeds_yaml, interval_s=1)
    print(
        f"\n== {label}: {kind} published at {rate:.1f} articles/s for {duration_s:.0f}s "
        f"({feeds} feeds x {ITEMS} items, {burst} new per change, each polled every 1 s)",
        flush=True,
    )
    try:
        phase.bootstrap()
        base = phase.start_generator(feeds, ITEMS, full)
        _feed_list(base, feeds, feeds_yaml, kind)
        phase.start_workers()
        phase.start_connector()
        warm = feeds * ITEMS
        deadline = time.monotonic() + stall_s
        while True:  # the feeds' initial items first: warms every stage up
            phase.tick(count=True)
            if phase.counts[-1][1] >= warm:
                break
            phase.check_alive()
            if time.monotonic() > deadline:
                raise RuntimeError(f"warm-up stuck at {phase.counts[-1][1]}/{warm}")
            time.sleep(0.5)
        time.sleep(2.0)
        assert phase.generator is not None
        hist0 = _histogram(scrape(phase.children["index"].metrics_port))
        started = time.time()
        watcher = Watcher(phase.es, phase.settings.elastic.alias, started)
        snap0 = phase.now()
        phase.generator.publish(rate, duration_s, burst)
        published: tuple[int, list[tuple[int, int, float]]] | None = None
        next_metrics = 0.0
        last_new, last_seen = time.time(), 0
        while True:
            watcher.poll()
            now = time.time()
            if len(watcher.seen) != last_seen:
                last_new, last_seen = now, len(watcher.seen)
            if time.monotonic() >= next_metrics:
                next_metrics = time.monotonic() + 1.0
                phase.tick(metrics=True)
            if published is None:
                published = phase.generator.result()
            if published is not None and len(watcher.seen) >= published[0]:
                break
            phase.check_alive()
            if now - last_new > stall_s or (published is not None and now - last_new > 15):
                break  # nothing new for a while: what is missing is reported below
            time.sleep(max(0.0, 0.2 - (time.time() - (watcher.prev or 0.0))))
        snap1 = phase.now()
        hist1 = _histogram(scrape(phase.children["index"].metrics_port))
        phase.stop()
        if published is None:
            raise RuntimeError(f"the generator did not finish publishing; {phase.dir}")
        count, log = published
        result = _latencies(phase, watcher, log, started, warm)
        seen = sorted(watcher.seen.values())
        steady_from, publish_end = started + 0.3 * duration_s, started + duration_s
        in_steady = sum(1 for t in seen if steady_from < t <= publish_end)
        result.update(
            {
                "phase": label,
                "kind": kind,
                "rate_target_per_s": round(rate, 1),
                "rate_published_per_s": round(count / duration_s, 1),
                "published": count,
                "searchable": len(seen),
                # Published but never polled: they slid off a feed (20 items) before the
                # connector came back to it; a loss of the publisher model, not of the pipeline.
                "missed_by_polling": count - result["produced"],
                "lost_in_pipeline": result["produced"] - len(seen),
                # Searchable/s over the last 70 % of the publishing window: the publish rate
                # when the pipeline keeps up, its capacity when a backlog builds.
                "searchable_per_s_while_publishing": round(in_steady / (0.7 * duration_s), 1),
                "behind_at_publish_end": count - sum(1 for t in seen if t <= publish_end),
                "drain_after_publish_end_s": round(max(seen[-1] - publish_end, 0.0), 2)
                if seen
                else None,
                "feeds": feeds,
                "burst": burst,
                "duration_s": duration_s,
                "histogram_end_to_end_seconds": _histogram_percentiles(hist0, hist1),
                "watch_poll_s": round(sum(watcher.gaps) / max(len(watcher.gaps), 1), 3),
                "stages": {
                    "connector": _stage_rate(phase.samples, "produced"),
                    "extract": _stage_rate(phase.samples, "extracted"),
                    "enrich": _stage_rate(phase.samples, "enriched"),
                    "index": _stage_rate(phase.samples, "indexed"),
                },
                "cpu_window": phase.cpu_between(snap0, snap1, len(seen)),
                "resources": phase.resources(),
                "settings": phase.settings_used(),
                "load_avg": Path("/proc/loadavg").read_text().split()[:3],
            }
        )
        seg = result["segments"]["fetched_to_searchable"]
        print(
            f"  {count} published, {result['produced']} produced, {len(seen)} searchable "
            f"({result['searchable_per_s_while_publishing']}/s while publishing, behind at the "
            f"end {result['behind_at_publish_end']}); fetched -> searchable p50 "
            f"{seg.get('p50')}s p95 {seg.get('p95')}s p99 {seg.get('p99')}s; machine busy "
            f"{result['cpu_window']['machine_busy_pct']}% (other {result['cpu_window']['other']}"
            " CPU s)",
            flush=True,
        )
        return result
    except Exception as exc:  # noqa: BLE001 - reported, the other phases still run
        print(f"  FAILED: {exc}", flush=True)
        return {"phase": label, "kind": kind, "error": str(exc)[-2000:], "logs": str(phase.dir)}
    finally:
        phase.stop()
        phase.cleanup()


def _latencies(
    phase: Phase, watcher: Watcher, log: list[tuple[int, int, float]], started: float, warm: int
) -> dict[str, Any]:
    docs = _scan(
        phase.es, phase.settings.elastic.alias, ["url", "fetched_at", "first_seen_at", "indexed_at"]
    )
    raw_ts = _record_times(phase.settings, topics.RAW)
    extracted_ts = _record_times(phase.settings, topics.EXTRACTED)
    enriched_ts = _record_times(phase.settings, topics.ENRICHED)
    puts: dict[int, list[tuple[int, float]]] = {}
    for feed_no, gen, t in log:
        puts.setdefault(feed_no, []).append((gen, t))
    seg: dict[str, list[float]] = {
        k: []
        for k in (
            "published_to_fetched",
            "fetched_to_raw",
            "raw_to_extracted",
            "extracted_to_enriched",
            "raw_to_enriched",
            "enriched_to_indexed_at",
            "indexed_at_to_searchable",
            "fetched_to_indexed_at",
            "first_seen_to_indexed_at",
            "fetched_to_searchable",
            "raw_to_searchable",
            "published_to_searchable",
        )
    }
    missing = 0
    for d in docs:
        fetched = _ts(d["fetched_at"])
        if fetched < started:
            continue  # the warm-up articles
        seen = watcher.seen.get(d["_id"])
        raw, ext = raw_ts.get(d["_id"]), extracted_ts.get(d["_id"])
        enr = enriched_ts.get(d["_id"])
        if seen is None or raw is None or ext is None or enr is None:
            missing += 1
            continue
        indexed = _ts(d["indexed_at"])
        seg["fetched_to_raw"].append(raw - fetched)
        seg["raw_to_extracted"].append(ext - raw)
        seg["extracted_to_enriched"].append(enr - ext)
        seg["raw_to_enriched"].append(enr - raw)
        seg["enriched_to_indexed_at"].append(indexed - enr)
        seg["indexed_at_to_searchable"].append(seen - indexed)
        seg["fetched_to_indexed_at"].append(indexed - fetched)
        seg["first_seen_to_indexed_at"].append(indexed - _ts(d["first_seen_at"]))
        seg["fetched_to_searchable"].append(seen - fetched)
        seg["raw_to_searchable"].append(seen - raw)
        match = _URL_K.search(d["url"])
        if match:
            feed_no, k = int(match.group(1)), int(match.group(2))
            # Item k is on the feed from generation k - ITEMS + 1 on.
            when = next((t for g, t in puts.get(feed_no, []) if g >= k - ITEMS + 1), None)
            if when is not None:
                seg["published_to_fetched"].append(fetched - when)
                seg["published_to_searchable"].append(seen - when)
    return {
        "measured": len(seg["fetched_to_searchable"]),
        "unmatched": missing,
        "produced": len(raw_ts) - warm,  # new articles the connector produced
        "segments": {k: _percentiles(v) for k, v in seg.items()},
    }


# ---- report -------------------------------------------------------------------------------------


def _ladder(max_articles: int) -> list[int]:
    sizes, n = [], 1000
    while n < max_articles:
        sizes.append(n)
        n *= 10
    return [*sizes, max_articles] if max_articles >= 1000 else [max_articles]


PROCS = ("connector", "extract", "enrich", "index", "generator", "elasticsearch", "kafka")


def _resources_line(label: str, c: dict[str, Any], res: dict[str, Any]) -> str:
    ms = c["ms_per_article"]
    cpu = "/".join(f"{ms.get(k, 0):.1f}" for k in PROCS)
    rss = "/".join(
        f"{res.get(k, {}).get('peak_rss_mb', 0)}" for k in ("connector", "enrich", "index")
    )
    bound = c["cpu_bound_per_s"]
    return (
        f"{label:<32}{cpu:>40}{ms['pipeline']:>7.1f}{bound or 0:>7.0f}"
        f"{c['machine_busy_pct']:>6.0f}%{c['other']:>7.1f}{rss:>16}"
    )


SEGMENTS = {
    "published_to_fetched": "published -> polled (fetched_at)",
    "fetched_to_raw": "fetched -> raw record (connector)",
    "raw_to_extracted": "raw -> extracted record (extract)",
    "extracted_to_enriched": "extracted -> enriched (enrich)",
    "raw_to_enriched": "raw -> enriched record",
    "enriched_to_indexed_at": "enriched -> indexed_at (index wait)",
    "indexed_at_to_searchable": "indexed_at -> searchable",
    "fetched_to_indexed_at": "fetched -> indexed_at",
    "first_seen_to_indexed_at": "first_seen_at -> indexed_at",
    "raw_to_searchable": "raw record -> searchable",
    "fetched_to_searchable": "FETCHED -> SEARCHABLE",
    "published_to_searchable": "published -> searchable",
}


def _label(r: dict[str, Any]) -> str:
    """A run's name in the tables: side (mode, refresh), round, size or phase."""
    what = str(r["articles"]) if "articles" in r else r.get("phase", "")
    return f"{r.get('side', r['kind'])} r{r.get('round', 0)} {what}"


def _print_tables(result: dict[str, Any]) -> None:
    runs = [r for r in result["throughput"] if "error" not in r]
    continuous_runs = [r for r in result["steady"] + result["latency"] if "error" not in r]
    if runs:
        print("\nthroughput, everything on the feeds at once (first poll -> all searchable)")
        print(
            f"{'run':<32}{'seconds':>8}{'e2e/s':>8}{'sust/s':>8}"
            f"{'produced/s':>11}{'extracted/s':>11}{'enriched/s':>11}{'indexed/s':>10}"
            f"{'load after':>18}"
        )
        for r in runs:
            st = r["stages"]
            print(
                f"{_label(r):<32}{r['seconds']:>8.1f}"
                f"{r['e2e_per_s']:>8.1f}{r['sustained_per_s']:>8.1f}"
                f"{st['connector']['per_s']:>11.0f}{st['extract']['per_s']:>11.1f}"
                f"{st['enrich']['per_s']:>11.1f}{st['index']['per_s']:>10.1f}"
                f"{' '.join(r['load_avg']):>18}"
            )
    for r in result["throughput"]:
        if "error" in r:
            print(f"{r['kind']} {r['articles']}: FAILED ({r['error'][:300]})")
    if continuous_runs:
        print("\ncontinuous publishing (feeds polled every second)")
        print(
            f"{'run':<32}{'published/s':>12}{'searchable/s':>13}{'behind':>8}{'drain s':>8}"
            f"{'p50 s':>7}{'p95 s':>7}{'p99 s':>7}{'unpolled/lost':>14}"
        )
        for r in continuous_runs:
            seg = r["segments"]["fetched_to_searchable"]
            print(
                f"{_label(r):<32}{r['rate_published_per_s']:>12.1f}"
                f"{r['searchable_per_s_while_publishing']:>13.1f}"
                f"{r['behind_at_publish_end']:>8}{r['drain_after_publish_end_s']:>8.1f}"
                f"{seg.get('p50', 0):>7.2f}{seg.get('p95', 0):>7.2f}{seg.get('p99', 0):>7.2f}"
                f"{str(r['missed_by_polling']) + '/' + str(r['lost_in_pipeline']):>14}"
            )
    for r in result["steady"] + result["latency"]:
        if "error" in r:
            print(f"{r['phase']} {r['kind']}: FAILED ({r['error'][:300]})")
    if runs or continuous_runs:
        print(
            "\nresources: CPU ms per article (conn/enr/idx/gen/ES/kafka), pipeline total, the "
            "rate 2 cores could carry at that cost, machine busy, CPU s of other work, peak RSS MB"
        )
        print(
            f"{'run':<32}{'ms/article':>40}{'total':>7}{'bound':>7}{'busy':>7}{'other':>7}"
            f"{'RSS c/e/i':>16}"
        )
        for r in runs:
            label = _label(r)
            print(_resources_line(label, r["cpu_window"], r["resources"]))
        for r in continuous_runs:
            label = _label(r)
            print(_resources_line(label, r["cpu_window"], r["resources"]))
    for r in continuous_runs:
        if r["phase"] != "latency":
            continue
        print(
            f"\nlatency, {_label(r)}: {r['published']} articles at "
            f"{r['rate_published_per_s']}/s, {r['measured']} measured (seconds)"
        )
        print(f"{'segment':<38}{'p50':>7}{'p95':>7}{'p99':>7}{'max':>7}")
        for key, label in SEGMENTS.items():
            p = r["segments"].get(key) or {}
            if p:
                print(
                    f"{label:<38}{p['p50']:>7.2f}{p['p95']:>7.2f}{p['p99']:>7.2f}{p['max']:>7.2f}"
                )
        h = r["histogram_end_to_end_seconds"]
        if h:
            print(
                f"{'histogram newsflow_end_to_end_seconds':<38}{h.get('p50', 0):>7.2f}"
                f"{h.get('p95', 0):>7.2f}{h.get('p99', 0):>7.2f}"
            )


TARGETS = {  # (sustained articles/s at least, p95 first seen -> searchable at most, issue)
    "summary": (390.0, 2.0, "issue 12"),
    "full": (60.0, 5.0, "issue 15"),
}
FIGURES = ("sustained_per_s", "e2e_per_s", "latency_rate_per_s", "p50_s", "p95_s")


def _figures(tp: dict[str, Any] | None, lat: dict[str, Any] | None, load0: float) -> dict[str, Any]:
    """One round of one mode as flat numbers (NaN where a phase failed or did not run)."""
    nan = float("nan")
    ok_tp = tp is not None and "error" not in tp
    ok_lat = lat is not None and "error" not in lat
    seg = lat["segments"]["fetched_to_searchable"] if ok_lat and lat else {}
    return {
        "sustained_per_s": float(tp["sustained_per_s"]) if ok_tp and tp else nan,
        "e2e_per_s": float(tp["e2e_per_s"]) if ok_tp and tp else nan,
        "latency_rate_per_s": float(lat["rate_published_per_s"]) if ok_lat and lat else nan,
        "p50_s": float(seg.get("p50", nan)),
        "p95_s": float(seg.get("p95", nan)),
        "load1_before": round(load0, 2),
        "load1_after": round(os.getloadavg()[0], 2),
    }


def _summary(rounds: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Median and min-max of every figure per mode over its rounds, and the targets."""
    out: dict[str, Any] = {}
    for kind, rows in rounds.items():
        figs: dict[str, Any] = {}
        for key in (*FIGURES, "load1_before", "load1_after"):
            values = [float(r[key]) for r in rows if not math.isnan(float(r[key]))]
            if values:
                figs[key] = spread(values)
        want_rate, want_p95, issue = TARGETS[kind.split(" ")[0]]
        checks = {}
        if "sustained_per_s" in figs:
            got = figs["sustained_per_s"]["median"]
            checks["throughput"] = {"median": got, "target_min": want_rate, "met": got >= want_rate}
        if "p95_s" in figs:
            got = figs["p95_s"]["median"]
            checks["p95"] = {"median": got, "target_max": want_p95, "met": got <= want_p95}
        out[kind] = {"figures": figs, "targets": checks, "issue": issue}
    return out


def _print_summary(summary: dict[str, Any], pacing: str) -> None:
    print("\nmedian (min-max) over the rounds; load = 1-min load average before/after a round")
    print(
        f"{'mode':<9}{'rounds':>7}{'sustained/s':>22}{'latency at/s':>20}{'p50 s':>20}"
        f"{'p95 s':>20}{'load':>14}"
    )
    for kind, entry in summary.items():
        f = entry["figures"]

        def show(key: str, digits: int = 1, f: dict[str, Any] = f) -> str:
            return fmt_spread(f[key], digits) if key in f else "-"

        n = max((int(v["n"]) for v in f.values()), default=0)
        load = (
            f"{f['load1_before']['median']:.1f}/{f['load1_after']['median']:.1f}"
            if "load1_before" in f
            else "-"
        )
        print(
            f"{kind:<9}{n:>7}{show('sustained_per_s'):>22}{show('latency_rate_per_s'):>20}"
            f"{show('p50_s', 2):>20}{show('p95_s', 2):>20}{load:>14}"
        )
    print(f"\ntargets (2 cores, the whole stack on this machine; {pacing}):")
    for kind, entry in summary.items():
        t = entry["targets"]
        if "throughput" in t:
            c = t["throughput"]
            print(
                f"  {kind}: sustained {c['median']:.1f}/s vs >= {c['target_min']:.0f}/s "
                f"({entry['issue']}): {'met' if c['met'] else 'MISSED'}"
            )
        if "p95" in t:
            c = t["p95"]
            print(
                f"  {kind}: p95 first seen -> searchable {c['median']:.2f}s at half capacity vs "
                f"<= {c['target_max']:.0f} s ({entry['issue']}): {'met' if c['met'] else 'MISSED'}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0], formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=MIN_ROUNDS, help="alternating rounds")
    parser.add_argument("--modes", default="summary,full", help="summary, full or both")
    parser.add_argument("--summary-articles", type=int, default=5000, help="throughput run size")
    parser.add_argument("--full-articles", type=int, default=2000, help="full-text run size")
    parser.add_argument("--latency-fraction", type=float, default=0.5, help="of the capacity")
    parser.add_argument("--seconds", type=float, default=30.0, help="publishing per latency run")
    parser.add_argument("--peak", type=float, help="summary capacity (/s) for the latency run")
    parser.add_argument("--peak-full", type=float, help="full-text capacity, likewise")
    parser.add_argument("--no-throughput", action="store_true", help="latency runs only")
    parser.add_argument("--no-latency", action="store_true", help="throughput runs only")
    parser.add_argument("--burst", type=int, default=5, help="new items per feed change")
    parser.add_argument("--stall-s", type=float, default=120.0, help="give up without progress")
    parser.add_argument(
        "--page-per-host", type=int, default=16, help="page fetches in flight to the page server"
    )
    parser.add_argument(
        "--page-spacing-s", type=float, default=0.0, help="least seconds between page fetches"
    )
    parser.add_argument(
        "--refresh-interval",
        help="index.refresh_interval of the private indices (e.g. 200ms); a list (1s,250ms) "
        "adds a side per interval and mode, alternated like the modes",
    )
    args = parser.parse_args()
    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    for mode in modes:
        if mode not in TARGETS:
            parser.error(f"unknown mode {mode!r} (summary, full)")
    if args.no_throughput and (
        ("summary" in modes and args.peak is None) or ("full" in modes and args.peak_full is None)
    ):
        parser.error("--no-throughput needs --peak/--peak-full for the latency rate")
    PAGES.per_host, PAGES.spacing_s = args.page_per_host, args.page_spacing_s
    refreshes: list[str | None] = [
        r.strip() for r in (args.refresh_interval or "").split(",") if r.strip()
    ] or [None]
    pacing = (
        f"full-text pages from the local page server at up to {PAGES.per_host} in flight, "
        f"{PAGES.spacing_s:g} s apart (per-feed page_per_host/page_min_spacing_s; a real "
        "deployment paces each site at 2 in flight, >= 1 s apart)"
    )
    load_before = machine_load(busy=True)
    result: dict[str, Any] = {
        "at": datetime.now(UTC).isoformat(),
        "cpus": len(os.sched_getaffinity(0)),
        "args": vars(args),
        "page_pacing": pacing,
        "refresh_interval": args.refresh_interval or "template (1s)",
        "throughput": [],
        "steady": [],
        "latency": [],
    }
    print(
        f"{result['cpus']} cores, load average {load_before['loadavg']}; modes {modes}, "
        f"{args.rounds} alternating rounds; {pacing}; refresh {result['refresh_interval']}",
        flush=True,
    )
    if load_before.get("busy_processes"):
        print("busy at the start: " + "; ".join(
            f"{p['name'][:60]} {p['cpu']:.0%}" for p in load_before["busy_processes"]
        ))  # fmt: skip
    # SIGTERM (e.g. a timeout) runs the finally blocks: children stopped, private data deleted.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

    sides = {
        (m if len(refreshes) == 1 else f"{m} refresh={r}"): (m, r) for m in modes for r in refreshes
    }
    rounds: dict[str, list[dict[str, Any]]] = {name: [] for name in sides}

    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as tmpdir:
        tmp = Path(tmpdir)

        def side(name: str, kind: str, refresh: str | None) -> Side:
            n = args.summary_articles if kind == "summary" else args.full_articles
            fixed = args.peak if kind == "summary" else args.peak_full

            def run(rnd: int) -> dict[str, Any]:
                load0 = os.getloadavg()[0]
                PAGES.refresh_interval = refresh
                tp = None
                if not args.no_throughput:
                    tp = throughput(kind, n, tmp, args.stall_s)
                    tp.update(round=rnd, side=name)
                    result["throughput"].append(tp)
                capacity = fixed
                if capacity is None and tp is not None and "error" not in tp:
                    capacity = float(tp["sustained_per_s"])
                lat = None
                if not args.no_latency and capacity:
                    rate = args.latency_fraction * capacity
                    lat = continuous(
                        "latency", kind, rate, args.seconds, args.burst, tmp, args.stall_s
                    )
                    lat.update(round=rnd, side=name)
                    result["latency"].append(lat)
                figures = _figures(tp, lat, load0)
                rounds[name].append(figures)
                return figures

            return run

        try:
            alternate({name: side(name, *how) for name, how in sides.items()}, args.rounds)
        except KeyboardInterrupt:
            print("\ninterrupted: reporting the rounds that finished", flush=True)
    result["load_avg_after"] = Path("/proc/loadavg").read_text().split()[:3]
    result["rounds"] = rounds
    _print_tables(result)
    summary = _summary(rounds)
    result["summary"] = summary
    if set(rounds) == {"full", "summary"} and all(
        len(rows) >= MIN_ROUNDS and not any(math.isnan(r["sustained_per_s"]) for r in rows)
        for rows in rounds.values()
    ):
        print()
        result["ratio"] = ratio_report(
            {m: rounds[m] for m in ("full", "summary")},
            "sustained_per_s",
            [("full", "summary", None)],
        )
    _print_summary(summary, pacing)
    path = save_result(f"pipeline-{time.strftime('%Y%m%d-%H%M%S')}.json", result, load_before)
    print(f"written {path.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
