"""A faust worker used by test_faust_roundtrip: RawArticle in, Article out, via the real codecs.

Run as ``python -m tests.integration.faust_relay worker``; topic names come from
NEWSFLOW_TEST_IN / NEWSFLOW_TEST_OUT (test-only variables).
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from streams import topics
from streams.app import contract_topic, create_app
from streams.schema import Article, LanguageInfo, PipelineInfo, RawArticle, StageStamp
from streams.settings import Settings

settings = Settings()
app = create_app(settings, app_id=f"test-relay-{os.environ['NEWSFLOW_TEST_IN']}")
source = contract_topic(app, topics.RAW, settings, name=os.environ["NEWSFLOW_TEST_IN"])
sink = contract_topic(app, topics.ENRICHED, settings, name=os.environ["NEWSFLOW_TEST_OUT"])


@app.agent(source)
async def relay(stream):  # type: ignore[no-untyped-def]
    async for key, raw in stream.items():
        assert isinstance(raw, RawArticle), type(raw)
        article = Article(
            article_id=raw.article_id,
            source=raw.source,
            language=LanguageInfo(code=raw.source.language_hint, confidence=0.5, method="declared"),
            pipeline=PipelineInfo(
                stages=(
                    *raw.pipeline.stages,
                    StageStamp(stage="relay", at=datetime.now(UTC), version="test"),
                )
            ),
        )
        await sink.send(key=key, value=article)


if __name__ == "__main__":
    app.main()
