"""Readiness rules (pure): stalled = input waiting and no progress for too long."""

from __future__ import annotations

from streams.ops import Health


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_ready_until_input_waits_without_progress() -> None:
    clock = Clock()
    health = Health("index", stall_after_s=60, clock=clock)
    assert health.report()[0] is True  # nothing known yet: not a reason to refuse traffic
    health.lag = 0
    clock.now += 600
    assert health.report()[0] is True  # idle with nothing to do is fine
    health.lag = 42
    assert health.report()[0] is False and health.report()[1]["stalled"] is True
    health.progress()
    assert health.report()[0] is True
    clock.now += 59
    assert health.report()[0] is True
    clock.now += 2
    assert health.report()[1]["stalled"] is True


def test_a_failing_dependency_makes_it_unready_until_it_recovers() -> None:
    health = Health("index", stall_after_s=60, clock=Clock())
    health.dependency("elasticsearch", "ConnectionError: refused")
    ok, report = health.report()
    assert ok is False and report["problems"] == {"elasticsearch": "ConnectionError: refused"}
    health.dependency("elasticsearch", None)
    assert health.report()[0] is True
