"""Operations side of every process: /metrics, /health/live, /health/ready, lag sampling.

Each process (connector, enrich worker, index worker) owns one ``Health``: the stage marks
progress after every finished batch (or saved poll), a ``LagSampler`` thread measures how far
the stage's consumer group is behind the end of its input topic, and dependency checks (Kafka,
Elasticsearch) are recorded as they succeed or fail. Ready means: dependencies reachable and
not stalled — a stage is stalled when it has input waiting (lag > 0) but finished nothing for
``ops.stall_after_s``. Live means the process answers at all.

When a dependency fails, the report says which credential, certificate or broker is at fault
(``streams.diagnose``): a failed lag sample is followed by a probe of each bootstrap broker
(``probe_broker``), so "unable to bootstrap" becomes "broker 127.0.0.1:19102 unreachable (2 of 3
brokers up)" or "SASL authentication failed for user 'newsflow' (...)". The lag sampler also
records the cluster as Kafka sees it: the brokers in the metadata (a broker seen before and gone
is a warning, not a failure: RF 3 / min.insync.replicas 2 keep working) and the under-replicated
and offline partitions of the newsflow topics (gauges, alerts in deploy/monitoring/alerts.yml).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from streams import diagnose, topics
from streams.diagnose import Problem
from streams.kafka_clients import client_options
from streams.metrics import (
    AUTH_FAILURES,
    CONSUMER_LAG,
    KAFKA_BROKERS,
    OFFLINE_PARTITIONS,
    READY,
    STAGE_PROGRESS,
    UNDER_REPLICATED,
)
from streams.settings import KafkaSettings, Settings

log = logging.getLogger("newsflow.ops")


class Health:
    def __init__(self, process: str, stall_after_s: float, clock: Callable[[], float] = time.time):
        self.process = process
        self.stall_after_s = stall_after_s
        self.clock = clock
        self.started_at = clock()
        self.last_progress_at: float | None = None
        self.lag: int | None = None  # None until the first successful sample
        self.problems: dict[str, str] = {}  # dependency -> last error, while failing
        # Degraded but working (a broker of three gone): shown, logged, not a failure.
        self.warnings: dict[str, str] = {}
        self.kafka: dict[str, Any] = {}  # the cluster as the lag sampler last saw it
        self._lock = threading.Lock()

    def progress(self) -> None:
        self.last_progress_at = self.clock()
        STAGE_PROGRESS.labels(self.process).set(self.last_progress_at)

    def dependency(self, name: str, error: str | Problem | None) -> None:
        """Record the outcome of talking to ``name`` (kafka, elasticsearch).

        ``error`` is best a ``streams.diagnose.Problem`` (it names the credential or broker,
        and an authentication/authorization failure is counted in
        ``newsflow_auth_failures_total``); a plain string is shown as it is. A new or changed
        problem is logged once, and so is the recovery.
        """
        if isinstance(error, Problem) and error.auth is not None:
            AUTH_FAILURES.labels(error.dependency, error.auth).inc()
        message = None if error is None else str(error)
        with self._lock:
            before = self.problems.get(name)
            if message is None:
                self.problems.pop(name, None)
            else:
                self.problems[name] = message
        if message is not None and message != before:
            said = message if message.startswith(name.split("-")[0] + ":") else f"{name}: {message}"
            log.warning("%s not ready: %s", self.process, said)
        elif message is None and before is not None:
            log.info("%s: %s works again (was: %s)", self.process, name, before)

    def warning(self, name: str, message: str | None) -> None:
        """Record (or clear) a degradation that does not make the process unready."""
        with self._lock:
            before = self.warnings.get(name)
            if message is None:
                self.warnings.pop(name, None)
            else:
                self.warnings[name] = message
        if message is not None and message != before:
            log.warning("%s: %s", self.process, message)
        elif message is None and before is not None:
            log.info("%s: %s: resolved (was: %s)", self.process, name, before)

    def stalled(self) -> bool:
        if not self.lag:
            return False
        since = self.last_progress_at or self.started_at
        return self.clock() - since > self.stall_after_s

    def report(self) -> tuple[bool, dict[str, Any]]:
        now = self.clock()
        ready = not self.problems and not self.stalled()
        READY.labels(self.process).set(1 if ready else 0)
        return ready, {
            "process": self.process,
            "ready": ready,
            "stalled": self.stalled(),
            "lag": self.lag,
            "seconds_since_progress": None
            if self.last_progress_at is None
            else round(now - self.last_progress_at, 1),
            "problems": dict(self.problems),
            "warnings": dict(self.warnings),
            "kafka": dict(self.kafka),
            "uptime_s": round(now - self.started_at, 1),
        }


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


def bootstrap_brokers(kafka: KafkaSettings) -> list[str]:
    return [b.strip() for b in kafka.bootstrap_servers.split(",") if b.strip()]


def probe_broker(kafka: KafkaSettings, address: str, timeout_s: float = 3.0) -> Exception | None:
    """Connect to one broker as every client does (TLS, SASL) and return what went wrong.

    The clients only say "unable to bootstrap" after their timeout (kafka-python and aiokafka
    log the real reason and retry); one connection here yields the error itself:
    connection refused, a certificate not trusted, SASL authentication failed... ``None``
    means the broker accepted us. Uses kafka-python's connection layer (pinned version; the
    integration test tests/integration/test_ops_diagnose.py runs it against real listeners).
    """
    from kafka.net.manager import KafkaConnectionManager
    from kafka.net.selector import NetworkSelector

    try:
        options = {
            **client_options(kafka),
            "bootstrap_servers": [address],
            "client_id": f"{kafka.client_id}-probe",
            "request_timeout_ms": int(timeout_s * 1000),
        }
        net = NetworkSelector(**options)
    except Exception as exc:  # noqa: BLE001 - the settings themselves (KafkaConfigError)
        return exc
    manager = KafkaConnectionManager(net, **options)

    conns: list[Any] = []

    async def connect() -> None:
        (node,) = manager.cluster.bootstrap_brokers()
        conn = manager.get_connection(
            node.node_id,
            timeout_ms=int(timeout_s * 1000),
            pop_on_close=False,
            refresh_metadata_on_err=False,
        )
        conns.append(conn)
        await conn

    try:
        net.run(connect)
    except Exception as exc:  # noqa: BLE001 - the answer of the probe
        return _sasl_rejection(kafka, exc, conns[0] if conns else None)
    finally:
        manager.close()
        net.close()
    return None


def _sasl_rejection(kafka: KafkaSettings, exc: Exception, conn: Any) -> Exception:
    """A broker that rejects SCRAM credentials closes the connection after the last SASL step
    (kafka-python 3.0 then reports only "socket disconnected"). The connection had already
    spoken Kafka (ApiVersions answered: ``broker_version_data``), so a loss before it was
    ready happened during SASL: say so, as the authentication failure it is."""
    from kafka.errors import KafkaConnectionError, SaslAuthenticationFailedError

    sasl = kafka.security_protocol.startswith("SASL_")
    spoke = conn is not None and getattr(conn, "broker_version_data", None) is not None
    if sasl and spoke and type(exc) is KafkaConnectionError:
        rejected: Exception = SaslAuthenticationFailedError(
            f"the broker closed the connection during SASL {kafka.sasl_mechanism} "
            f"authentication ({exc})"
        )
        rejected.__cause__ = exc
        return rejected
    return exc


def probe_kafka(kafka: KafkaSettings, timeout_s: float = 3.0) -> Problem | None:
    """Every bootstrap broker probed: a message naming the brokers at fault, else None."""
    results = {b: probe_broker(kafka, b, timeout_s) for b in bootstrap_brokers(kafka)}
    return diagnose.kafka_brokers(results, kafka)


def kafka_problem(exc: BaseException, kafka: KafkaSettings) -> Problem:
    """``exc`` of a Kafka client explained; when it does not name a credential, each
    bootstrap broker is probed to say which one is at fault."""
    problem = diagnose.kafka(exc, kafka)
    if problem.kind in diagnose.AUTH_KINDS or problem.kind == "config":
        return problem
    return probe_kafka(kafka) or problem


class LagReader:
    """Per partition of ``topic``: end offset minus the group's committed offset (or all of it).

    Keeps one admin client and one consumer (no group) open: sampling every few seconds must
    not reconnect every time. The same admin client describes the cluster (brokers, replicas).
    """

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self._admin = KafkaAdminClient(
            **client_options(settings.kafka),
            client_id=f"{settings.kafka.client_id}-lag",
            request_timeout_ms=10_000,
            bootstrap_timeout_ms=10_000,
        )
        self._consumer = KafkaConsumer(
            **client_options(settings.kafka),
            client_id=f"{settings.kafka.client_id}-lag",
            group_id=None,
            enable_auto_commit=False,
            request_timeout_ms=15_000,
        )

    def lag(self, group: str, topic: str) -> dict[int, int]:
        from kafka import TopicPartition

        parts = [TopicPartition(topic, p) for p in self._consumer.partitions_for_topic(topic) or []]
        if not parts:
            return {}
        committed = self._admin.list_group_offsets({group: parts}).get(group, {})
        ends = self._consumer.end_offsets(parts)
        out = {}
        for tp in parts:
            meta = committed.get(tp)
            done = meta.offset if meta is not None and meta.offset >= 0 else 0
            out[tp.partition] = max(0, ends[tp] - done)
        return out

    def brokers(self) -> dict[int, str]:
        """Broker id -> host:port of the brokers in the cluster metadata (unfenced)."""
        cluster = self._admin.describe_cluster()
        return {
            int(b["broker_id"]): f"{b['host']}:{b['port']}"
            for b in cluster["brokers"]
            if not b.get("is_fenced")
        }

    def replication(self, names: list[str]) -> dict[str, tuple[int, int]]:
        """Topic -> (under-replicated, offline) partitions, for those of ``names`` that exist."""
        out = {}
        for topic in self._admin.describe_topics(names):
            if topic.get("error_code"):  # not created (yet): nothing to count
                continue
            parts = topic["partitions"]
            under = sum(1 for p in parts if len(p["isr_nodes"]) < len(p["replica_nodes"]))
            offline = sum(1 for p in parts if p["leader_id"] is None or p["leader_id"] < 0)
            out[topic["name"]] = (under, offline)
        return out

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()


class LagSampler(threading.Thread):
    """Samples a consumer group's lag every ``interval_s`` into the gauge and ``Health``, and
    with it the cluster: brokers in the metadata and the newsflow topics' replication."""

    def __init__(
        self,
        settings: Settings,
        stage: str,
        group: str,
        topic: str,
        health: Health,
        interval_s: float,
    ) -> None:
        super().__init__(name=f"lag-{stage}", daemon=True)
        self.settings, self.stage, self.group, self.topic = settings, stage, group, topic
        self.health = health
        self.interval_s = interval_s
        self.stop_event = threading.Event()
        self._reader: LagReader | None = None
        self.topics = [spec.topic_name(settings.topics) for spec in topics.ALL]
        self._seen: dict[int, str] = {}  # every broker id seen in the metadata -> host:port

    def sample(self) -> None:
        try:
            self._reader = self._reader or LagReader(self.settings)
            lag = self._reader.lag(self.group, self.topic)
        except Exception as exc:  # noqa: BLE001 - reported as a dependency problem
            if self._reader is not None:
                self._reader.close()
            self._reader = None  # reconnect next time
            self.health.dependency("kafka", kafka_problem(exc, self.settings.kafka))
            return
        self.health.dependency("kafka", None)
        for partition, value in lag.items():
            CONSUMER_LAG.labels(self.stage, self.topic, str(partition)).set(value)
        self.health.lag = sum(lag.values())
        self.sample_cluster(self._reader)

    def sample_cluster(self, reader: LagReader) -> None:
        """Brokers and replication; a failure here is a warning (the lag sample worked)."""
        try:
            present = reader.brokers()
            replication = reader.replication(self.topics)
        except Exception as exc:  # noqa: BLE001 - e.g. no DESCRIBE on the cluster (ACL)
            problem = diagnose.kafka(exc, self.settings.kafka)
            self.health.warning("kafka-cluster", f"cannot describe the cluster: {problem}")
            return
        self.health.warning("kafka-cluster", None)
        self._seen.update(present)
        addresses = set(present.values())
        boot = bootstrap_brokers(self.settings.kafka)
        missing = {
            f"{addr} (id {bid})": addr for bid, addr in self._seen.items() if bid not in present
        }
        if addresses & set(boot):  # the bootstrap list uses the advertised names: compare them
            known = set(self._seen.values())  # a broker seen before is named with its id above
            missing.update({addr: addr for addr in boot if addr not in addresses | known})
        KAFKA_BROKERS.set(len(present))
        under = offline = 0
        for topic, (u, o) in replication.items():
            UNDER_REPLICATED.labels(topic).set(u)
            OFFLINE_PARTITIONS.labels(topic).set(o)
            under, offline = under + u, offline + o
        self.health.kafka = {
            "brokers": [f"{bid}@{addr}" for bid, addr in sorted(present.items())],
            "brokers_missing": sorted(missing),
            "under_replicated_partitions": under,
            "offline_partitions": offline,
        }
        probes = {label: probe_broker(self.settings.kafka, addr) for label, addr in missing.items()}
        self.health.warning(
            "kafka-brokers", diagnose.brokers_missing(probes, len(present), self.settings.kafka)
        )
        self.health.warning(
            "kafka-replication",
            None
            if not (under or offline)
            else f"kafka: {under} under-replicated and {offline} offline partitions of the "
            "newsflow topics (newsflow_kafka_under_replicated_partitions)",
        )

    def run(self) -> None:
        while not self.stop_event.is_set():
            self.sample()
            self.stop_event.wait(self.interval_s)


def register_pages(app: Any, health: Health) -> None:
    """/metrics, /health/live and /health/ready on a faust worker's web server."""

    async def metrics(self: Any, request: Any) -> Any:
        health.report()  # refreshes newsflow_ready, so a scrape alone keeps it current
        body, content_type = metrics_payload()
        # aiohttp (under faust) refuses a charset inside content_type; the body is UTF-8 anyway.
        bare = "; ".join(p for p in content_type.split("; ") if not p.startswith("charset="))
        return self.bytes(body, content_type=bare)

    async def live(self: Any, request: Any) -> Any:
        return self.json({"process": health.process, "live": True})

    async def ready(self: Any, request: Any) -> Any:
        ok, report = health.report()
        return self.json(report, status=200 if ok else 503)

    app.page("/metrics")(metrics)
    app.page("/health/live")(live)
    app.page("/health/ready")(ready)


async def start_ops_server(health: Health, host: str, port: int) -> Any:
    """The same three endpoints for processes that are not faust workers (the connector).

    Returns the aiohttp runner; ``await runner.cleanup()`` stops it.
    """
    from aiohttp import web

    async def metrics(_request: web.Request) -> web.Response:
        health.report()
        body, content_type = metrics_payload()
        return web.Response(body=body, headers={"Content-Type": content_type})

    async def live(_request: web.Request) -> web.Response:
        return web.json_response({"process": health.process, "live": True})

    async def ready(_request: web.Request) -> web.Response:
        ok, report = health.report()
        return web.json_response(report, status=200 if ok else 503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health/live", live)
    app.router.add_get("/health/ready", ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
