"""The stage runner under faust's ``agent.test_context()`` (no broker): dead letters with real
attempt counts, exactly one counted outcome per record, acks only after confirmed sends,
retries of sends and of ``RetryableError``, the crash guard, and batches that close on idle."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import faust
import pytest
from prometheus_client import REGISTRY

from streams import topics
from streams.errors import PoisonArticle, RetryableError
from streams.schema import RawArticle, decode, encode
from streams.settings import RetrySettings, Settings
from streams.stages import runner
from streams.stages.runner import BatchPolicy, Done, Forward, Outcome, Poison, Record, Stage
from tests.conftest import make_raw

Crashes = list[BaseException]
FAST_RETRY = {"NEWSFLOW_RETRY__INITIAL_S": "0.001", "NEWSFLOW_RETRY__MAX_S": "0.005"}


class FakeTopic:
    """Stands in for a faust topic: ``send`` returns a delivery future; the first ``fail``
    deliveries fail (as a broker that went away would)."""

    def __init__(self, fail: int = 0) -> None:
        self.fail = fail
        self.attempts = 0
        self.sent: list[tuple[bytes | None, Any, dict[str, str]]] = []

    async def send(
        self, key: bytes | None = None, value: Any = None, headers: Any = None
    ) -> asyncio.Future[None]:
        self.attempts += 1
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        if self.fail > 0:
            self.fail -= 1
            future.set_exception(ConnectionError("broker went away"))
        else:
            parsed = {k: v.decode() for k, v in headers or ()}
            self.sent.append((key, value, parsed))
            future.set_result(None)
        return future


def decode_raw(record: Record) -> RawArticle:
    return decode(RawArticle, record.value)


def forward_all(raws: list[RawArticle]) -> list[Outcome]:
    return [Forward(raw, raw.article_id.encode()) for raw in raws]


def stage(
    process: Callable[[Any], Sequence[Outcome] | Awaitable[Sequence[Outcome]]] = forward_all,
    batch: BatchPolicy | None = None,
    **kwargs: Any,
) -> Stage:
    return Stage(
        name="unit",
        input=(topics.RAW,),
        output=topics.ENRICHED,
        dead_letter=topics.DLQ_ENRICH,
        batch=batch or BatchPolicy(10, 0.02, 1.0),
        decode=decode_raw,
        process=process,
        done="enriched",
        **kwargs,
    )


def count(outcome: str, stage_name: str = "unit") -> float:
    value = REGISTRY.get_sample_value(
        "newsflow_articles_total", {"stage": stage_name, "outcome": outcome}
    )
    return value or 0.0


def retries(reason: str) -> float:
    value = REGISTRY.get_sample_value("newsflow_retries_total", {"stage": "unit", "reason": reason})
    return value or 0.0


@pytest.fixture
def fast(monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key, value in FAST_RETRY.items():
        monkeypatch.setenv(key, value)
    return Settings()


async def until(predicate: Callable[[], bool], timeout_s: float = 5.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.005)


def run_agent(
    settings: Settings,
    declared: Stage,
    body: Callable[[Any, FakeTopic, FakeTopic, list[BaseException]], Awaitable[None]],
    output: FakeTopic | None = None,
    dlq: FakeTopic | None = None,
) -> list[BaseException]:
    """Run ``body(agent, output, dlq, crashes)`` inside the agent's test context."""
    app = faust.App(f"test-runner-{time.monotonic_ns()}", store="memory://")
    crashes: list[BaseException] = []

    async def crash(exc: BaseException) -> None:
        crashes.append(exc)

    app.crash = crash  # type: ignore[method-assign,assignment]
    out, dead = output or FakeTopic(), dlq or FakeTopic()
    agent = runner.register(app, declared, settings, output=out, dead_letters=dead)

    async def main() -> None:
        async with agent.test_context() as tested:
            await body(tested, out, dead, crashes)

    asyncio.run(main())
    return crashes


def raw_bytes(n: int) -> tuple[bytes, bytes]:
    raw = make_raw(n)
    return raw.article_id.encode(), encode(raw)


class FakeMessage:
    """What the runner reads of a faust message: topic, partition, offset, key, value."""

    def __init__(self, n: int, value: tuple[bytes, bytes] | None = None) -> None:
        self.topic, self.partition, self.offset, self.headers = "in", 0, n, ()
        self.key, self.value = value or raw_bytes(n)


class FakeEvent:
    def __init__(self, n: int, value: tuple[bytes, bytes] | None = None) -> None:
        self.message = FakeMessage(n, value)


class AckStream:
    """A stream whose acks are recorded (offsets), for tests that drive ``_finish``."""

    def __init__(self) -> None:
        self.acked: list[int] = []

    async def ack(self, event: FakeEvent) -> bool:
        self.acked.append(event.message.offset)
        return True


def test_poison_goes_to_the_dead_letters_with_attempts_and_one_outcome_per_record(
    fast: Settings,
) -> None:
    before = (count("enriched"), count("dead_lettered"))

    async def body(agent: Any, out: FakeTopic, dlq: FakeTopic, _c: list[BaseException]) -> None:
        events = []
        for value in (raw_bytes(1), (b"bad", b'{"schema_version": "1.0"}'), raw_bytes(2)):
            events.append(await agent.put(key=value[0], value=value[1], wait=False))
        await until(lambda: all(e.message.acked for e in events))
        assert [key for key, _v, _h in out.sent] == [raw_bytes(1)[0], raw_bytes(2)[0]]
        assert len(dlq.sent) == 1
        key, value, headers = dlq.sent[0]
        assert (key, value) == (b"bad", b'{"schema_version": "1.0"}')  # the original bytes
        assert headers["newsflow-stage"] == "unit"
        assert headers["newsflow-error-class"] == "ValidationError"
        assert headers["newsflow-attempts"] == "1"
        assert headers["newsflow-source-offset"] == str(events[1].message.offset)

    assert run_agent(fast, stage(), body) == []
    assert (count("enriched") - before[0], count("dead_lettered") - before[1]) == (2, 1)


def test_retryable_error_is_retried_and_attempts_are_counted(fast: Settings) -> None:
    calls: list[int] = []

    def flaky(raws: list[RawArticle]) -> list[Outcome]:
        calls.append(len(raws))
        if len(calls) < 3:
            raise RetryableError("model server busy")
        return [Poison(PoisonArticle("never fits")), *forward_all(raws[1:])]

    before = retries("process")

    async def body(agent: Any, out: FakeTopic, dlq: FakeTopic, _c: list[BaseException]) -> None:
        events = [await agent.put(key=k, value=v, wait=False) for k, v in map(raw_bytes, range(3))]
        await until(lambda: all(e.message.acked for e in events))
        assert len(out.sent) == 2 and len(dlq.sent) == 1
        headers = dlq.sent[0][2]
        assert headers["newsflow-error-class"] == "PoisonArticle"
        assert headers["newsflow-attempts"] == "3"  # three process calls really happened

    assert run_agent(fast, stage(flaky), body) == []
    assert sum(calls) == 3 * 3 and retries("process") - before == 2


def test_async_process_and_sink_reported_attempts(fast: Settings) -> None:
    async def write(raws: list[RawArticle]) -> list[Outcome]:
        await asyncio.sleep(0.01)  # network I/O on the event loop
        return [Done(), Poison(PoisonArticle("status 400: mapper_parsing_exception"), attempts=4)]

    declared = Stage(
        name="unit-sink",
        input=(topics.ENRICHED,),
        dead_letter=topics.DLQ_INDEX,
        batch=BatchPolicy(10, 0.05, 1.0),
        decode=decode_raw,
        process=write,
        done="indexed",
    )
    before = (count("indexed", "unit-sink"), count("dead_lettered", "unit-sink"))

    async def body(agent: Any, out: FakeTopic, dlq: FakeTopic, _c: list[BaseException]) -> None:
        events = [await agent.put(key=k, value=v, wait=False) for k, v in map(raw_bytes, range(2))]
        await until(lambda: all(e.message.acked for e in events))
        assert out.sent == [] and dlq.sent[0][2]["newsflow-attempts"] == "4"

    assert run_agent(fast, declared, body) == []
    after = (count("indexed", "unit-sink"), count("dead_lettered", "unit-sink"))
    assert (after[0] - before[0], after[1] - before[1]) == (1, 1)


def test_sends_are_retried_and_acks_wait_for_them(fast: Settings) -> None:
    before = retries("produce")
    out = FakeTopic(fail=2)

    async def body(agent: Any, out: FakeTopic, dlq: FakeTopic, _c: list[BaseException]) -> None:
        event = await agent.put(key=raw_bytes(7)[0], value=raw_bytes(7)[1], wait=False)
        await until(lambda: event.message.acked)
        assert out.attempts == 3 and [k for k, _v, _h in out.sent] == [raw_bytes(7)[0]]

    assert run_agent(fast, stage(), body, output=out) == []
    assert retries("produce") - before == 2


def test_crash_guard_does_not_ack(fast: Settings) -> None:
    def broken(raws: list[RawArticle]) -> list[Outcome]:
        raise KeyError("a bug")

    before = count("enriched")

    async def body(
        agent: Any, out: FakeTopic, dlq: FakeTopic, crashes: list[BaseException]
    ) -> None:
        event = await agent.put(key=raw_bytes(1)[0], value=raw_bytes(1)[1], wait=False)
        await until(lambda: bool(crashes))
        await asyncio.sleep(0.05)
        assert not event.message.acked  # redelivered after the restart
        assert out.sent == [] and dlq.sent == []

    crashes = run_agent(fast, stage(broken), body)
    assert [type(c) for c in crashes] == [KeyError]
    assert count("enriched") == before


def test_wrong_number_of_outcomes_is_a_crash_not_a_loss(fast: Settings) -> None:
    async def body(
        agent: Any, out: FakeTopic, dlq: FakeTopic, crashes: list[BaseException]
    ) -> None:
        event = await agent.put(key=raw_bytes(1)[0], value=raw_bytes(1)[1], wait=False)
        await until(lambda: bool(crashes))
        assert not event.message.acked

    crashes = run_agent(fast, stage(lambda raws: []), body)
    assert "outcomes" in str(crashes[0])


def test_batches_close_when_the_input_goes_idle(fast: Settings) -> None:
    sizes: list[int] = []
    seen_at: list[float] = []

    def record(raws: list[RawArticle]) -> list[Outcome]:
        sizes.append(len(raws))
        seen_at.append(time.monotonic())
        return forward_all(raws)

    # A long cap: only the idle rule can close these batches quickly.
    declared = stage(record, batch=BatchPolicy(50, 0.05, 30.0))

    async def body(agent: Any, out: FakeTopic, dlq: FakeTopic, _c: list[BaseException]) -> None:
        put_at = time.monotonic()
        first = await agent.put(key=raw_bytes(1)[0], value=raw_bytes(1)[1], wait=False)
        await until(lambda: first.message.acked, timeout_s=2.0)
        assert sizes == [1] and seen_at[0] - put_at < 1.0  # alone, not after the 30 s cap
        burst = [
            await agent.put(key=k, value=v, wait=False) for k, v in map(raw_bytes, range(10, 30))
        ]
        await until(lambda: all(e.message.acked for e in burst))
        assert sum(sizes[1:]) == 20 and len(sizes) <= 3  # what was ready went together

    assert run_agent(fast, declared, body) == []


def test_full_batches_split_at_size_and_keep_order(fast: Settings) -> None:
    sizes: list[int] = []

    def record(raws: list[RawArticle]) -> list[Outcome]:
        sizes.append(len(raws))
        return forward_all(raws)

    async def body(agent: Any, out: FakeTopic, dlq: FakeTopic, _c: list[BaseException]) -> None:
        burst = [await agent.put(key=k, value=v, wait=False) for k, v in map(raw_bytes, range(25))]
        await until(lambda: all(e.message.acked for e in burst))
        assert [k for k, _v, _h in out.sent] == [raw_bytes(i)[0] for i in range(25)]

    assert run_agent(fast, stage(record, batch=BatchPolicy(10, 0.05, 30.0)), body) == []
    assert max(sizes) <= 10 and sum(sizes) == 25


def test_a_failed_send_goes_again_with_the_later_records_of_its_key(fast: Settings) -> None:
    class FailSecond(FakeTopic):
        async def send(
            self, key: bytes | None = None, value: Any = None, headers: Any = None
        ) -> asyncio.Future[None]:
            self.fail = 1 if self.attempts == 1 else 0  # the second send of all fails once
            return await super().send(key, value, headers)

    topic = FailSecond()
    declared = stage()
    r = runner.Runner(declared, RetrySettings(initial_s=0.001, max_s=0.002), output=topic)
    records: list[tuple[bytes | None, Any, Any]] = [
        (b"a", 1, None),
        (b"b", 2, None),
        (b"c", 3, None),
        (b"b", 4, None),
    ]
    asyncio.run(r._send(topic, records, "produce"))
    # b/2 failed: it is re-sent, and so is b/4 (after it), so b's last value stays 4.
    sent = [(k, v) for k, v, _h in topic.sent]
    assert sent == [(b"a", 1), (b"c", 3), (b"b", 4), (b"b", 2), (b"b", 4)]


def test_each_batch_is_committed_right_after_its_acks(fast: Settings) -> None:
    """A killed worker leaves at most the batch it was finishing (issue 14.7): the runner
    commits after acking every batch, not only at faust's commit tick."""

    stream = AckStream()
    commits: list[list[int]] = []

    async def commit() -> None:
        commits.append(list(stream.acked))

    r = runner.Runner(
        stage(), fast.retry, output=FakeTopic(), dead_letters=FakeTopic(), commit=commit
    )

    async def main() -> None:
        for first in (0, 3):
            await r._finish(stream, r._begin([FakeEvent(n) for n in range(first, first + 3)]))

    asyncio.run(main())
    assert commits == [[0, 1, 2], [0, 1, 2, 3, 4, 5]]


def test_a_batch_retrying_when_the_worker_stops_is_released_unacked(fast: Settings) -> None:
    """SIGTERM while Elasticsearch refuses writes: faust's shutdown waits for every record in
    hand to be acked, so a batch retrying forever kept the worker from exiting. It is given up
    instead: nothing acked or committed (redelivered after the restart), every event released."""

    attempts = {"n": 0}

    def refuse(raws: list[RawArticle]) -> list[Outcome]:
        attempts["n"] += 1
        raise RetryableError("403 from Elasticsearch")

    stream, released, commits = AckStream(), [], []
    state = {"stopping": False}

    async def commit() -> None:
        commits.append(1)

    r = runner.Runner(
        stage(refuse),
        RetrySettings(initial_s=5.0, max_s=30.0),  # long waits: the stop must cut them short
        output=FakeTopic(),
        dead_letters=FakeTopic(),
        commit=commit,
        release=lambda event: released.append(event.message.offset),
        stopping=lambda: state["stopping"],
    )

    async def main() -> float:
        task = asyncio.ensure_future(r._finish(stream, r._begin([FakeEvent(n) for n in range(4)])))
        await until(lambda: attempts["n"] >= 1)
        await asyncio.sleep(0.1)
        assert not task.done()  # still retrying while the worker runs
        state["stopping"] = True
        began = time.monotonic()
        await asyncio.wait_for(task, 2.0)
        return time.monotonic() - began

    took = asyncio.run(main())
    assert took < 1.0
    assert stream.acked == [] and commits == []
    assert released == [0, 1, 2, 3]


def test_a_stage_retrying_inside_process_is_given_up_after_the_grace(
    fast: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The index stage retries refused bulks inside ``process``: once the worker stops it gets
    ``STOP_GRACE_S`` to finish, then the batch is released unacked; a batch that finishes
    within the grace is acked as usual."""
    monkeypatch.setattr(runner, "STOP_GRACE_S", 0.3)

    async def forever(raws: list[RawArticle]) -> list[Outcome]:
        while True:  # as write_until_settled while Elasticsearch answers 401
            await asyncio.sleep(0.05)

    async def slow_but_done(raws: list[RawArticle]) -> list[Outcome]:
        await asyncio.sleep(0.1)
        return [Done() for _ in raws]

    state = {"stopping": True}
    for process, acked in ((forever, []), (slow_but_done, [0, 1])):
        stream, released = AckStream(), list[int]()

        def release(event: FakeEvent, out: list[int] = released) -> None:
            out.append(event.message.offset)

        r = runner.Runner(
            stage(process),
            fast.retry,
            output=FakeTopic(),
            dead_letters=FakeTopic(),
            release=release,
            stopping=lambda: state["stopping"],
        )

        async def main(r: runner.Runner = r, stream: AckStream = stream) -> None:
            batch = r._begin([FakeEvent(0), FakeEvent(1)])
            await asyncio.wait_for(r._finish(stream, batch), 3.0)

        asyncio.run(main())
        assert stream.acked == acked
        assert released == ([] if acked else [0, 1])
