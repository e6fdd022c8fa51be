"""`newsflow worker enrich|index`: one faust worker process running one stage.

Each stage is its own consumer group (``<app_id>-<stage>``); start several processes of a
stage (each with its own ``NEWSFLOW_FAUST__WEB_PORT`` and ``NEWSFLOW_FAUST__DATADIR``) to spread
the partitions over them.
"""

from __future__ import annotations

import gc
from typing import Any

import faust

from streams.app import create_app
from streams.settings import Settings

STAGES = ("enrich", "index")


def build(settings: Settings, stage: str) -> faust.App:
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; choose one of {', '.join(STAGES)}")
    app = create_app(settings, app_id=f"{settings.faust.app_id}-{stage}")
    if stage == "enrich":
        from streams.enrich import entities, language
        from streams.stages import enrich

        # Load the models before consuming (the first batch is not slowed by loading) and move
        # them out of the garbage collector's way: they live as long as the process.
        language.load()
        entities.load_models()
        gc.collect()
        gc.freeze()
        enrich.register(app, settings)
    else:
        from streams.stages import index

        index.register(app, settings)
    return app


def run(settings: Settings, stage: str, loglevel: str = "info") -> None:
    app = build(settings, stage)
    options: dict[str, Any] = {"loglevel": loglevel, "redirect_stdouts": False}
    worker = faust.Worker(app, **options)
    worker.execute_from_commandline()
