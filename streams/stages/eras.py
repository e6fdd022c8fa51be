"""Input topics deleted and recreated under a running worker: read the new topic from its start.

Kafka keeps a topic's name when it is deleted and created again, but not its records, and the
new topic's offsets start at 0 again. Whatever the worker still knows of the old topic then
points into the new one: its fetch positions and faust's read offsets (faust drops every record
below the read offset as "already seen"), its acked-but-uncommitted offsets, and offsets it
commits after the recreation (a worker draining its batches through the rebalance the deletion
causes commits them to the new topic). Each of them silently skips records of the new topic --
measured in tests/integration/test_stream_faults_topic.py: with the deletion landing mid-bulk,
81 of the new topic's 150 records were never indexed.

``TopicEras`` notices a replacement by the topic's id (Kafka >= 2.8 gives every topic a UUID;
the name stays, the id changes) and calls each observation an era:

- records already in the worker's hands when the topic vanished or changed id are of an old
  era: the stage may finish them, but they are never acked (their offsets belong to a topic
  that no longer exists), only released so that faust does not wait for them;
- the first time partitions of the new topic are assigned to the worker after the replacement
  (once no rebalance is under way: the one that ends would seek them to the group's possibly
  stale committed offsets again), they are rewound to offset 0 and faust's bookkeeping for
  them is cleared, whatever offsets the group holds for them: the new topic is read from its
  start. Records the worker had fetched of the new topic before the rewind are read again
  (at-least-once, no loss).

Records of the deleted topic that had not been read are gone with it: the deletion itself lost
them, and nothing can bring them back.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

log = logging.getLogger("newsflow.stages")

# A pending rewind is dropped after this long without partitions of the topic assigned here
# (they went to other workers, which rewind them): later assignments are ordinary ones. Long
# enough for the rebalance that follows a recreation, which waits for the batches in hand.
REWIND_WITHIN_S = 300.0


class TopicEras:
    """Per input topic: its last seen id, the era records are tagged with, pending rewinds."""

    def __init__(self, topics: Iterable[str], clock: Callable[[], float] = time.monotonic):
        self.clock = clock
        self._ids: dict[str, str | None] = {}  # last seen topic id; None = missing
        self._epoch: dict[str, int] = dict.fromkeys(topics, 0)
        self._rewind: dict[str, float] = {}  # topic -> when its replacement was seen

    @property
    def topics(self) -> list[str]:
        return list(self._epoch)

    def epoch(self, topic: str) -> int:
        return self._epoch.get(topic, 0)

    def current(self, topic: str, epoch: int) -> bool:
        """Is a record tagged ``epoch`` when it arrived still of its topic's current era?"""
        return self._epoch.get(topic, 0) == epoch

    def missing(self) -> list[str]:
        return sorted(t for t, tid in self._ids.items() if tid is None and t in self._epoch)

    def observe(self, ids: Mapping[str, str | None]) -> list[str]:
        """Record the topics' ids now (None = no such topic); what changed, as sentences."""
        said = []
        for topic, tid in ids.items():
            if topic not in self._epoch:
                continue
            if topic not in self._ids:  # first sight: whatever it is, it is the current era
                self._ids[topic] = tid
                continue
            old = self._ids[topic]
            if tid == old:
                continue
            self._ids[topic] = tid
            if old is not None:  # deleted or replaced: records in hand are of the old topic
                self._epoch[topic] += 1
                said.append(
                    f"input topic {topic} was deleted (id {old}); records not yet read from it "
                    "are lost with it"
                    if tid is None
                    else f"input topic {topic} was replaced (id {old} -> {tid})"
                )
            if tid is not None:
                self._rewind[topic] = self.clock()
                said.append(f"input topic {topic} exists again (id {tid}): read from its start")
        return said

    def due(self, assigned: Iterable[Any]) -> dict[str, list[Any]]:
        """The assigned partitions (``.topic``) to rewind now, per topic; each topic's
        rewind happens once (and records in hand become of an old era)."""
        now = self.clock()
        out: dict[str, list[Any]] = {}
        for tp in assigned:
            if tp.topic in self._rewind:
                out.setdefault(tp.topic, []).append(tp)
        for topic in list(self._rewind):
            if topic in out:
                del self._rewind[topic]
                self._epoch[topic] += 1  # fetched before the rewind: read again, never acked
            elif now - self._rewind[topic] > REWIND_WITHIN_S:
                del self._rewind[topic]
        return out


class Describer:
    """Topic name -> topic id (None when the broker does not know the topic), through one
    admin client kept open (a new one every look would reconnect every 2 s)."""

    def __init__(self, settings: Any) -> None:
        self.settings = settings
        self._admin: Any = None

    def __call__(self, names: list[str]) -> dict[str, str | None]:
        from kafka import KafkaAdminClient

        from streams.kafka_clients import client_options

        if self._admin is None:
            self._admin = KafkaAdminClient(
                **client_options(self.settings.kafka),
                client_id=f"{self.settings.kafka.client_id}-eras",
                request_timeout_ms=10_000,
            )
        try:
            found = {
                t["name"]: str(t.get("topic_id"))
                for t in self._admin.describe_topics(names)
                if t.get("error_code", 0) == 0 and t.get("topic_id")
            }
        except Exception:
            self.close()  # reconnect next time
            raise
        return {name: found.get(name) for name in names}

    def close(self) -> None:
        if self._admin is not None:
            admin, self._admin = self._admin, None
            admin.close()


def release(consumer: Any, event: Any) -> None:
    """Let faust forget a record of an old era without acking it (no offset recorded): a
    revocation waiting for the worker's unacked records must not wait for it."""
    message = event.message
    message.acked = True  # faust's own ack of it is a no-op from now on
    consumer._unacked_messages.discard(message)


async def rewind(consumer: Any, partitions: list[Any]) -> None:
    """Read ``partitions`` from offset 0, forgetting faust's read, acked and committed offsets
    of them (those were the old topic's)."""
    for tp in partitions:
        for book in ("_acked", "_acked_index", "_gap", "_committed_offset", "_read_offset"):
            getattr(consumer, book).pop(tp, None)
        await consumer.seek(tp, 0)


def watch(app: Any, settings: Any, eras: TopicEras, health: Any, interval_s: float) -> None:
    """A faust timer: look at the input topics' ids every ``interval_s`` and rewind."""
    names = eras.topics
    describe = Describer(settings)
    failures = {"n": 0}

    async def look() -> None:
        loop = asyncio.get_running_loop()
        try:
            ids = await loop.run_in_executor(None, describe, names)
        except Exception as exc:  # noqa: BLE001 - the lag sampler reports Kafka trouble
            failures["n"] += 1
            if failures["n"] % 10 == 1:
                log.warning("cannot describe the input topics: %s: %s", type(exc).__name__, exc)
            return
        for sentence in eras.observe(ids):
            log.error("%s", sentence)
        consumer = app.consumer
        # Not while a rebalance is under way: the assignment it ends with seeks every partition
        # to the group's committed offsets (possibly the old topic's), undoing a rewind.
        assigned = () if getattr(app, "rebalancing", False) else consumer.assignment()
        for topic, parts in eras.due(assigned).items():
            await rewind(consumer, parts)
            log.warning(
                "input topic %s: partitions %s rewound to offset 0 (new topic)",
                topic,
                sorted(tp.partition for tp in parts),
            )
        if health is not None:
            gone = eras.missing()
            health.dependency(
                "input", f"input topic(s) {', '.join(gone)} do not exist" if gone else None
            )

    app.timer(interval=interval_s, name="newsflow.input-topic-eras")(look)
