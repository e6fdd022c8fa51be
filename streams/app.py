"""The faust App of newsflow and its topics.

One App per worker process; each stage runs as its own consumer group
(``<app_id>-<stage>``) so enrich and index workers scale independently (parallelism is capped
by the partition count). Input topics deliver raw bytes: the stage decodes them itself so that
a record that is not valid contract JSON is dead-lettered with its original bytes instead of
being dropped inside faust. Output topics encode contract models with the contract codecs.
faust's ``exactly_once`` mode is deliberately not used (see ARCHITECTURE.md §1).
"""

from __future__ import annotations

from typing import Any

import faust

from streams import topics
from streams.kafka_clients import check, ssl_context
from streams.serde import codec_name, register_all
from streams.settings import KafkaSettings, Settings


def faust_credentials(kafka: KafkaSettings) -> Any:
    """faust's ``broker_credentials`` from the shared Kafka settings (None for PLAINTEXT)."""
    check(kafka)
    ctx = ssl_context(kafka)
    if kafka.security_protocol.startswith("SASL_"):
        assert kafka.sasl_password is not None  # check() above
        return faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password.get_secret_value(),
            ssl_context=ctx,
            mechanism=kafka.sasl_mechanism,
        )
    return faust.SSLCredentials(ctx) if ctx is not None else None


def create_app(settings: Settings, app_id: str | None = None, **overrides: Any) -> faust.App:
    register_all()
    if settings.faust.heartbeat_interval_s * 3 > settings.faust.session_timeout_s:
        raise ValueError(
            f"faust.heartbeat_interval_s ({settings.faust.heartbeat_interval_s}) must be at most "
            f"a third of faust.session_timeout_s ({settings.faust.session_timeout_s})"
        )
    brokers = [b.strip() for b in settings.kafka.bootstrap_servers.split(",")]
    options: dict[str, Any] = {
        "broker": ";".join(f"kafka://{b}" for b in brokers),
        "broker_credentials": faust_credentials(settings.kafka),
        "producer_acks": -1 if settings.kafka.acks == "all" else int(settings.kafka.acks),
        "web_port": settings.faust.web_port,
        "web_bind": settings.faust.web_host,  # faust's own default is 0.0.0.0
        "datadir": str(settings.faust.datadir),
        "topic_partitions": settings.topics.partitions,
        "topic_replication_factor": settings.topics.replication_factor,
        "topic_allow_declare": False,  # topics come from `newsflow bootstrap`, declared once
        # faust's LeaderAssignor subscribes every worker to a `<group>-__assignor-__leader`
        # topic, which only serves `is_leader()` / `on_leader` timers (unused here) and is never
        # created (declaring is off): aiokafka logged "[ERROR] Topic ...-__assignor-__leader not
        # found in cluster metadata" at every start. No leader topic, no false error.
        "topic_disable_leader": True,
        "processing_guarantee": "at_least_once",
        "key_serializer": "raw",
        "value_serializer": "raw",
        # Batches are kept far below this; a stuck batch must surface, not stall silently.
        "stream_processing_timeout": 300.0,
        "consumer_auto_offset_reset": "earliest",
        # A worker that dies without leaving (SIGKILL, OOM, lost host) holds its partitions until
        # its session expires: faust's 60 s default idled a replacement for most of a minute.
        "broker_session_timeout": settings.faust.session_timeout_s,
        "broker_heartbeat_interval": settings.faust.heartbeat_interval_s,
        # Articles are a few KB: fetch more than the 1 MB default per partition so a bulk batch
        # fills from one fetch (measured with bench/bench_index.py).
        "consumer_max_fetch_size": 4 * 1024 * 1024,
        "producer_max_request_size": topics.MAX_RECORD_BYTES,
    }
    options.update(overrides)
    return faust.App(app_id or settings.faust.app_id, **options)


def raw_topic(app: faust.App, spec: topics.TopicSpec, settings: Settings) -> Any:
    """A topic read or written as raw bytes (stage inputs, dead letters)."""
    return app.topic(spec.topic_name(settings.topics), key_serializer="raw", value_serializer="raw")


def contract_topic(
    app: faust.App, spec: topics.TopicSpec, settings: Settings, name: str | None = None
) -> Any:
    """A topic whose values are encoded from/decoded to the contract model of ``spec``."""
    if spec.value_model is None:
        raise ValueError(f"{spec.name} carries raw bytes, not a contract model")
    return app.topic(
        name or spec.topic_name(settings.topics),
        key_serializer="raw",
        value_serializer=codec_name(spec),
    )
