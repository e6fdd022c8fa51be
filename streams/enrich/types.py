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
    text: str = ""  # this mention's own surface: fields[field][start:end]


@dataclass(frozen=True)
class FoundEntity:
    text: str  # surface form of the first mention (exactly the original substring)
    type: str  # "PER" | "ORG" | "LOC" | "MISC"
    normalized: str  # aggregation key (Arabic: clitics/article split off, letters unified)
    mentions: tuple[Mention, ...]
    confidence: float  # [0, 1]
    method: str  # "crf" | "gazetteer" | "crf+gazetteer" ...
    # Display name as written: the most frequent full surface form of the mentions, attached
    # clitics (و ب ل ك ف) removed; ال, ة, أ/إ/آ, ى kept as in the text. "" = use ``text``.
    name: str = ""
    # Grouping/matching key (Arabic normalisation lives only here); "" = ``normalized``.
    key: str = ""
    id: str | None = None  # stable link id (``linking.link``), e.g. "country:SY"
    link_confidence: float | None = None
    facet: bool = True  # passes the per-language confidence threshold -> summary facets

    def __post_init__(self) -> None:
        if not self.name:
            object.__setattr__(self, "name", self.text)
        if not self.key:
            object.__setattr__(self, "key", self.normalized)

    @property
    def count(self) -> int:
        return len(self.mentions)
