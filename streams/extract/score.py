"""Token-level precision / recall / F1 of an extracted text against the expected body.

Tokens: words (Unicode letters, digits, marks), lower-cased; Chinese, Japanese and Korean
ideographs and kana count one token per character (they are written without spaces).
Counts are multisets (a paragraph extracted twice costs precision). Both empty -> 1.0.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass
from typing import Final

__all__ = ["Score", "score_text", "tokens"]

_CJK: Final = (
    "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0002ffff"
)
_TOKEN: Final = re.compile(rf"[{_CJK}]|[^\W{_CJK}]+", re.UNICODE)


def tokens(text: str) -> list[str]:
    return _TOKEN.findall(text.casefold())


@dataclass(frozen=True, slots=True)
class Score:
    precision: float
    recall: float
    f1: float


def score_text(extracted: str, expected: str) -> Score:
    got, want = Counter(tokens(extracted)), Counter(tokens(expected))
    if not got and not want:
        return Score(1.0, 1.0, 1.0)
    if not got or not want:
        return Score(0.0, 0.0, 0.0)
    common = sum((got & want).values())
    p = common / sum(got.values())
    r = common / sum(want.values())
    f = 0.0 if common == 0 else 2 * p * r / (p + r)
    return Score(p, r, f)
