"""The enrich stage: extracted articles -> language, entities -> the public ``Article`` contract.

Its wiring (input, output, dead letters) is ``topics.STAGES["enrich"]``. ``process`` is the pure
batch enrichment (``streams.enrich.pipeline``), a plain function: the stage runner
(``streams.stages.runner``) runs it in a worker thread so the event loop keeps heartbeating.
An article whose enrichment raised, or whose result would not fit in a Kafka record, is
dead-lettered alone; every other article is forwarded, keyed by its own ``article_id``.
"""

from __future__ import annotations

import gc
from collections.abc import Sequence
from datetime import UTC, datetime

from streams import topics
from streams.enrich import pipeline
from streams.errors import PoisonArticle
from streams.metrics import ENRICH_SECONDS
from streams.ops import Health
from streams.schema import ExtractedArticle, decode
from streams.settings import Settings
from streams.stages.runner import BatchPolicy, Forward, Outcome, Poison, Record, Stage
from streams.version import VERSION

STAGE = "enrich"


def decode_raw(record: Record) -> ExtractedArticle:
    # A RawArticle's JSON reads as an ExtractedArticle without body/extraction.
    return decode(ExtractedArticle, record.value)


def enrich(raws: Sequence[ExtractedArticle], max_chars: int) -> list[Outcome]:
    """One outcome per raw article, in order (pure apart from the timing metrics)."""
    timings: list[pipeline.Timing] = []
    results = pipeline.enrich_batch(
        raws, pipeline.stamp(datetime.now(UTC), VERSION), max_chars, timings
    )
    for component, lang, per_article, n in timings:
        observe = ENRICH_SECONDS.labels(component, lang).observe
        for _ in range(n):
            observe(per_article)
    outcomes: list[Outcome] = []
    for result in results:
        if isinstance(result, Exception):
            outcomes.append(Poison(result))
            continue
        try:
            # Keyed by the record's own id: one article, one partition, whatever the input key.
            outcomes.append(Forward(topics.fits(result, "enriched"), result.article_id.encode()))
        except PoisonArticle as exc:
            outcomes.append(Poison(exc))
    return outcomes


def declare(settings: Settings, health: Health | None = None) -> Stage:
    from streams.enrich import entities, language

    # Load the models before consuming (the first batch is not slowed by loading) and move
    # them out of the garbage collector's way: they live as long as the process.
    language.load()
    entities.load_models()
    gc.collect()
    gc.freeze()
    wiring = topics.STAGES[STAGE]
    cfg = settings.enrich
    max_chars = cfg.max_chars

    def process(raws: list[ExtractedArticle]) -> list[Outcome]:
        return enrich(raws, max_chars)

    return Stage(
        name=STAGE,
        input=(wiring["input"],),
        output=wiring["output"],
        dead_letter=wiring["dead_letter"],
        batch=BatchPolicy(cfg.batch_size, cfg.batch_idle_s, cfg.batch_within_s),
        decode=decode_raw,
        process=process,
        done="enriched",
    )
