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
