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


def test_runner_never_acks_records_of_a_replaced_topic_and_releases_them() -> None:
    """Records in hand when their topic was replaced are processed, not acked (their offsets
    would be committed onto the new topic), and released so faust does not wait for them."""
    import asyncio

    from streams.settings import RetrySettings
    from streams.stages import runner
    from streams.stages.runner import BatchPolicy, Done, Record, Stage
    from tests.unit.test_runner import AckStream, FakeEvent

    processed: list[int] = []

    def process(items: list[Record]) -> list[Done]:
        processed.extend(r.offset for r in items)
        return [Done() for _ in items]

    stage = Stage(
        name="unit-eras",
        input=(),
        batch=BatchPolicy(10, 0.01, 1.0),
        decode=lambda record: record,
        process=process,
    )
    eras = TopicEras(["in"])
    eras.observe({"in": "id-1"})
    released: list[int] = []
    stream = AckStream()
    r = runner.Runner(
        stage,
        RetrySettings(initial_s=0.001, max_s=0.005),
        eras=eras,
        release=lambda event: released.append(event.message.offset),
    )

    async def main() -> None:
        old = r._begin([FakeEvent(n, (b"k", b"v")) for n in (7, 8)], [eras.epoch("in")] * 2)
        eras.observe({"in": "id-2"})  # replaced while the batch was in hand
        await r._finish(stream, old)
        new = r._begin([FakeEvent(0, (b"k", b"v"))], [eras.epoch("in")])
        await r._finish(stream, new)

    asyncio.run(main())
    assert processed == [7, 8, 0]
    assert released == [7, 8]
    assert stream.acked == [0]
