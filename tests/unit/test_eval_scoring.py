"""Product-path scoring: character spans snapped to the gold tokens they touch."""

from __future__ import annotations

from streams.enrich.training.scoring import Score, join_tokens, snap, spans


def test_join_keeps_each_token_at_its_offsets() -> None:
    tokens = ["Er", "kam", "aus", "Bern", ",", "Schweiz", "(", "CH", ")", "."]
    for detok in (False, True):
        text, offsets = join_tokens(tokens, detok)
        assert [text[a:b] for a, b in offsets] == tokens
    assert join_tokens(tokens, True)[0] == "Er kam aus Bern, Schweiz (CH)."
    assert join_tokens(tokens)[0] == "Er kam aus Bern , Schweiz ( CH ) ."


def test_a_span_touching_part_of_a_token_covers_the_token() -> None:
    text, offsets = join_tokens(["Ankara'da", "ve", "وسوريا", "."])
    assert snap(0, 6, offsets) == (0, 1)  # "Ankara" of "Ankara'da"
    start = text.index("سوريا")
    assert snap(start, start + 5, offsets) == (2, 3)  # "سوريا" of "وسوريا"
    assert snap(4, 12, offsets) == (0, 2)  # crosses into "ve"
    assert snap(9, 10, offsets) is None  # only the space


def test_snapped_spans_score_exactly() -> None:
    text, offsets = join_tokens(["Angela", "Merkel", "in", "Bern'de"])
    gold = spans(["B-PER", "I-PER", "O", "B-LOC"])
    found = [(0, 13, "PER"), (text.index("Bern"), text.index("Bern") + 4, "LOC")]
    pred = []
    for start, end, typ in found:
        got = snap(start, end, offsets)
        assert got is not None
        pred.append((got[0], got[1], typ))
    score = Score()
    score.add(gold, pred)
    assert score.prf()["f1"] == 1.0
