"""Every stage `newsflow worker NAME` can start, and which stages share a worker process.

The topics a stage reads and writes are its wiring, declared once in ``topics.STAGES``; this
registry only says where each stage's declaration lives. Declarations are imported on demand,
so a worker loads only its own stages' dependencies (the NER models only in enrich workers).

A stage module has ``declare(settings, health) -> runner.Stage``. Adding a stage (e.g. the
full-text ``extract`` stage) = its topics and wiring in ``topics.py``, its module here, one line
in ``STAGES``.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

from streams.ops import Health
from streams.settings import Settings
from streams.stages.runner import Stage


@dataclass(frozen=True)
class Entry:
    module: str  # has declare(settings, health) -> Stage
    with_stages: tuple[str, ...] = ()  # registered stages that run in the same worker process


STAGES: dict[str, Entry] = {
    "extract": Entry("streams.stages.extract"),
    "enrich": Entry("streams.stages.enrich"),
    # The Kibana view of the dead letters rides along with the index worker (same cluster).
    "index": Entry("streams.stages.index", with_stages=("dead-letters",)),
    "dead-letters": Entry("streams.stages.deadletters"),
}


def worker_stages(name: str) -> tuple[str, ...]:
    """The stages `newsflow worker NAME` runs: NAME first, then its companions."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; choose one of {', '.join(STAGES)}")
    return (name, *STAGES[name].with_stages)


def declare(name: str, settings: Settings, health: Health | None = None) -> Stage:
    module = importlib.import_module(STAGES[name].module)
    stage: Stage = module.declare(settings, health)
    if stage.name != name:
        raise ValueError(f"{STAGES[name].module} declares {stage.name!r}, registered as {name!r}")
    return stage
