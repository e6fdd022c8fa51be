"""Plain result types of the pure enrichment functions (the stage maps them to the contract)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class LanguageResult:
    code: str | None  # ISO 639-1, None when undetermined
    confidence: float  # [0, 1]
    method: str  # "text" | "declared" | "both" | "none"
    script: str | None  # ISO 15924, e.g. "Arab", "Latn", "Cyrl", "Hani"


@dataclass(frozen=True)
class Mention:
    field: str  # the name of the input field the caller passed (e.g. "title", "text", "content")
    start: int  # character offset into that field's ORIGINAL string
    end: int  # exclusive


@dataclass(frozen=True)
class FoundEntity:
    text: str  # surface form of the first mention (exactly the original substring)
    type: str  # "PER" | "ORG" | "LOC" | "MISC"
    normalized: str  # aggregation key (Arabic: clitics/article split off, letters unified)
    mentions: tuple[Mention, ...]
    confidence: float  # [0, 1]
    method: str  # "crf" | "gazetteer" | "crf+gazetteer" ...

    @property
    def count(self) -> int:
        return len(self.mentions)
