"""`newsflow worker NAME`: one faust worker process running one registered stage.

The stages are listed in ``streams.stages.registry`` (``index`` brings the dead-letter indexer
along). Each worker is its own consumer group (``<app_id>-<NAME>``); start several processes
of a stage (each with its own ``NEWSFLOW_FAUST__WEB_PORT`` and ``NEWSFLOW_FAUST__DATADIR``) to
spread the partitions over them.
"""

from __future__ import annotations

import logging
from typing import Any

import faust

from streams import topics
from streams.app import create_app
from streams.ops import Health, LagSampler, probe_kafka, register_pages
from streams.settings import Settings
from streams.stages import registry, runner
from streams.stages.eras import TopicEras
from streams.stages.eras import watch as watch_eras

STAGES = tuple(registry.STAGES)

# How old the consumer's view of the cluster may get before it asks again. A subscribed input
# topic that was deleted drops out of the assignment at once (its fetches fail), but its
# recreation is only seen at the next refresh: with faust's 5 min default the worker idled for
# 5 minutes on a recreated topic while reporting ready (tests/integration/
# test_stream_faults_topic.py). One metadata request per 10 s and worker is nothing to a broker.
METADATA_MAX_AGE_MS = 10_000
# How often the input topics' ids are compared (a recreated topic has a new id): the sooner a
# replacement is seen, the fewer records of the new topic are fetched before the rewind.
ERAS_INTERVAL_S = 2.0


def build(settings: Settings, stage: str, health: Health | None = None) -> faust.App:
    names = registry.worker_stages(stage)
    app = create_app(
        settings,
        app_id=group_id(settings, stage),
        consumer_metadata_max_age_ms=METADATA_MAX_AGE_MS,
    )
    health = health or Health(stage, settings.ops.stall_after_s)
    register_pages(app, health)
    stages = [registry.declare(name, settings, health) for name in names]
    # Input topics deleted and recreated under the worker are read from their start again.
    inputs = [spec.topic_name(settings.topics) for stage_ in stages for spec in stage_.input]
    eras = TopicEras(dict.fromkeys(inputs))
    for declared in stages:
        runner.register(app, declared, settings, health, eras=eras)
    watch_eras(app, settings, eras, health, ERAS_INTERVAL_S)
    return app


def group_id(settings: Settings, stage: str) -> str:
    """The stage's faust app id, which is also its Kafka consumer group."""
    return f"{settings.faust.app_id}-{stage}"


def run(settings: Settings, stage: str, loglevel: str = "info") -> None:
    health = Health(stage, settings.ops.stall_after_s)
    app = build(settings, stage, health)
    wiring = topics.STAGES.get(stage)
    source = (wiring["input"] if wiring else topics.DEAD_LETTER_TOPICS[0]).topic_name(
        settings.topics
    )
    LagSampler(
        settings, stage, group_id(settings, stage), source, health, settings.ops.lag_interval_s
    ).start()
    options: dict[str, Any] = {"loglevel": loglevel, "redirect_stdouts": False}
    worker = faust.Worker(app, **options)
    try:
        worker.execute_from_commandline()
    except SystemExit as exc:
        if exc.code not in (None, 0):
            explain_failed_start(settings, stage)
        raise


def explain_failed_start(settings: Settings, stage: str) -> None:
    """A worker that could not start (faust exits 1 with "Unable to bootstrap", the real cause
    only in aiokafka's lines): probe each broker once and log what is wrong -- a rejected SASL
    password names the user and the variables to fix. Nothing when Kafka answers."""
    problem = probe_kafka(settings.kafka)
    if problem is not None:
        logging.getLogger("newsflow.worker").error("worker %s cannot start: %s", stage, problem)
