"""Integration fixtures: an Elasticsearch alias, index prefix and template of the test's own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from streams.settings import Settings
from streams.sinks.elastic import make_client
from tests.integration import stage_helpers as h
from tests.integration.secure_stack import secure_stack  # noqa: F401 - session fixture

StageSetup = Callable[..., tuple[dict[str, str], Settings]]


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


@pytest.fixture
def stage_setup(
    kafka: Settings,
    isolated_es: tuple[Settings, Elasticsearch],
    unique: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> StageSetup:
    """``stage_setup(**env)``: isolated_es's alias and prefix (and its clean-up) plus topics of
    the test's own namespace, bootstrapped, and the env a worker subprocess runs with (extra
    ``NEWSFLOW_*`` values given as keywords)."""

    def make(**extra: str) -> tuple[dict[str, str], Settings]:
        env = {**h.isolated_env(kafka, unique, tmp_path), **extra}
        settings = h.settings_for(env, monkeypatch)
        assert settings.elastic == isolated_es[0].elastic
        h.bootstrap_isolated(settings)
        return env, settings

    return make
