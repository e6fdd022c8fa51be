"""The whole pipeline as real processes, for fault tests with exact counts.

feed server (this process) -> ``newsflow connect`` -> raw topic -> ``newsflow worker extract``
(the item's page, from the same server when the feed links there) -> extracted topic ->
``newsflow worker enrich`` -> enriched topic -> ``newsflow worker index`` -> Elasticsearch.
Each process runs in its own process group with its log in the test's directory, so one of them
can be killed with SIGKILL (what an OOM kill or a lost node does) and started again.

Everything a run touches is its own: topic namespace ``test.<unique>.``, index alias, index
prefix, dead-letter index, faust app id (so consumer groups ``test-<unique>-enrich`` and
``test-<unique>-index``), web ports and data directories of the workers, connector state and
feed list. The expected article ids come from the feed bodies the server really served, parsed
with the connector's own pure parser, so every check is exact: the index must hold exactly
those ids (none missing, none twice), each poison record must sit in its dead-letter topic, and
every consumer group must have reached the end of its input topics.

``PrivateStack`` is a second Kafka + Elasticsearch (own home and free ports) for tests that
kill a broker or Elasticsearch; the shared stack on 9092/9200 is never touched by them.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition

from connectors.feeds import FeedList, FeedSpec, save_feed_list
from connectors.rss.parse import parse_feed
from streams import topics
from streams.commands.bootstrap import ensure_elastic, ensure_topics
from streams.deadletter import parse_headers
from streams.infra import dist, elastic, kafka, plugin
from streams.infra.procs import port_in_use, tail
from streams.kafka_clients import client_options
from streams.settings import InfraSettings, Settings
from streams.sinks.elastic import make_client
from streams.tooling.samplefeeds import synthetic_feed, synthetic_language
from streams.topic_range import assign_all, batches_until
from streams.worker import group_id
from tests.integration.feed_server import FeedServer
from tests.integration.stage_helpers import ROOT, free_port

# Which topics each stage's consumer group reads (the index worker also runs the agent that
# copies dead letters into Elasticsearch, in the same group).
GROUP_INPUTS: dict[str, tuple[topics.TopicSpec, ...]] = {
    "extract": (topics.RAW,),
    "enrich": (topics.EXTRACTED,),
    "index": (topics.ENRICHED, *topics.DEAD_LETTER_TOPICS),
}


_NAMESPACE = "NEWSFLOW_TOPICS__NAMESPACE"
# Expected dead letters: stage -> the keys of the records in its dead-letter topic.
Letters = Mapping[str, AbstractSet[bytes | None]]


def settings_from(env: dict[str, str]) -> Settings:
    """The Settings a child process started with ``env`` builds (without touching os.environ):
    the NEWSFLOW_* variables passed as init values, which win over the environment."""
    nested: dict[str, dict[str, str]] = {}
    for key, value in env.items():
        if key.startswith("NEWSFLOW_") and "__" in key:
            section, _, name = key[len("NEWSFLOW_") :].partition("__")
            nested.setdefault(section.lower(), {})[name.lower()] = value
    return Settings(**nested)  # type: ignore[arg-type]


def wait_until(
    what: str,
    predicate: Callable[[], bool],
    timeout_s: float,
    alive: Callable[[], None] | None = None,
    interval_s: float = 0.5,
) -> float:
    """Poll ``predicate`` until true; AssertionError after ``timeout_s``. Returns seconds."""
    started = time.monotonic()
    while True:
        if alive is not None:
            alive()
        if predicate():
            return time.monotonic() - started
        if time.monotonic() - started > timeout_s:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(interval_s)


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    """One newsflow process (its own process group); the log accumulates over restarts."""

    name: str
    args: list[str]
    env: dict[str, str]
    log: Path
    popen: subprocess.Popen[bytes] | None = None
    starts: int = 0
    kills: int = 0
    wanted: bool = False  # should be running (False after a deliberate kill or stop)

    def start(self) -> None:
        assert not self.alive(), f"{self.name} is already running"
        self.starts += 1
        self.wanted = True
        with open(self.log, "ab") as out:
            out.write(f"\n===== start #{self.starts} at {datetime.now(UTC)} =====\n".encode())
            out.flush()
            self.popen = subprocess.Popen(
                [sys.executable, "-m", "streams.commands.cli", *self.args],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a kill takes its children too (the parse pool)
            )

    def alive(self) -> bool:
        return self.popen is not None and self.popen.poll() is None

    def kill9(self) -> None:
        """SIGKILL the process and its group, no chance to flush or commit anything."""
        assert self.popen is not None and self.alive(), f"{self.name} is not running"
        self.kills += 1
        self.wanted = False
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        self.popen.wait(30)

    def stop(self, timeout_s: float = 20.0) -> int | None:
        self.wanted = False
        if self.popen is None:
            return None
        if self.alive():
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout_s)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(self.popen.pid, signal.SIGKILL)
                self.popen.wait(30)
        # Whatever is left of the group (parse pool children) goes too.
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        return self.popen.returncode

    def tail(self, lines: int = 40) -> str:
        try:
            text = self.log.read_text(errors="replace")
        except OSError:
            return "(no log)"
        return "\n".join(text.splitlines()[-lines:])


# --------------------------------------------------------------------------- results


@dataclass
class DeadLetterRecord:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes
    headers: dict[str, str]  # newsflow-* headers, prefix removed


@dataclass
class IndexReport:
    by_id: Counter[str]  # _id -> documents behind the alias (several = duplicates)
    by_field: Counter[str]  # article_id field -> documents
    mismatched: list[tuple[str, str]]  # (_id, article_id) where they differ
    indices: Counter[str]  # concrete index -> documents
    rewritten: int  # documents with _version > 1 (written again after a redelivery)

    @property
    def duplicated(self) -> list[str]:
        twice = {k for k, n in self.by_id.items() if n > 1}
        twice |= {k for k, n in self.by_field.items() if n > 1}
        return sorted(twice)


@dataclass
class Verdict:
    """What the pipeline holds compared with what it should hold."""

    missing: list[str]
    unexpected: list[str]
    duplicated: list[str]
    mismatched: list[tuple[str, str]]
    dead_letters: dict[str, list[bytes | None]]  # stage -> keys in its DLQ
    dead_letters_ok: bool
    lags: dict[str, dict[str, int]]  # stage -> topic -> lag
    index: IndexReport
    dead: list[str] = field(default_factory=list)  # processes that are not running
    # Topics of this run that no longer exist. On a shared broker another pytest session's
    # `_drop_test_topics` (tests/conftest.py) deletes every test.* topic created while it ran.
    gone: list[str] = field(default_factory=list)

    @property
    def lag_total(self) -> int:
        return sum(sum(t.values()) for t in self.lags.values())

    @property
    def ok(self) -> bool:
        return (
            not self.missing
            and not self.unexpected
            and not self.duplicated
            and not self.mismatched
            and self.dead_letters_ok
            and self.lag_total == 0
            and not self.dead
            and not self.gone
        )

    def summary(self) -> str:
        return (
            f"indexed {len(self.index.by_id)} ids ({sum(self.index.by_id.values())} docs in "
            f"{dict(self.index.indices)}), missing {len(self.missing)} {self.missing[:5]}, "
            f"unexpected {len(self.unexpected)} {self.unexpected[:5]}, duplicated "
            f"{len(self.duplicated)} {self.duplicated[:5]}, _id/article_id mismatches "
            f"{self.mismatched[:3]}, dead letters "
            f"{ {k: len(v) for k, v in self.dead_letters.items()} } "
            f"(as expected: {self.dead_letters_ok}), lag {self.lags}, "
            f"rewritten docs {self.index.rewritten}, not running {self.dead}"
            + (f", TOPICS DELETED UNDER US: {self.gone}" if self.gone else "")
        )


# --------------------------------------------------------------------------- the pipeline


class Pipeline:
    """Feed server, connector, extract, enrich and index workers, isolated; see the module doc."""

    def __init__(
        self,
        workdir: Path,
        unique: str,
        *,
        bootstrap_servers: str,
        elastic_url: str,
        feeds: int = 20,
        items: int = 10,
        seed: int = 1,
        full_text: bool = False,
        env: dict[str, str] | None = None,
    ) -> None:
        self.dir = workdir
        self.dir.mkdir(parents=True, exist_ok=True)
        self.unique = unique
        self.feeds, self.items, self.seed, self.full_text = feeds, items, seed, full_text
        self.generation = -1
        # The developer's own NEWSFLOW_* settings (credentials, ...) carry through; what
        # isolates this run is set over them.
        self.env: dict[str, str] = {
            **os.environ,
            "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS": bootstrap_servers,
            "NEWSFLOW_KAFKA__CLIENT_ID": f"test-{unique}",
            "NEWSFLOW_ELASTIC__URL": elastic_url,
            "NEWSFLOW_ELASTIC__ALIAS": f"test-articles-{unique}",
            "NEWSFLOW_ELASTIC__INDEX_PREFIX": f"test-articles-v1-{unique}",
            "NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX": f"test-dead-letters-{unique}",
            _NAMESPACE: f"test.{unique}.",
            "NEWSFLOW_TOPICS__PARTITIONS": "3",
            "NEWSFLOW_FAUST__APP_ID": f"test-{unique}",
            "NEWSFLOW_CONNECTOR__FEEDS_FILE": str(self.dir / "feeds.yaml"),
            "NEWSFLOW_CONNECTOR__STATE_PATH": str(self.dir / "feed-state.sqlite"),
            "NEWSFLOW_CONNECTOR__MIN_INTERVAL_S": "1",
            "NEWSFLOW_CONNECTOR__MAX_INTERVAL_S": "2",
            "NEWSFLOW_CONNECTOR__METRICS_PORT": "0",
            "NEWSFLOW_CONNECTOR__COMMIT_INTERVAL_S": "0.2",
            "NEWSFLOW_CONNECTOR__PARSE_WORKERS": "1",
            # Back to work within seconds once Elasticsearch is back (default cap: 30 s).
            "NEWSFLOW_RETRY__INITIAL_S": "0.2",
            "NEWSFLOW_RETRY__MAX_S": "2",
            "NEWSFLOW_OPS__LAG_INTERVAL_S": "2",
            **(env or {}),
        }
        self.settings = settings_from(self.env)
        self.server = FeedServer()
        self.served: dict[int, list[bytes]] = {i: [] for i in range(feeds)}
        self._marks: dict[str, int] = {}
        self.extra_feeds: list[FeedSpec] = []
        self.web_ports: dict[str, int] = {}
        self.procs: dict[str, Proc] = {}
        for stage in ("extract", "enrich", "index"):
            port = free_port()
            self.web_ports[stage] = port
            worker_env = {
                **self.env,
                # faust's own variable (it reads os.environ): a SIGKILLed worker's partitions
                # go to its successor after 10 s instead of faust's default 60 s.
                "BROKER_SESSION_TIMEOUT": "10",
                "NEWSFLOW_FAUST__WEB_PORT": str(port),
                "NEWSFLOW_FAUST__DATADIR": str(self.dir / f"faust-{stage}"),
            }
            self.procs[stage] = Proc(
                stage, ["worker", stage, "-l", "info"], worker_env, self.dir / f"{stage}.log"
            )
        self.procs["connector"] = Proc(
            "connector",
            ["connect", "--feeds", str(self.dir / "feeds.yaml")],
            self.env,
            self.dir / "connector.log",
        )

    # ------------------------------------------------------------------ lifecycle

    def path(self, feed_no: int) -> str:
        return f"/feeds/{feed_no}.xml"

    def feed_id(self, feed_no: int) -> str:
        return f"f{feed_no:02d}"

    def serve(self) -> FeedServer:
        """The feed server, started (its port is known from here on)."""
        if not self.server.running:
            self.server.start()
        return self.server

    def start(self, *, extra_feeds: list[FeedSpec] | None = None) -> None:
        """Serve generation 0, bootstrap, write the feed list, start the three processes."""
        self.serve()
        self.publish(0)
        self.bootstrap()
        self.extra_feeds = list(extra_feeds or [])
        flist = FeedList(
            allow_private_addresses=True,
            feeds=(
                *(
                    FeedSpec(
                        id=self.feed_id(i),
                        url=self.server.url(self.path(i)),
                        language=synthetic_language(i, self.seed),
                    )
                    for i in range(self.feeds)
                ),
                *self.extra_feeds,
            ),
        )
        save_feed_list(self.dir / "feeds.yaml", flist)
        for name in ("extract", "enrich", "index", "connector"):
            self.procs[name].start()

    def bootstrap(self) -> None:
        ensure_topics(self.settings, lambda _m: None)
        ensure_elastic(self.settings, lambda _m: None)

    def close(self) -> None:
        for name in ("connector", "extract", "enrich", "index"):  # upstream first
            self.procs[name].stop()
        self.server.stop()
        with contextlib.suppress(Exception):  # the stack may be gone (private stack torn down)
            es = make_client(self.settings.elastic.model_copy(update={"request_timeout_s": 10}))
            prefix = self.settings.elastic.index_prefix
            dead = self.settings.elastic.dead_letter_index
            es.options(ignore_status=404).indices.delete(
                index=f"{prefix}-*,{prefix}_r*,{dead}", ignore_unavailable=True
            )
            es.options(ignore_status=404).indices.delete_index_template(name=prefix)
            es.options(ignore_status=404).indices.delete_index_template(name=dead)
            es.close()
        with contextlib.suppress(Exception):  # our topics and consumer groups, nobody else's
            admin = KafkaAdminClient(
                **client_options(self.settings.kafka), request_timeout_ms=15_000
            )
            try:
                mine = [t for t in admin.list_topics() if t.startswith(self.env[_NAMESPACE])]
                if mine:
                    admin.delete_topics(mine)
                admin.delete_groups([group_id(self.settings, stage) for stage in GROUP_INPUTS])
            finally:
                admin.close()

    def alive(self) -> None:
        """Raise when a process died that should be running."""
        for proc in self.procs.values():
            if proc.wanted and not proc.alive():
                code = proc.popen.returncode if proc.popen else None
                raise AssertionError(f"{proc.name} exited (code {code}):\n{proc.tail()}")

    def kill9(self, name: str) -> None:
        self.procs[name].kill9()

    def restart(self, name: str) -> None:
        self.procs[name].start()

    def logs(self, lines: int = 30) -> str:
        return "\n".join(
            f"----- {name} ({proc.log})\n{proc.tail(lines)}" for name, proc in self.procs.items()
        )

    # ------------------------------------------------------------------ feeds

    def publish(self, generation: int) -> None:
        """Serve every feed as it is after ``generation`` more items (``generation`` new on top)."""
        self.generation = generation
        for i in range(self.feeds):
            body = synthetic_feed(
                i, self.items, full_text=self.full_text, seed=self.seed, generation=generation
            )
            self.served[i].append(body)
            self.server.set_feed(self.path(i), body)
        # Read after replacing the routes: any request counted later got the new body.
        self._marks = {self.path(i): self.server.hits[self.path(i)] for i in range(self.feeds)}

    def wait_fetched(self, timeout_s: float = 60.0) -> float:
        """Until the connector requested every feed since the last ``publish`` (got its body)."""
        return wait_until(
            f"the connector to fetch generation {self.generation} of every feed",
            lambda: all(self.server.hits[p] > n for p, n in self._marks.items()),
            timeout_s,
            self.alive,
        )

    def expected_ids(self) -> set[str]:
        """Article ids of every item of every body served, by the connector's own parser."""
        now = datetime.now(UTC)
        ids: set[str] = set()
        for i, bodies in self.served.items():
            url = self.server.url(self.path(i))
            for body in bodies:
                parsed = parse_feed(body, base_url=url, now=now)
                assert parsed.error is None, parsed.warnings
                ids.update(item.article_id for item in parsed.items)
        return ids

    # ------------------------------------------------------------------ Kafka

    def topic(self, spec: topics.TopicSpec) -> str:
        return spec.topic_name(self.settings.topics)

    def _consumer(self) -> KafkaConsumer:
        return KafkaConsumer(
            **client_options(self.settings.kafka),
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=15_000,
        )

    def read_topic(self, spec: topics.TopicSpec) -> list[Any]:
        """Every record of the topic, from the beginning up to its end offsets now."""
        consumer = self._consumer()
        try:
            parts, end = assign_all(consumer, self.topic(spec))
            consumer.seek_to_beginning(*parts)
            return [m for b in batches_until(consumer, parts, end) for ms in b.values() for m in ms]
        finally:
            consumer.close()

    def end_offsets(self, spec: topics.TopicSpec) -> int:
        consumer = self._consumer()
        try:
            _, end = assign_all(consumer, self.topic(spec))
            return sum(end.values())
        finally:
            consumer.close()

    def missing_topics(self) -> list[str]:
        consumer = self._consumer()
        try:
            existing = consumer.topics()
        finally:
            consumer.close()
        return [self.topic(spec) for spec in topics.ALL if self.topic(spec) not in existing]

    def dead_letters(self, stage: str) -> list[DeadLetterRecord]:
        spec = topics.STAGES[stage]["dead_letter"]
        return [
            DeadLetterRecord(
                m.topic, m.partition, m.offset, m.key, m.value, parse_headers(list(m.headers))
            )
            for m in self.read_topic(spec)
        ]

    def produce(self, spec: topics.TopicSpec, key: bytes | None, value: bytes) -> tuple[int, int]:
        """One record straight into a topic; returns (partition, offset) once acknowledged."""
        producer = KafkaProducer(**client_options(self.settings.kafka), acks="all")
        try:
            meta = producer.send(self.topic(spec), key=key, value=value).get(30)
        finally:
            producer.close()
        return meta.partition, meta.offset

    def lags(self) -> dict[str, dict[str, int]]:
        """Per stage and input topic: end offsets minus the group's committed offsets."""
        admin = KafkaAdminClient(**client_options(self.settings.kafka), request_timeout_ms=15_000)
        consumer = self._consumer()
        try:
            out: dict[str, dict[str, int]] = {}
            for stage, specs in GROUP_INPUTS.items():
                group = group_id(self.settings, stage)
                parts = [
                    TopicPartition(self.topic(spec), p)
                    for spec in specs
                    for p in consumer.partitions_for_topic(self.topic(spec)) or []
                ]
                committed = admin.list_group_offsets({group: parts}).get(group, {})
                ends = consumer.end_offsets(parts)
                per_topic: Counter[str] = Counter()
                for tp in parts:
                    meta = committed.get(tp)
                    done = meta.offset if meta is not None and meta.offset >= 0 else 0
                    per_topic[tp.topic.removeprefix(self.settings.topics.namespace)] += max(
                        0, ends[tp] - done
                    )
                out[stage] = dict(per_topic)
            return out
        finally:
            consumer.close()
            admin.close()

    # ------------------------------------------------------------------ Elasticsearch

    def index_report(self) -> IndexReport:
        """Every document behind the alias (all monthly indices), scrolled in full."""
        from elasticsearch.helpers import scan

        es = make_client(self.settings.elastic)
        alias = self.settings.elastic.alias
        try:
            es.indices.refresh(index=alias)
            by_id: Counter[str] = Counter()
            by_field: Counter[str] = Counter()
            indices: Counter[str] = Counter()
            mismatched: list[tuple[str, str]] = []
            rewritten = 0
            for hit in scan(
                es,
                index=alias,
                query={"query": {"match_all": {}}, "_source": ["article_id"], "version": True},
                size=1000,
            ):
                field_id = hit["_source"].get("article_id", "")
                by_id[hit["_id"]] += 1
                by_field[field_id] += 1
                indices[hit["_index"]] += 1
                rewritten += hit.get("_version", 1) > 1
                if field_id != hit["_id"]:
                    mismatched.append((hit["_id"], field_id))
            return IndexReport(by_id, by_field, mismatched, indices, rewritten)
        finally:
            es.close()

    def dead_letter_docs(self) -> list[dict[str, Any]]:
        """The documents the index worker wrote to the operators' dead-letter index."""
        es = make_client(self.settings.elastic)
        index = self.settings.elastic.dead_letter_index
        try:
            es.indices.refresh(index=index)
            resp = es.search(index=index, size=100, query={"match_all": {}})
            return [hit["_source"] for hit in resp["hits"]["hits"]]
        finally:
            es.close()

    def index_count(self) -> int:
        es = make_client(self.settings.elastic)
        try:
            return int(
                es.options(ignore_status=404).count(index=self.settings.elastic.alias)["count"] or 0
            )
        except Exception:
            return 0
        finally:
            es.close()

    # ------------------------------------------------------------------ checks

    def verdict(self, expected: set[str], dead_letters: Letters) -> Verdict:
        index = self.index_report()
        stages = ("extract", "enrich", "index")
        letters = {stage: [d.key for d in self.dead_letters(stage)] for stage in stages}
        letters_ok = all(
            Counter(letters[stage]) == Counter(dead_letters.get(stage, set())) for stage in letters
        )
        found = set(index.by_id)
        return Verdict(
            missing=sorted(expected - found),
            unexpected=sorted(found - expected),
            duplicated=index.duplicated,
            mismatched=index.mismatched,
            dead_letters=letters,
            dead_letters_ok=letters_ok,
            lags=self.lags(),
            index=index,
            dead=[p.name for p in self.procs.values() if p.wanted and not p.alive()],
            gone=self.missing_topics(),
        )

    def wait_settled(
        self,
        expected: set[str],
        dead_letters: Letters | None = None,
        timeout_s: float = 120.0,
    ) -> Verdict:
        """Until the index holds exactly ``expected``, the DLQs exactly ``dead_letters`` (keys)
        and no group has lag; then confirm once more a few seconds later (late duplicates or
        strays would show). Returns the last verdict (check ``.ok``)."""
        letters = dead_letters or {}
        deadline = time.monotonic() + timeout_s
        verdict: Verdict | None = None
        while time.monotonic() < deadline:
            try:
                verdict = self.verdict(expected, letters)
            except Exception as exc:  # a service still recovering: try again
                print(f"verdict not available yet: {type(exc).__name__}: {exc}")
                time.sleep(1.0)
                continue
            if verdict.dead or verdict.gone:
                break
            if verdict.ok:
                time.sleep(3.0)  # faust commits every ~3 s; nothing may move after "done"
                verdict = self.verdict(expected, letters)
                if verdict.ok:
                    return verdict
            time.sleep(1.0)
        assert verdict is not None, "no verdict could be taken (services unreachable)"
        return verdict

    def ready(self, stage: str) -> tuple[int, dict[str, Any]]:
        """A worker's /health/ready: (status, report)."""
        url = f"http://127.0.0.1:{self.web_ports[stage]}/health/ready"
        try:
            with urllib.request.urlopen(url, timeout=5) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")
        except OSError as exc:  # not answering at all
            return 0, {"problems": {"unreachable": str(exc)}}

    def feed_rows(self) -> dict[str, dict[str, Any]]:
        """`newsflow feeds list --json` against this run's feed list and state."""
        res = subprocess.run(
            [sys.executable, "-m", "streams.commands.cli", "feeds", "list", "--json"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert res.returncode == 0, res.stderr[-2000:]
        rows = [json.loads(line) for line in res.stdout.splitlines() if line.startswith("{")]
        return {row["id"]: row for row in rows}


# --------------------------------------------------------------------------- a private stack


class PrivateStack:
    """Kafka + Elasticsearch of our own (``newsflow infra up`` with its own home and free ports).

    The distributions are seeded from the shared stack's home (verified copies, no download) when
    it has complete ones; otherwise `infra up` fetches them from Maven's local cache (~/.m2) as
    tests/integration/test_infra_lifecycle.py does. A service is killed by its recorded process
    group, exactly the processes this stack started.
    """

    def __init__(self, shared_home: Path, logdir: Path) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="newsflow-e2e-stack-"))
        self.home.chmod(0o755)  # Elasticsearch's system user must be able to enter it
        self.shared_home = shared_home
        ports = {
            "KAFKA_PORT": free_port(),
            "KAFKA_CONTROLLER_PORT": free_port(),
            "ES_PORT": free_port(),
            "ES_TRANSPORT_PORT": free_port(),
        }
        assert len(set(ports.values())) == 4
        self.env = {
            **os.environ,
            "NEWSFLOW_INFRA__HOME": str(self.home),
            "NEWSFLOW_INFRA__ES_HEAP": "512m",
            "NEWSFLOW_INFRA__KAFKA_HEAP": "256m",
            **{f"NEWSFLOW_INFRA__{k}": str(v) for k, v in ports.items()},
        }
        self.infra = settings_from(self.env).infra
        self.booting: subprocess.Popen[str] | None = None
        self.seeded = False  # seeding was attempted
        self.copied = False  # ... and found complete distributions to copy
        self.start_error: Exception | None = None
        self.logdir = logdir  # outlives the home: `infra up` output, service logs at the end
        self.logdir.mkdir(parents=True, exist_ok=True)
        self.log = logdir / "infra-up.log"
        self._log_file: Any = None

    @property
    def bootstrap_servers(self) -> str:
        return f"{self.infra.host}:{self.infra.kafka_port}"

    @property
    def elastic_url(self) -> str:
        return elastic.base_url(self.infra)

    @staticmethod
    def can_seed(shared: InfraSettings) -> bool:
        """Whether the shared stack's home holds complete distributions to copy."""
        return dist.is_complete(dist.kafka_home(shared)) and dist.is_complete(dist.es_home(shared))

    def seed(self) -> None:
        """Copy complete, verified distributions and the built plugin from the shared home."""
        shared = self.infra.model_copy(update={"home": self.shared_home})
        pairs = [
            (dist.kafka_home(shared), dist.kafka_home(self.infra)),
            (dist.es_home(shared), dist.es_home(self.infra)),
        ]
        self.seeded = True  # once: a later `up` finds them in place
        if not all(dist.is_complete(src) for src, _ in pairs):
            return
        for src, dst in pairs:
            # The shared copy's plugins/ is not part of the manifest and is reinstalled here.
            shutil.copytree(
                src,
                dst,
                symlinks=True,
                ignore=lambda d, names, src=src: names if Path(d) == src / "plugins" else [],
            )
        for zipped in plugin.plugins_dir(shared).glob(f"{plugin.PLUGIN_NAME}-*.zip"):
            target = plugin.plugins_dir(self.infra)
            target.mkdir(parents=True, exist_ok=True)
            shutil.copy2(zipped, target / zipped.name)
        self.copied = True

    def up_async(self) -> None:
        """Start `infra up` in the background (``wait_up`` collects it)."""
        if self.booting is None:
            if not self.seeded:
                self.seed()
            self._log_file = open(self.log, "a")  # noqa: SIM115 - closed in wait_up
            self._log_file.write(f"===== infra up at {datetime.now(UTC)}\n")
            self._log_file.flush()
            self.booting = subprocess.Popen(
                [sys.executable, "-m", "streams.commands.cli", "infra", "up"],
                cwd=ROOT,
                env=self.env,
                stdout=self._log_file,
                stderr=subprocess.STDOUT,
                text=True,
            )

    def wait_up(self, timeout_s: float = 400.0) -> float:
        assert self.booting is not None
        started = time.monotonic()
        try:
            code = self.booting.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.booting.kill()
            code = self.booting.wait()
        finally:
            self.booting = None
            self._log_file.close()
        assert code == 0, f"infra up failed (exit {code}):\n" + self.log.read_text()[-4000:]
        return time.monotonic() - started

    def up(self) -> float:
        """`infra up` (again): starts whatever is not running and waits until it is ready."""
        self.up_async()
        return self.wait_up()

    def kill9(self, service: str) -> None:
        """SIGKILL the service's whole process group (what a crashed node looks like)."""
        module = kafka if service == "kafka" else elastic
        tracked = module.pidfile(self.infra).read()
        assert tracked is not None and tracked.alive(), f"{service} is not running"
        os.killpg(tracked.pid, signal.SIGKILL)
        port = self.infra.kafka_port if service == "kafka" else self.infra.es_port
        wait_until(
            f"{service} to be gone",
            lambda: not tracked.alive() and not _port_open(self.infra, port),
            30,
            interval_s=0.2,
        )

    def down(self) -> None:
        if self.booting is not None:
            with contextlib.suppress(Exception):
                self.wait_up(60)
        subprocess.run(
            [sys.executable, "-m", "streams.commands.cli", "infra", "down"],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            timeout=180,
            check=False,
        )
        for module in (kafka, elastic):
            with contextlib.suppress(OSError):
                shutil.copy2(module.log_path(self.infra), self.logdir)
        shutil.rmtree(self.home, ignore_errors=True)

    def service_log(self, service: str, lines: int = 30) -> str:
        module = kafka if service == "kafka" else elastic
        return tail(module.log_path(self.infra), lines)


def _port_open(infra: InfraSettings, port: int) -> bool:
    return port_in_use(infra.host, port)


@contextlib.contextmanager
def pipeline(workdir: Path, unique: str, **kwargs: Any) -> Iterator[Pipeline]:
    pipe = Pipeline(workdir, unique, **kwargs)
    try:
        yield pipe
    finally:
        pipe.close()
