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

import re
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
from streams.schema.models import LINK_ID_PATTERN

Input = ExtractedArticle | RawArticle

ENTITY_TYPES = {"PER", "ORG", "LOC", "MISC"}


def model_versions() -> dict[str, str]:
    return {"langid": language.MODEL_VERSION, **entities.MODEL_VERSIONS}


_LINK_ID = re.compile(LINK_ID_PATTERN)


def _to_contract(found: FoundEntity) -> Entity:
    # an id the contract would refuse must not dead-letter the article: it is dropped
    linked = found.id is not None and len(found.id) <= 200 and _LINK_ID.match(found.id)
    link = found.link_confidence if linked else None
    return Entity(
        text=found.text,
        type=found.type if found.type in ENTITY_TYPES else "MISC",
        normalized=found.normalized,
        mentions=tuple(
            EntityMention(field=m.field, start=m.start, end=m.end, text=m.text or None)
            for m in found.mentions
        ),
        confidence=round(min(1.0, max(0.0, found.confidence)), 4),
        count=found.count,
        name=found.name or found.text,
        key=found.key or found.normalized,
        id=found.id if linked else None,
        link_confidence=None if link is None else round(min(1.0, max(0.0, link)), 4),
        facet=found.facet,
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
    ((lang, found),) = analyse_many([(prep, src.language_hint)])
    return _article(raw, prep, lang, found, stamp, model_versions())


Timing = tuple[str, str, float, int]  # component, language, seconds per article, articles


def analyse_many(
    items: Sequence[tuple[PreparedText, str | None]], timings: list[Timing] | None = None
) -> list[tuple[LanguageResult, list[FoundEntity]]]:
    """Language, then entities, of each ``(prepared text, declared language)``, in order.

    The one analysis path of the enrich stage and of ``newsflow enrich`` (``offline``), so that
    ``make eval`` measures what the pipeline does. ``timings`` as in :func:`enrich_batch`.
    """
    if not items:
        return []
    started = time.perf_counter()
    langs = language.detect_many([(p.language_input, hint) for p, hint in items])
    if timings is not None:
        timings.append(
            ("language", "all", (time.perf_counter() - started) / len(items), len(items))
        )
    # Entities per language group: the same calls as one mixed batch, but each group's
    # time is measurable (models and costs differ a lot between languages).
    groups: dict[str | None, list[int]] = {}
    for i, lang in enumerate(langs):
        groups.setdefault(lang.code, []).append(i)
    found: list[Any] = [None] * len(items)
    for code, idxs in groups.items():
        started = time.perf_counter()
        out = entities.extract_many([(items[i][0].fields, code) for i in idxs])
        for i, ents in zip(idxs, out, strict=True):
            found[i] = ents
        if timings is not None:
            per = (time.perf_counter() - started) / len(idxs)
            timings.append(("entities", code or "und", per, len(idxs)))
    return list(zip(langs, found, strict=True))


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
        analysed = analyse_many(
            [(p, r.source.language_hint) for p, r in zip(preps, raws, strict=True)], timings
        )
        langs = [lang for lang, _found in analysed]
        found = [ents for _lang, ents in analysed]
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
