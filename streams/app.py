"""The one faust App of newsflow and its contract-typed topics.

Stages (``streams/stages/``) attach their agents to this app; wiring comes from ``topics.py``.
faust's ``exactly_once`` mode is deliberately not used (see ARCHITECTURE.md §1).
"""

from __future__ import annotations

from typing import Any

import faust

from streams import topics
from streams.serde import codec_name, register_all
from streams.settings import Settings


def create_app(settings: Settings, app_id: str | None = None, **overrides: Any) -> faust.App:
    register_all()
    options: dict[str, Any] = {
        "broker": ";".join(
            f"kafka://{b.strip()}" for b in settings.kafka.bootstrap_servers.split(",")
        ),
        "web_port": settings.faust.web_port,
        "datadir": str(settings.faust.datadir),
        "topic_partitions": settings.topics.partitions,
        "topic_replication_factor": settings.topics.replication_factor,
        "processing_guarantee": "at_least_once",
        "key_serializer": "raw",
        "value_serializer": "raw",
        # Batches are kept far below this; a stuck batch must surface, not stall silently.
        "stream_processing_timeout": 300.0,
    }
    options.update(overrides)
    return faust.App(app_id or settings.faust.app_id, **options)


def contract_topic(app: faust.App, spec: topics.TopicSpec, name: str | None = None) -> Any:
    """A faust topic whose values are contract models of ``spec`` (keys: article_id bytes)."""
    if spec.value_model is None:
        return app.topic(name or spec.name, key_serializer="raw", value_serializer="raw")
    return app.topic(
        name or spec.name,
        key_serializer="raw",
        value_serializer=codec_name(spec),
        internal=False,
    )
