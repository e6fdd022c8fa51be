"""The public record contract of newsflow, v1 (``news.articles.*.v1`` topics).

Frozen pydantic v2 models, one section per stage. Connectors import only this package, so it
must never import faust or any other stream-processing code.
"""

from streams.schema.models import (
    SCHEMA_VERSION,
    Article,
    ContractModel,
    Entity,
    EntityMention,
    ExtractedArticle,
    ExtractionInfo,
    ExtractionStatus,
    FeedRef,
    FullTextPolicy,
    LanguageInfo,
    PagePolicy,
    PipelineInfo,
    RawArticle,
    Source,
    StageStamp,
    decode,
    encode,
)

__all__ = [
    "SCHEMA_VERSION",
    "Article",
    "ContractModel",
    "Entity",
    "EntityMention",
    "ExtractedArticle",
    "ExtractionInfo",
    "ExtractionStatus",
    "FeedRef",
    "FullTextPolicy",
    "LanguageInfo",
    "PagePolicy",
    "PipelineInfo",
    "RawArticle",
    "Source",
    "StageStamp",
    "decode",
    "encode",
]
