"""Operations side of every process: /metrics, /health/live, /health/ready, lag sampling.

Each process (connector, enrich worker, index worker) owns one ``Health``: the stage marks
progress after every finished batch (or saved poll), a ``LagSampler`` thread measures how far
the stage's consumer group is behind the end of its input topic, and dependency checks (Kafka,
Elasticsearch) are recorded as they succeed or fail. Ready means: dependencies reachable and
not stalled — a stage is stalled when it has input waiting (lag > 0) but finished nothing for
``ops.stall_after_s``. Live means the process answers at all.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest

from streams.kafka_clients import client_options
from streams.metrics import CONSUMER_LAG, READY, STAGE_PROGRESS
from streams.settings import Settings

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

    def progress(self) -> None:
        self.last_progress_at = self.clock()
        STAGE_PROGRESS.labels(self.process).set(self.last_progress_at)

    def dependency(self, name: str, error: str | None) -> None:
        """Record the outcome of talking to ``name`` (kafka, elasticsearch)."""
        if error is None:
            self.problems.pop(name, None)
        else:
            self.problems[name] = error

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
            "uptime_s": round(now - self.started_at, 1),
        }


def metrics_payload() -> tuple[bytes, str]:
    return generate_latest(REGISTRY), CONTENT_TYPE_LATEST


class LagReader:
    """Per partition of ``topic``: end offset minus the group's committed offset (or all of it).

    Keeps one admin client and one consumer (no group) open: sampling every few seconds must
    not reconnect every time.
    """

    def __init__(self, settings: Settings) -> None:
        from kafka import KafkaAdminClient, KafkaConsumer

        self._admin = KafkaAdminClient(
            **client_options(settings.kafka),
            client_id=f"{settings.kafka.client_id}-lag",
            request_timeout_ms=10_000,
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

    def close(self) -> None:
        self._consumer.close()
        self._admin.close()


class LagSampler(threading.Thread):
    """Samples a consumer group's lag every ``interval_s`` into the gauge and ``Health``."""

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

    def sample(self) -> None:
        try:
            self._reader = self._reader or LagReader(self.settings)
            lag = self._reader.lag(self.group, self.topic)
        except Exception as exc:  # noqa: BLE001 - reported as a dependency problem
            self.health.dependency("kafka", f"{type(exc).__name__}: {exc}")
            if self._reader is not None:
                self._reader.close()
            self._reader = None  # reconnect next time
            return
        self.health.dependency("kafka", None)
        for partition, value in lag.items():
            CONSUMER_LAG.labels(self.stage, self.topic, str(partition)).set(value)
        self.health.lag = sum(lag.values())

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
