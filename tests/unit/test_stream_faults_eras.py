"""TopicEras: which era of an input topic a record is from, and when to rewind the new topic."""

from __future__ import annotations

from dataclasses import dataclass

from streams.stages.eras import REWIND_WITHIN_S, TopicEras


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_first_sight_is_the_current_era_and_nothing_is_rewound() -> None:
    eras = TopicEras(["in"])
    assert eras.observe({"in": "id-1"}) == []
    assert eras.current("in", 0)
    assert eras.due([TP("in", 0)]) == {}


def test_deleted_then_recreated_tags_records_in_hand_old_and_rewinds_once() -> None:
    eras = TopicEras(["in"])
    eras.observe({"in": "id-1"})
    tagged = eras.epoch("in")
    said = eras.observe({"in": None})
    assert "deleted" in said[0] and eras.missing() == ["in"]
    assert not eras.current("in", tagged)  # in hand at the deletion: never acked
    assert eras.due([]) == {}  # nothing assigned yet (the rebalance that drops the topic)
    said = eras.observe({"in": "id-2"})
    assert "exists again" in said[0] and eras.missing() == []
    before = eras.epoch("in")
    assert eras.due([TP("in", 0), TP("in", 1), TP("other", 0)]) == {
        "in": [TP("in", 0), TP("in", 1)]
    }
    assert not eras.current("in", before)  # fetched before the rewind: read again
    assert eras.due([TP("in", 0)]) == {}  # once: later assignments are ordinary


def test_replaced_between_two_looks_is_seen_by_its_new_id() -> None:
    eras = TopicEras(["in"])
    eras.observe({"in": "id-1"})
    tagged = eras.epoch("in")
    said = eras.observe({"in": "id-2"})
    assert "replaced" in said[0]
    assert not eras.current("in", tagged)
    assert eras.due([TP("in", 2)]) == {"in": [TP("in", 2)]}


def test_a_rewind_not_taken_in_time_lapses() -> None:
    clock = Clock()
    eras = TopicEras(["in"], clock=clock)
    eras.observe({"in": "id-1"})
    eras.observe({"in": "id-2"})
    clock.now = REWIND_WITHIN_S + 1  # the partitions went to other workers meanwhile
    assert eras.due([]) == {}
    assert eras.due([TP("in", 0)]) == {}


def test_unknown_topics_are_ignored() -> None:
    eras = TopicEras(["in"])
    assert eras.observe({"elsewhere": "x"}) == []
    assert eras.current("elsewhere", 0)
