"""`newsflow enrich [FILE|-]`: enrichment of JSON lines, offline (no Kafka), in input order.

Input lines: ``{"id"?, "title"?, "text"?, "language_hint"?}``. Output: exactly one line per
input line, ``{"id", "language": {...}, "entities": [...], "text_truncated"}``; each entity
carries the fields of ``FoundEntity`` plus the ``field``/``start``/``end`` of its first mention.
A line that is not valid input yields ``{"id": null, "line", "error"}`` and nothing else is lost.

The analysis is the enrich stage's own (``pipeline.analyse_many`` on ``text.prepare_fields``),
so ``make eval`` measures the product through this module.

Whatever the bytes (:func:`read_lines`): lines end at ``\\n`` only (a bare ``\\r`` is not a line
break, ``\\r\\n`` is), a BOM is dropped (UTF-8 anywhere at a line start; UTF-16/32 at the
stream start selects that encoding), invalid UTF-8 is decoded with U+FFFD, lone surrogates in
the JSON become U+FFFD in the text, a blank line, NaN/Infinity, a JSON document nested too deep
or a line longer than ``max_line_chars`` is an error line. Output lines contain no raw line
separator (U+2028/U+2029/U+0085 are escaped), so ``splitlines`` finds them too.

Memory: a line is parsed as soon as it is read and only its prepared fields (at most
``max_chars`` characters) wait for the batch, so memory is bounded by ``batch_size x
max_chars`` plus one line (itself at most ``max_line_chars``), not by batch size x line length.
"""

from __future__ import annotations

import codecs
import dataclasses
import json
import math
from collections.abc import Iterable, Iterator
from typing import Any, BinaryIO, NamedTuple

from streams.enrich.pipeline import analyse_many
from streams.enrich.text import PreparedText, prepare_fields
from streams.enrich.types import FoundEntity

MAX_LINE_CHARS = 16 * 1024 * 1024  # a longer line is reported, not read into memory
MAX_ID_CHARS = 1024
_CHUNK = 1 << 16


class LineTooLong(NamedTuple):
    """Stands for an input line longer than the limit (its text was not kept)."""

    chars: int


Line = str | bytes | LineTooLong


def read_lines(
    stream: BinaryIO, max_line_chars: int = MAX_LINE_CHARS, chunk: int = _CHUNK
) -> Iterator[str | LineTooLong]:
    """The lines of a byte stream as text, read in chunks; see the module docstring."""
    head = b""
    while len(head) < 4:
        more = stream.read(4 - len(head))
        if not more:
            break
        head += more
    encoding = "utf-8"
    if head.startswith((codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE)):
        encoding = "utf-32"
    elif head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        encoding = "utf-16"
    decoder = codecs.getincrementaldecoder(encoding)(errors="replace")
    # read1: what is available (a pipe fed line by line is not held back until a chunk fills)
    read = getattr(stream, "read1", stream.read)
    parts: list[str] = []
    size = 0
    data = head
    while True:
        text = decoder.decode(data, final=not data)
        start = 0
        while (newline := text.find("\n", start)) >= 0:
            piece = text[start:newline]
            size += len(piece)
            if size > max_line_chars:
                yield LineTooLong(size)
            else:
                parts.append(piece)
                yield "".join(parts)
            parts, size, start = [], 0, newline + 1
        rest = text[start:]
        size += len(rest)
        if size <= max_line_chars:
            parts.append(rest)
        else:
            parts = []  # keep counting, stop keeping
        if not data:
            break
        data = read(chunk)
    if size:
        yield LineTooLong(size) if size > max_line_chars else "".join(parts)


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number out of range: {text[:40]}")
    return value


def _loads(line: str) -> Any:
    return json.loads(
        line, strict=False, parse_constant=_reject_constant, parse_float=_finite_float
    )


def _ident(data: dict[str, Any], line_no: int) -> Any:
    ident = data.get("id", line_no)
    if ident is None or isinstance(ident, bool | int | float):
        return ident
    if isinstance(ident, str):
        if len(ident) > MAX_ID_CHARS:
            raise ValueError(f"id longer than {MAX_ID_CHARS} characters")
        return ident
    raise ValueError("id must be a string or a number")


def _text(line: str | bytes) -> str:
    if isinstance(line, bytes):
        line = line.decode("utf-8", errors="replace")
    if line.endswith("\n"):
        line = line[:-1]
    if line.endswith("\r"):
        line = line[:-1]
    return line.lstrip("\ufeff")


def _parse(line_no: int, raw: str | bytes, max_chars: int) -> tuple[Any, PreparedText, str | None]:
    line = _text(raw)
    if not line.strip():
        raise ValueError("blank line")
    data = _loads(line)
    if not isinstance(data, dict):
        raise ValueError("a line must be a JSON object")
    ident = _ident(data, line_no)
    title, text = data.get("title") or "", data.get("text") or ""
    if not isinstance(title, str) or not isinstance(text, str):
        raise ValueError("title and text must be strings")
    if not title.strip() and not text.strip():
        raise ValueError("needs a non-empty 'title' or 'text'")
    hint = data.get("language_hint")
    if hint is not None and not isinstance(hint, str):
        raise ValueError("language_hint must be a string")
    if hint is not None:
        hint = hint[:64]
    return ident, prepare_fields((("title", title), ("text", text)), max_chars), hint


def _value(value: Any) -> Any:
    return round(value, 4) if isinstance(value, float) else value


def _entity(found: FoundEntity) -> dict[str, Any]:
    """Every field of ``FoundEntity`` (so the output follows the type), first mention inlined."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(found):
        if f.name != "mentions":
            out[f.name] = _value(getattr(found, f.name))
    first = found.mentions[0]
    out.update(field=first.field, start=first.start, end=first.end, count=found.count)
    out["mentions"] = [dataclasses.asdict(m) for m in found.mentions]
    return out


def _error(line_no: int, exc: BaseException) -> dict[str, Any]:
    return {"id": None, "line": line_no, "error": f"{type(exc).__name__}: {exc}"[:300]}


Parsed = tuple[Any, PreparedText, str | None]


def _flush(pending: list[Parsed | dict[str, Any]]) -> Iterator[dict[str, Any]]:
    good = [p for p in pending if isinstance(p, tuple)]
    results = iter(analyse_many([(prep, hint) for _ident, prep, hint in good]))
    for item in pending:
        if isinstance(item, dict):
            yield item
            continue
        ident, prep, _hint = item
        lang, ents = next(results)
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


def enrich_lines(
    lines: Iterable[Line], batch_size: int = 256, max_chars: int = 20000
) -> Iterator[dict[str, Any]]:
    """One result per line of ``lines`` (text, bytes or :class:`LineTooLong`), in order."""
    pending: list[Parsed | dict[str, Any]] = []
    good = 0
    for n, line in enumerate(lines, start=1):
        if isinstance(line, LineTooLong):
            pending.append(
                {"id": None, "line": n, "error": f"line too long ({line.chars} characters)"}
            )
        else:
            try:
                pending.append(_parse(n, line, max_chars))
                good += 1
            except (ValueError, TypeError, RecursionError) as exc:  # JSONDecodeError: ValueError
                pending.append(_error(n, exc))
        if good >= batch_size or len(pending) >= 4 * batch_size:
            yield from _flush(pending)
            pending, good = [], 0
    if pending:
        yield from _flush(pending)


_LINE_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def dumps(record: dict[str, Any]) -> str:
    """One JSON line: UTF-8 safe (lone surrogates escaped), no raw line separators inside."""
    text = json.dumps(record, ensure_ascii=False, separators=(",", ":"))
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = json.dumps(record, ensure_ascii=True, separators=(",", ":"))
    if "\u2028" in text or "\u2029" in text or "\x85" in text:
        for raw, escaped in _LINE_SEPARATORS.items():
            text = text.replace(raw, escaped)
    return text
