"""`newsflow enrich` core: order, inline errors, streaming, offsets into the input fields."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator

from streams.enrich.offline import enrich_lines


def test_order_ids_and_inline_errors() -> None:
    lines = [
        json.dumps({"id": "x", "title": "Angela Merkel visited Paris", "language_hint": "en"}),
        "{broken",
        json.dumps({"text": "وصل الوفد إلى دمشق"}),
        json.dumps({"title": 5}),
    ]
    out = list(enrich_lines(lines, batch_size=2))
    assert [o.get("id") for o in out] == ["x", None, 3, None]
    assert out[1]["line"] == 2 and "JSONDecodeError" in out[1]["error"]
    assert out[3]["line"] == 4 and "must be strings" in out[3]["error"]
    assert out[0]["language"]["code"] == "en" and out[2]["language"]["code"] == "ar"
    record = json.loads(lines[0])
    for ent in out[0]["entities"]:
        assert record[ent["field"]][ent["start"] : ent["end"]] == ent["text"]
    assert {e["type"] for e in out[0]["entities"]} >= {"PER", "LOC"}


def test_streams_without_reading_everything() -> None:
    def endless() -> Iterator[str]:
        for n in itertools.count():
            yield json.dumps({"id": n, "title": f"News from Ankara number {n}"})

    first = list(itertools.islice(enrich_lines(endless(), batch_size=10), 25))
    assert [o["id"] for o in first] == list(range(25))


def test_long_text_is_cut_and_flagged() -> None:
    line = json.dumps({"text": "word " * 5000})
    (out,) = enrich_lines([line], max_chars=1000)
    assert out["text_truncated"] is True
