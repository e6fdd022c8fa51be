"""`newsflow enrich [FILE|-]`: enrichment of JSON lines, offline (no Kafka), in input order.

Input lines: ``{"id"?, "title"?, "text"?, "language_hint"?}``. Output: one line per input line,
``{"id", "language": {...}, "entities": [...], "text_truncated"}``; each entity carries the
contract fields plus the ``field``/``start``/``end`` of its first mention. A line that is not
valid input yields ``{"id", "line", "error"}`` and nothing else is lost. Batched and streamed:
memory does not grow with the input.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

from streams.enrich import entities, language
from streams.enrich.text import PreparedText, cut, language_text
from streams.enrich.types import FoundEntity


def _parse(line_no: int, line: str, max_chars: int) -> tuple[Any, PreparedText, str | None]:
    data = json.loads(line)
    if not isinstance(data, dict):
        raise ValueError("a line must be a JSON object")
    title, text = data.get("title") or "", data.get("text") or ""
    if not isinstance(title, str) or not isinstance(text, str):
        raise ValueError("title and text must be strings")
    if not title.strip() and not text.strip():
        raise ValueError("needs a non-empty 'title' or 'text'")
    hint = data.get("language_hint")
    if hint is not None and not isinstance(hint, str):
        raise ValueError("language_hint must be a string")
    fields: dict[str, str] = {}
    truncated = False
    budget = max_chars
    for name, value in (("title", title), ("text", text)):
        if value.strip():
            kept, was_cut = cut(value, max(budget, 0))
            fields[name], truncated = kept, truncated or was_cut
            budget -= len(kept)
    return data.get("id", line_no), PreparedText(fields, language_text(fields), truncated), hint


def _entity(found: FoundEntity) -> dict[str, Any]:
    first = found.mentions[0]
    return {
        "text": found.text,
        "type": found.type,
        "normalized": found.normalized,
        "field": first.field,
        "start": first.start,
        "end": first.end,
        "confidence": round(found.confidence, 4),
        "count": found.count,
        "mentions": [{"field": m.field, "start": m.start, "end": m.end} for m in found.mentions],
    }


def enrich_lines(
    lines: Iterable[str], batch_size: int = 256, max_chars: int = 20000
) -> Iterator[dict[str, Any]]:
    numbered = ((n, line) for n, line in enumerate(lines, start=1) if line.strip())
    while batch := list(islice(numbered, batch_size)):
        parsed: list[tuple[int, Any, PreparedText, str | None] | dict[str, Any]] = []
        for n, line in batch:
            try:
                ident, prep, hint = _parse(n, line, max_chars)
                parsed.append((n, ident, prep, hint))
            except (ValueError, TypeError) as exc:  # json.JSONDecodeError is a ValueError
                parsed.append({"id": None, "line": n, "error": f"{type(exc).__name__}: {exc}"})
        good = [p for p in parsed if isinstance(p, tuple)]
        langs = language.detect_many([(p[2].language_input, p[3]) for p in good])
        found = entities.extract_many(
            [(p[2].fields, lang.code) for p, lang in zip(good, langs, strict=True)]
        )
        results = iter(zip(good, langs, found, strict=True))
        for item in parsed:
            if isinstance(item, dict):
                yield item
                continue
            (_n, ident, prep, _hint), lang, ents = next(results)
            yield {
                "id": ident,
                "language": {
                    "code": lang.code,
                    "confidence": round(lang.confidence, 4),
                    "method": lang.method,
                    "script": lang.script,
                },
                "entities": [_entity(e) for e in ents],
                "text_truncated": prep.truncated,
            }


def dumps(record: dict[str, Any]) -> str:
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"))
