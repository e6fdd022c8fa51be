"""Settings: env names, nesting, secrets."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from streams.settings import Settings


def test_nested_env_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_INFRA__ES_HEAP", "2g")
    monkeypatch.setenv("NEWSFLOW_INFRA__KAFKA_PORT", "19092")
    monkeypatch.setenv("NEWSFLOW_TOPICS__PARTITIONS", "12")
    s = Settings()
    assert (s.infra.es_heap, s.infra.kafka_port, s.topics.partitions) == ("2g", 19092, 12)


def test_secret_is_not_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_ELASTIC__PASSWORD", "hunter2")
    s = Settings()
    assert "hunter2" not in repr(s) and "hunter2" not in str(s.model_dump())
    assert s.elastic.password is not None and s.elastic.password.get_secret_value() == "hunter2"


def test_bad_values_fail_clearly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_TOPICS__PARTITIONS", "0")
    with pytest.raises(ValidationError, match="partitions"):
        Settings()


def test_settings_are_frozen() -> None:
    s = Settings()
    with pytest.raises(ValidationError):
        s.kafka = s.kafka  # type: ignore[misc]


def test_retry_and_batching_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_RETRY__INITIAL_S", "0.1")
    monkeypatch.setenv("NEWSFLOW_RETRY__MAX_S", "5")
    monkeypatch.setenv("NEWSFLOW_INDEX__BATCH_IDLE_S", "0")
    monkeypatch.setenv("NEWSFLOW_ENRICH__WORKERS", "3")
    s = Settings()
    assert (s.retry.initial_s, s.retry.max_s) == (0.1, 5.0)
    assert (s.index.batch_idle_s, s.enrich.batch_idle_s, s.enrich.workers) == (0.0, 0.01, 3)
    monkeypatch.setenv("NEWSFLOW_INDEX__RETRY_INITIAL_S", "0.1")  # moved to the retry section
    with pytest.raises(ValidationError, match="retry_initial_s"):
        Settings()


def test_run_starts_enrich_workers_per_core(monkeypatch: pytest.MonkeyPatch) -> None:
    from streams.commands import run

    monkeypatch.setattr(run.os, "cpu_count", lambda: 4)
    assert run.enrich_workers(Settings()) == 4
    monkeypatch.setenv("NEWSFLOW_ENRICH__WORKERS", "1")
    assert run.enrich_workers(Settings()) == 1
    monkeypatch.setenv("NEWSFLOW_ENRICH__WORKERS", "32")
    monkeypatch.setenv("NEWSFLOW_TOPICS__PARTITIONS", "6")
    assert run.enrich_workers(Settings()) == 6  # more would sit idle
