"""ExtractedArticle -> Article: the pure enrichment of a batch (language, then entities).

Reads title, summary and the full text: the extracted page ``body`` when the extract stage
found one, else the feed's own content (``streams.enrich.text.prepare``), within
``enrich.max_chars``. A plain ``RawArticle`` (no extract stage: the smoke demo, old records) is
enriched the same way without a body. ``body`` and ``extraction`` are carried onto the Article.

Called by the enrich stage in a worker thread; returns one result per input, in order: the
enriched ``Article`` or the exception that article raised, so one bad article is dead-lettered
without failing its batch.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from streams.enrich import entities, language
from streams.enrich.text import PreparedText, prepare
from streams.enrich.types import FoundEntity, LanguageResult
from streams.schema import (
    Article,
    Entity,
    EntityMention,
    ExtractedArticle,
    LanguageInfo,
    PipelineInfo,
    RawArticle,
    StageStamp,
)

Input = ExtractedArticle | RawArticle

ENTITY_TYPES = {"PER", "ORG", "LOC", "MISC"}


def model_versions() -> dict[str, str]:
    return {"langid": language.MODEL_VERSION, **entities.MODEL_VERSIONS}


def _to_contract(found: FoundEntity) -> Entity:
    return Entity(
        text=found.text,
        type=found.type if found.type in ENTITY_TYPES else "MISC",
        normalized=found.normalized,
        mentions=tuple(
            EntityMention(field=m.field, start=m.start, end=m.end) for m in found.mentions
        ),
        confidence=round(min(1.0, max(0.0, found.confidence)), 4),
        count=found.count,
    )


def _body(raw: Input) -> str | None:
    return raw.body if isinstance(raw, ExtractedArticle) else None


def _prepare(raw: Input, max_chars: int) -> PreparedText:
    src = raw.source
    return prepare(src.title, src.summary, src.content, max_chars, _body(raw))


def _article(
    raw: Input,
    prep: PreparedText,
    lang: LanguageResult,
    found: list[FoundEntity],
    stamp: StageStamp,
    models: dict[str, str],
) -> Article:
    return Article(
        schema_version=raw.schema_version,
        article_id=raw.article_id,
        source=raw.source,
        language=LanguageInfo(
            code=lang.code,
            confidence=round(lang.confidence, 4),
            method=lang.method,
            script=lang.script,
        ),
        entities=tuple(_to_contract(f) for f in found),
        text_truncated=prep.truncated,
        body=_body(raw),
        extraction=raw.extraction if isinstance(raw, ExtractedArticle) else None,
        pipeline=PipelineInfo(
            stages=(*raw.pipeline.stages, stamp), models={**raw.pipeline.models, **models}
        ),
    )


def enrich_one(raw: Input, stamp: StageStamp, max_chars: int) -> Article:
    src = raw.source
    prep = _prepare(raw, max_chars)
    lang = language.detect_language(prep.language_input, src.language_hint)
    found = entities.extract_entities(prep.fields, lang.code)
    return _article(raw, prep, lang, found, stamp, model_versions())


Timing = tuple[str, str, float, int]  # component, language, seconds per article, articles


def enrich_batch(
    raws: Sequence[Input],
    stamp: StageStamp,
    max_chars: int,
    timings: list[Timing] | None = None,
) -> list[Article | Exception]:
    """Enrich a batch with the batched model calls; isolate failures to single articles.

    ``timings`` (when given) receives the time per article of each component, per language.
    """
    if not raws:
        return []
    try:
        preps = [_prepare(r, max_chars) for r in raws]
        started = time.perf_counter()
        langs = language.detect_many(
            [(p.language_input, r.source.language_hint) for p, r in zip(preps, raws, strict=True)]
        )
        if timings is not None:
            timings.append(
                ("language", "all", (time.perf_counter() - started) / len(raws), len(raws))
            )
        # Entities per language group: the same calls as one mixed batch, but each group's
        # time is measurable (models and costs differ a lot between languages).
        groups: dict[str | None, list[int]] = {}
        for i, lang in enumerate(langs):
            groups.setdefault(lang.code, []).append(i)
        found: list[Any] = [None] * len(raws)
        for code, idxs in groups.items():
            started = time.perf_counter()
            out = entities.extract_many([(preps[i].fields, code) for i in idxs])
            for i, ents in zip(idxs, out, strict=True):
                found[i] = ents
            if timings is not None:
                per = (time.perf_counter() - started) / len(idxs)
                timings.append(("entities", code or "und", per, len(idxs)))
        models = model_versions()
        return [
            _article(r, p, lang, f, stamp, models)
            for r, p, lang, f in zip(raws, preps, langs, found, strict=True)
        ]
    except Exception:  # noqa: BLE001 - find the culprit(s) one by one
        results: list[Article | Exception] = []
        for raw in raws:
            try:
                results.append(enrich_one(raw, stamp, max_chars))
            except Exception as exc:  # noqa: BLE001 - returned, dead-lettered by the stage
                results.append(exc)
        return results


def stamp(now: datetime, version: str) -> StageStamp:
    return StageStamp(stage="enrich", at=now, version=version)
