"""Every Kafka topic of newsflow, declared once.

Stages never name their neighbours: they ask this module for their input and output topics.
Keys are always ``article_id`` (UTF-8), so one article stays in one partition, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TypeVar

from streams.errors import PoisonArticle
from streams.schema import Article, ContractModel, ExtractedArticle, RawArticle, encode
from streams.settings import TopicSettings

DAY_MS = 24 * 3600 * 1000
# Largest record a topic accepts; producers are configured to match, and a stage dead-letters
# an output that would not fit instead of retrying it forever.
MAX_RECORD_BYTES = 8 * 1024 * 1024
# Room for a record's headers and framing inside that limit.
MAX_ENCODED_VALUE = MAX_RECORD_BYTES - 64 * 1024


M = TypeVar("M", bound=ContractModel)


def fits(record: M, what: str) -> M:
    """``record`` if its encoded value fits in a topic; ``PoisonArticle`` otherwise."""
    if len(encode(record)) > MAX_ENCODED_VALUE:
        raise PoisonArticle(f"{what} record exceeds {MAX_RECORD_BYTES} bytes")
    return record


@dataclass(frozen=True)
class TopicSpec:
    name: str
    description: str
    value_model: type[ContractModel] | None  # None: raw bytes (dead letters keep the original)
    dead_letter: bool = False

    def topic_name(self, settings: TopicSettings) -> str:
        """The real topic name: the declared name behind the configured namespace."""
        return settings.namespace + self.name

    def config(self, settings: TopicSettings) -> dict[str, str]:
        days = settings.dlq_retention_days if self.dead_letter else settings.retention_days
        return {
            "retention.ms": str(days * DAY_MS),
            "cleanup.policy": "delete",
            "compression.type": "producer",
            "max.message.bytes": str(MAX_RECORD_BYTES),
            # With acks=all a write needs this many in-sync copies: 2 of 3 survives one broker.
            "min.insync.replicas": str(
                min(settings.min_insync_replicas, settings.replication_factor)
            ),
        }

    def partitions(self, settings: TopicSettings) -> int:
        # Dead letters are rare; a few partitions are plenty and keep replay simple.
        return min(3, settings.partitions) if self.dead_letter else settings.partitions


RAW = TopicSpec("news.articles.raw.v1", "Articles as the connector normalised them.", RawArticle)
EXTRACTED = TopicSpec(
    "news.articles.extracted.v1",
    "Raw articles plus the linked page's main text and extraction status (summary kept).",
    ExtractedArticle,
)
ENRICHED = TopicSpec(
    "news.articles.enriched.v1",
    "Articles with language and entities: the public, versioned contract.",
    Article,
)
DLQ_EXTRACT = TopicSpec("news.dlq.extract", "Raw records extraction could not read.", None, True)
DLQ_ENRICH = TopicSpec(
    "news.dlq.enrich", "Extracted records enrichment could not process.", None, True
)
DLQ_INDEX = TopicSpec("news.dlq.index", "Enriched records indexing could not write.", None, True)

ALL: tuple[TopicSpec, ...] = (RAW, EXTRACTED, ENRICHED, DLQ_EXTRACT, DLQ_ENRICH, DLQ_INDEX)
# What the dead-letter indexer (the Kibana ops view) reads: every dead-letter topic.
DEAD_LETTER_TOPICS: tuple[TopicSpec, ...] = tuple(spec for spec in ALL if spec.dead_letter)

# The wiring: which stage reads what, writes what, and dead-letters where. The only place that
# names a stage's neighbours; the stage declarations (streams/stages/<stage>.py) read it, and
# streams/stages/registry.py lists which declarations `newsflow worker NAME` can start.
STAGES: dict[str, dict[str, TopicSpec]] = {
    "extract": {"input": RAW, "output": EXTRACTED, "dead_letter": DLQ_EXTRACT},
    "enrich": {"input": EXTRACTED, "output": ENRICHED, "dead_letter": DLQ_ENRICH},
    "index": {"input": ENRICHED, "dead_letter": DLQ_INDEX},
}
