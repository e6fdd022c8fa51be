"""Dead letters: the original bytes of a record a stage cannot process, with error headers.

Headers (all UTF-8): ``newsflow-stage``, ``newsflow-error-class``, ``newsflow-error-message``
(first 2,000 characters), ``newsflow-attempts``, ``newsflow-source-topic``,
``newsflow-source-partition``, ``newsflow-source-offset``, ``newsflow-failed-at`` (ISO 8601).
`newsflow replay --stage S` re-feeds them to the stage's input topic.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

HEADER_PREFIX = "newsflow-"


@dataclass(frozen=True)
class DeadLetter:
    stage: str
    key: bytes | None
    value: bytes
    error_class: str
    message: str
    attempts: int
    source_topic: str
    source_partition: int
    source_offset: int

    def headers(self, now: datetime | None = None) -> list[tuple[str, bytes]]:
        at = (now or datetime.now(UTC)).isoformat()
        fields = {
            "stage": self.stage,
            "error-class": self.error_class,
            "error-message": self.message[:2000],
            "attempts": str(self.attempts),
            "source-topic": self.source_topic,
            "source-partition": str(self.source_partition),
            "source-offset": str(self.source_offset),
            "failed-at": at,
        }
        return [(HEADER_PREFIX + k, v.encode("utf-8")) for k, v in fields.items()]


def parse_headers(headers: list[tuple[str, bytes]] | None) -> dict[str, str]:
    """The newsflow headers of a dead letter as a plain dict (prefix removed)."""
    return {
        k[len(HEADER_PREFIX) :]: v.decode("utf-8", "replace")
        for k, v in (headers or [])
        if k.startswith(HEADER_PREFIX)
    }
