"""Integration fixtures: an Elasticsearch alias, index prefix and template of the test's own."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from elasticsearch import Elasticsearch

from streams.settings import Settings
from streams.sinks.elastic import make_client
from tests.integration.secure_stack import secure_stack  # noqa: F401 - session fixture


@pytest.fixture
def isolated_es(elastic: Settings, unique: str) -> Iterator[tuple[Settings, Elasticsearch]]:
    """Settings with ``test-articles-<unique>`` alias and prefix; indices and template removed
    afterwards (the template is put by the test, usually through ``ensure_elastic``)."""
    settings = elastic.model_copy(
        update={
            "elastic": elastic.elastic.model_copy(
                update={
                    "alias": f"test-articles-{unique}",
                    "index_prefix": f"test-articles-v1-{unique}",
                }
            )
        }
    )
    client = make_client(settings.elastic)
    yield settings, client
    prefix = settings.elastic.index_prefix
    client.indices.delete(index=f"{prefix}-*,{prefix}_r*", ignore_unavailable=True)
    client.options(ignore_status=404).indices.delete_index_template(name=prefix)
    client.close()
