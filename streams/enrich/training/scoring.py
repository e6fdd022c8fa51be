"""Entity-level exact-match scoring over BIO tag sequences (train-time and dev evaluation)."""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

SCORED_TYPES = ("PER", "ORG", "LOC")

Span = tuple[int, int, str]  # token start, token end (exclusive), type


def spans(tags: Sequence[str]) -> list[Span]:
    """Entity spans of a BIO sequence; an I- that does not continue its type starts an entity."""
    out: list[Span] = []
    start: int | None = None
    kind = ""
    for i, tag in enumerate([*tags, "O"]):
        prefix, _, typ = tag.partition("-")
        continues = prefix == "I" and typ == kind and start is not None
        if start is not None and not continues:
            out.append((start, i, kind))
            start = None
        if prefix in ("B", "I") and not continues:
            start, kind = i, typ
    return out


@dataclass
class Score:
    tp: Counter[str] = field(default_factory=Counter)
    fp: Counter[str] = field(default_factory=Counter)
    fn: Counter[str] = field(default_factory=Counter)
    tokens: int = 0

    def add(self, gold: Iterable[Span], pred: Iterable[Span]) -> None:
        g = {s for s in gold if s[2] in SCORED_TYPES}
        p = {s for s in pred if s[2] in SCORED_TYPES}
        for s in g & p:
            self.tp[s[2]] += 1
        for s in p - g:
            self.fp[s[2]] += 1
        for s in g - p:
            self.fn[s[2]] += 1

    def prf(self, typ: str | None = None) -> dict[str, float]:
        types = SCORED_TYPES if typ is None else (typ,)
        tp = sum(self.tp[t] for t in types)
        fp = sum(self.fp[t] for t in types)
        fn = sum(self.fn[t] for t in types)
        p = tp / (tp + fp) if tp + fp else 0.0
        r = tp / (tp + fn) if tp + fn else 0.0
        f = 2 * p * r / (p + r) if p + r else 0.0
        return {"p": round(p, 4), "r": round(r, 4), "f1": round(f, 4), "support": tp + fn}

    def report(self) -> dict[str, dict[str, float]]:
        out = {"micro": self.prf()}
        for t in SCORED_TYPES:
            out[t] = self.prf(t)
        return out


# Detokenising (``join_tokens(..., detokenize=True)``): no space before closing punctuation and
# clitics, none after opening brackets and quotes - an approximation of the original spacing.
_NO_SPACE_BEFORE = frozenset(
    {",", ".", ";", ":", "!", "?", ")", "]", "}", "%", "”", "»", "…", "'s", "’s", "n't"}
    | {"،", "؛", "؟", "..."}
)
_NO_SPACE_AFTER = frozenset({"(", "[", "{", "“", "«", "„", "$", "#"})


def join_tokens(
    tokens: Sequence[str], detokenize: bool = False
) -> tuple[str, list[tuple[int, int]]]:
    """The sentence text of gold ``tokens`` and each token's character span in it: joined with
    single spaces (the corpora keep no original spacing), or with ``detokenize`` without the
    spaces news text would not have ("Bern , Schweiz ." -> "Bern, Schweiz.")."""
    offsets: list[tuple[int, int]] = []
    parts: list[str] = []
    pos = 0
    for i, token in enumerate(tokens):
        if i and not (
            detokenize and (token in _NO_SPACE_BEFORE or tokens[i - 1] in _NO_SPACE_AFTER)
        ):
            parts.append(" ")
            pos += 1
        offsets.append((pos, pos + len(token)))
        parts.append(token)
        pos += len(token)
    return "".join(parts), offsets


def snap(start: int, end: int, offsets: Sequence[tuple[int, int]]) -> tuple[int, int] | None:
    """Token span ``(first, last + 1)`` of the gold tokens that the characters ``start:end``
    touch: a span that covers part of a token covers the whole token ("Bern" in "Bern'de",
    "سوريا" in "وسوريا"); None when it touches no token."""
    first = bisect_right([e for _s, e in offsets], start)
    last = bisect_left([s for s, _e in offsets], end)
    if first >= last:
        return None
    return first, last
