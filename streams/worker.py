"""`newsflow worker enrich|index`: one faust worker process running one stage.

Each stage is its own consumer group (``<app_id>-<stage>``); start several processes of a
stage (each with its own ``NEWSFLOW_FAUST__WEB_PORT`` and ``NEWSFLOW_FAUST__DATADIR``) to spread
the partitions over them.
"""

from __future__ import annotations

import gc
from typing import Any

import faust

from streams import topics
from streams.app import create_app
from streams.ops import Health, LagSampler, register_pages
from streams.settings import Settings

STAGES = ("enrich", "index")


def build(settings: Settings, stage: str, health: Health | None = None) -> faust.App:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    app = create_app(settings, app_id=group_id(settings, stage))
    health = health or Health(stage, settings.ops.stall_after_s)
    register_pages(app, health)
    if stage == "enrich":
        from streams.enrich import entities, language
        from streams.stages import enrich

        # Load the models before consuming (the first batch is not slowed by loading) and move
        # them out of the garbage collector's way: they live as long as the process.
        language.load()
        entities.load_models()
        gc.collect()
        gc.freeze()
        enrich.register(app, settings, health)
    else:
        from streams.stages import deadletters, index

        index.register(app, settings, health)
        deadletters.register(app, settings, health)
    return app


def group_id(settings: Settings, stage: str) -> str:
    """The stage's faust app id, which is also its Kafka consumer group."""
    return f"{settings.faust.app_id}-{stage}"


def run(settings: Settings, stage: str, loglevel: str = "info") -> None:
    health = Health(stage, settings.ops.stall_after_s)
    app = build(settings, stage, health)
    source = topics.STAGES[stage]["input"].topic_name(settings.topics)
    LagSampler(
        settings, stage, group_id(settings, stage), source, health, settings.ops.lag_interval_s
    ).start()
    options: dict[str, Any] = {"loglevel": loglevel, "redirect_stdouts": False}
    worker = faust.Worker(app, **options)
    worker.execute_from_commandline()
