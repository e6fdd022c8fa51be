"""The worker's consumer-group settings reach faust (issue 14.7 and the assignor log)."""

from __future__ import annotations

import pytest

from streams.app import create_app
from streams.settings import Settings


def test_session_timeout_and_heartbeat_reach_faust_and_the_leader_topic_is_off(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSFLOW_FAUST__SESSION_TIMEOUT_S", "12")
    monkeypatch.setenv("NEWSFLOW_FAUST__HEARTBEAT_INTERVAL_S", "3")
    conf = create_app(Settings(), app_id="unit-delivery").conf
    assert conf.broker_session_timeout == 12.0
    assert conf.broker_heartbeat_interval == 3.0
    assert conf.topic_disable_leader is True  # no never-created <group>-__assignor-__leader


def test_defaults_drop_a_dead_worker_within_seconds() -> None:
    faust = Settings().faust
    assert faust.session_timeout_s <= 10 and faust.heartbeat_interval_s * 3 <= 10


def test_a_heartbeat_slower_than_a_third_of_the_session_is_refused(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSFLOW_FAUST__SESSION_TIMEOUT_S", "10")
    monkeypatch.setenv("NEWSFLOW_FAUST__HEARTBEAT_INTERVAL_S", "5")
    with pytest.raises(ValueError, match="a third"):
        create_app(Settings(), app_id="unit-delivery")
