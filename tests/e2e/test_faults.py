"""Faults injected into the whole running pipeline, with exact counts after recovery.

Real processes (connector, enrich worker, index worker; see ``pipeline.py``) on synthetic
multilingual feeds served locally. After each fault and its recovery the index must hold exactly
the article ids of every feed body served (none missing, none twice across the monthly indices),
every poison record must sit in its dead-letter topic with the ``newsflow-*`` headers, and both
consumer groups must have reached the end of their input topics (no stage stuck).

Killing Elasticsearch or the broker happens on a private stack (own home, free ports), booted in
the background while the tests on the shared stack run; the shared stack is never stopped.
"""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from connectors.feeds import FeedSpec
from streams import topics
from streams.infra.errors import InfraError
from streams.infra.java import find_java_home
from streams.schema import encode
from streams.settings import Settings
from tests.conftest import IN_CI, make_raw
from tests.e2e.pipeline import Pipeline, PrivateStack, Verdict, pipeline, wait_until

pytestmark = pytest.mark.timeout(600)

ENRICHED = topics.ENRICHED.name
DEAD_LETTER_HEADERS = {
    "stage",
    "error-class",
    "error-message",
    "attempts",
    "source-topic",
    "source-partition",
    "source-offset",
    "failed-at",
}


def _stamp(what: str, started: float) -> None:
    print(f"[{time.monotonic() - started:6.1f}s] {what}")


def _assert_settled(pipe: Pipeline, verdict: Verdict, stack: PrivateStack | None = None) -> None:
    services = ""
    if stack is not None and not verdict.ok:
        services = "".join(
            f"\n----- {name} (private stack)\n{stack.service_log(name)}"
            for name in ("kafka", "elasticsearch")
        )
    assert verdict.ok, f"{verdict.summary()}\n{pipe.logs()}{services}"


def _raw_keys_once(pipe: Pipeline) -> None:
    """The connector produced every article exactly once (it was never disturbed)."""
    keys = [m.key for m in pipe.read_topic(topics.RAW)]
    twice = sorted({k for k in keys if keys.count(k) > 1})
    assert not twice, f"the connector produced {len(twice)} article(s) twice: {twice[:3]}"


# --------------------------------------------------------------------------- stacks


@pytest.fixture
def shared(kafka: Settings, elastic: Settings) -> Settings:
    """The shared local stack (skipped outside CI when it is not running)."""
    return kafka


@pytest.fixture(scope="module", autouse=True)
def _private_boot(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PrivateStack | str | None]:
    """Start the private stack at the beginning of the module when a selected test needs it,
    so its boot overlaps the tests that run on the shared stack. Yields the stack, or why it
    cannot start (reported by ``private_stack``, never here: the other tests do not need it)."""
    wanted = any(
        "private_stack" in getattr(item, "fixturenames", ())
        and getattr(item, "module", None) is request.module
        for item in request.session.items
    )
    if not wanted:
        yield None
        return
    infra = Settings().infra
    try:
        find_java_home(17, infra.java_home)
        find_java_home(21, infra.es_java_home)
        if not PrivateStack.can_seed(infra) and shutil.which(infra.maven) is None:
            raise InfraError("Maven is not installed and the shared stack has no distributions")
    except InfraError as exc:
        yield str(exc)
        return
    stack = PrivateStack(infra.home, tmp_path_factory.mktemp("private-stack"))
    try:
        try:
            stack.up_async()
        except Exception as exc:  # surfaced as a failure by `private_stack`
            stack.start_error = exc
        yield stack
    finally:
        stack.down()


@pytest.fixture(scope="module")
def private_stack(_private_boot: PrivateStack | str | None) -> PrivateStack:
    if not isinstance(_private_boot, PrivateStack):
        message = f"a private Kafka + Elasticsearch stack cannot start here: {_private_boot}"
        if IN_CI:
            pytest.fail("CI=true: " + message, pytrace=False)
        pytest.skip(message)
    if _private_boot.start_error is not None:
        raise _private_boot.start_error
    if _private_boot.booting is not None:
        waited = _private_boot.wait_up()
        copied = _private_boot.copied
        print(f"private stack ready (waited {waited:.1f}s; dists from the shared home: {copied})")
    return _private_boot


# --------------------------------------------------------------------------- tests


def test_index_and_enrich_workers_killed_mid_batch_lose_and_duplicate_nothing(
    shared: Settings, unique: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    # Full text (~600 words) makes enrichment take seconds, so the kill lands inside the flow.
    with pipeline(
        tmp_path,
        unique,
        bootstrap_servers=shared.kafka.bootstrap_servers,
        elastic_url=shared.elastic.url,
        feeds=20,
        items=10,
        seed=3,
        full_text=True,
    ) as pipe:
        pipe.start()
        pipe.wait_fetched()
        _stamp("generation 0 fetched", t0)
        raw_total = 20 * 10
        wait_until(
            "the connector to produce generation 0",
            lambda: pipe.end_offsets(topics.RAW) >= raw_total,
            60,
            pipe.alive,
        )
        wait_until(
            "the enrich worker to be part-way through",
            lambda: pipe.end_offsets(topics.ENRICHED) >= raw_total // 5,
            120,
            pipe.alive,
            interval_s=0.1,
        )
        enriched_at_kill = pipe.end_offsets(topics.ENRICHED)
        pipe.kill9("enrich")
        _stamp(f"enrich killed with {enriched_at_kill}/{raw_total} enriched", t0)
        wait_until(
            "the index worker to be part-way through",
            lambda: pipe.index_count() >= 1,
            60,
            pipe.alive,
            interval_s=0.1,
        )
        indexed_at_kill = pipe.index_count()
        pipe.kill9("index")
        _stamp(f"index killed with {indexed_at_kill} documents visible", t0)
        assert enriched_at_kill < raw_total, "the enrich kill must land while it had input"

        pipe.publish(1)  # new items arrive while both workers are down
        pipe.wait_fetched()
        pipe.restart("enrich")
        pipe.restart("index")
        _stamp("workers restarted", t0)
        pipe.publish(2)
        pipe.wait_fetched()
        expected = pipe.expected_ids()
        assert len(expected) == 20 * 12
        verdict = pipe.wait_settled(expected, timeout_s=240)
        _stamp(f"settled: {verdict.summary()}", t0)
        _assert_settled(pipe, verdict)
        _raw_keys_once(pipe)
        redone = pipe.end_offsets(topics.ENRICHED) - len(expected)
        print(
            f"redelivered after the kills: {redone} enriched record(s) produced again, "
            f"{verdict.index.rewritten} document(s) written again"
        )


def test_poison_records_land_in_their_dead_letter_topics_the_rest_is_indexed(
    shared: Settings, unique: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    with pipeline(
        tmp_path,
        unique,
        bootstrap_servers=shared.kafka.bootstrap_servers,
        elastic_url=shared.elastic.url,
        feeds=8,
        items=10,
        seed=4,
    ) as pipe:
        pipe.start()
        # Not contract JSON at all: the extract stage (the first to read it) dead-letters it.
        garbage = b'{"article_id": "broken", "source": ' + "\u0628\u0627\u0644\u0639".encode()
        garbage_at = pipe.produce(topics.RAW, b"poison-not-json", garbage)
        # A valid article whose 40 KB author is one keyword term beyond Lucene's 32,766-byte
        # limit: Elasticsearch rejected the whole document until every keyword field got
        # ignore_above (issue 14.14); now it is indexed, the author kept in _source only.
        raw = make_raw(7, title="Immense author")
        feed = raw.source.feed.model_copy(update={"full_text": "never"})  # no page to fetch
        src = raw.source.model_copy(update={"authors": ("A" * 40_000,), "feed": feed})
        immense = raw.model_copy(update={"source": src})
        pipe.produce(topics.RAW, immense.article_id.encode(), encode(immense))
        # Garbage straight into the enriched topic: the index stage dead-letters it.
        bad_enriched = b"\xff\xfenot json"
        bad_enriched_at = pipe.produce(topics.ENRICHED, b"poison-enriched", bad_enriched)
        pipe.wait_fetched()
        pipe.publish(1)
        pipe.wait_fetched()
        expected = pipe.expected_ids()
        assert len(expected) == 8 * 11
        expected = expected | {immense.article_id}
        letters = {
            "extract": {b"poison-not-json"},
            "index": {b"poison-enriched"},
        }
        verdict = pipe.wait_settled(expected, letters, timeout_s=180)
        _stamp(f"settled: {verdict.summary()}", t0)
        _assert_settled(pipe, verdict)

        (extract_dl,) = pipe.dead_letters("extract")
        assert extract_dl.value == garbage  # the original bytes
        h = extract_dl.headers
        assert h["stage"] == "extract"
        assert h["error-class"] in ("ValidationError", "ValueError"), h
        assert h["error-message"]
        assert h["attempts"] == "1"
        assert h["source-topic"] == pipe.topic(topics.RAW)
        assert (int(h["source-partition"]), int(h["source-offset"])) == garbage_at
        assert h["failed-at"]

        by_key = {d.key: d for d in pipe.dead_letters("index")}
        assert immense.article_id.encode() not in by_key
        undecodable = by_key[b"poison-enriched"]
        assert undecodable.value == bad_enriched
        assert undecodable.headers["source-topic"] == pipe.topic(topics.ENRICHED)
        src_at = (
            int(undecodable.headers["source-partition"]),
            int(undecodable.headers["source-offset"]),
        )
        assert src_at == bad_enriched_at
        for letter in (extract_dl, undecodable):
            assert set(letter.headers) >= DEAD_LETTER_HEADERS, letter.headers.keys()
        _raw_keys_once(pipe)
        # The index worker also copies every dead letter into the operators' Kibana index.
        ops = pipe.dead_letter_docs()
        assert sorted((d["stage"], d["article_id"]) for d in ops) == sorted(
            [
                ("extract", "poison-not-json"),
                ("index", "poison-enriched"),
            ]
        ), ops


def test_a_hanging_feed_does_not_hold_back_the_others_and_is_reported_failing(
    shared: Settings, unique: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    with pipeline(
        tmp_path,
        unique,
        bootstrap_servers=shared.kafka.bootstrap_servers,
        elastic_url=shared.elastic.url,
        feeds=12,
        items=10,
        seed=5,
        env={
            "NEWSFLOW_CONNECTOR__READ_TIMEOUT_S": "6",
            "NEWSFLOW_CONNECTOR__TOTAL_TIMEOUT_S": "8",
        },
    ) as pipe:
        server = pipe.serve()
        server.set_hang("/hang.xml")  # accepts the request, never answers
        hanging = FeedSpec(id="hangs", url=server.url("/hang.xml"), language="en")
        pipe.start(extra_feeds=[hanging])
        pipe.wait_fetched()
        wait_until("the hanging request", lambda: server.hits["/hang.xml"] >= 1, 30, pipe.alive)
        pipe.publish(1)
        pipe.wait_fetched()
        # Every good feed was polled again while the hanging request was still open (it holds
        # one of the two connections the connector allows per host, for up to 8 s).
        assert server.hits["/hang.xml"] == 1 and server.in_flight == 1
        pipe.publish(2)
        pipe.wait_fetched()
        _stamp("generation 2 fetched", t0)
        expected = pipe.expected_ids()
        assert len(expected) == 12 * 12
        verdict = pipe.wait_settled(expected, timeout_s=120)
        _stamp(f"settled: {verdict.summary()}", t0)
        _assert_settled(pipe, verdict)
        _raw_keys_once(pipe)
        assert server.hits["/hang.xml"] >= 1
        wait_until(
            "the hanging feed to be reported failing",
            lambda: pipe.feed_rows()["hangs"]["health"] == "failing",
            30,
            pipe.alive,
        )
        rows = pipe.feed_rows()
        assert rows["hangs"]["failures"] >= 1
        assert "timeout" in (rows["hangs"]["last_error"] or ""), rows["hangs"]
        assert rows["hangs"]["produced"] == 0
        good = {fid: row for fid, row in rows.items() if fid != "hangs"}
        assert {row["health"] for row in good.values()} <= {"ok", "not-modified"}, good
        assert sum(row["produced"] for row in good.values()) == len(expected)


def test_elasticsearch_killed_for_30s_while_articles_flow(
    private_stack: PrivateStack, unique: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    with pipeline(
        tmp_path,
        unique,
        bootstrap_servers=private_stack.bootstrap_servers,
        elastic_url=private_stack.elastic_url,
        feeds=20,
        items=10,
        seed=1,
        full_text=True,  # enrichment paces the flow: Elasticsearch dies in the middle of it
    ) as pipe:
        pipe.start()
        pipe.wait_fetched()
        wait_until(
            "the first articles indexed",
            lambda: pipe.index_count() >= 1,
            120,
            pipe.alive,
            interval_s=0.1,
        )
        enriched, indexed = pipe.end_offsets(topics.ENRICHED), pipe.index_count()
        private_stack.kill9("elasticsearch")
        down_at = time.monotonic()
        _stamp(f"elasticsearch killed with {enriched} enriched, {indexed} indexed of 200", t0)

        pipe.publish(1)
        pipe.wait_fetched()
        pipe.publish(2)
        pipe.wait_fetched()
        # The index worker waits (backpressure): it neither skips nor dies, its group keeps
        # the lag, and its readiness says why; enrich goes on meanwhile.
        wait_until(
            "the index worker to report elasticsearch unreachable",
            lambda: "elasticsearch" in pipe.ready("index")[1].get("problems", {}),
            max(1.0, 25 - (time.monotonic() - down_at)),
            pipe.alive,
        )
        assert pipe.ready("index")[0] == 503
        lag = pipe.lags()["index"][ENRICHED]
        assert lag > 0, "the index group committed offsets it could not write"
        remaining = 30 - (time.monotonic() - down_at)
        assert remaining > 0, "the outage took longer than planned"
        time.sleep(remaining)
        pipe.alive()
        lag, enriched = pipe.lags()["index"][ENRICHED], pipe.end_offsets(topics.ENRICHED)
        _stamp(f"restarting elasticsearch after 30 s: {enriched} enriched, index lag {lag}", t0)
        took = private_stack.up()
        _stamp(f"elasticsearch back after {took:.1f}s", t0)
        pipe.publish(3)
        pipe.wait_fetched()
        expected = pipe.expected_ids()
        assert len(expected) == 20 * 13
        verdict = pipe.wait_settled(expected, timeout_s=180)
        _stamp(f"settled: {verdict.summary()}", t0)
        _assert_settled(pipe, verdict, private_stack)
        _raw_keys_once(pipe)
        wait_until("the index worker to be ready again", lambda: pipe.ready("index")[0] == 200, 30)


def test_kafka_broker_restarted_while_articles_flow(
    private_stack: PrivateStack, unique: str, tmp_path: Path
) -> None:
    t0 = time.monotonic()
    with pipeline(
        tmp_path,
        unique,
        bootstrap_servers=private_stack.bootstrap_servers,
        elastic_url=private_stack.elastic_url,
        feeds=20,
        items=10,
        seed=2,
        full_text=True,  # slow enough that the broker dies with every stage mid-flow
    ) as pipe:
        pipe.start()
        pipe.wait_fetched()
        wait_until(
            "the enrich worker to be part-way through",
            lambda: pipe.end_offsets(topics.ENRICHED) >= 40,
            120,
            pipe.alive,
            interval_s=0.1,
        )
        pipe.publish(1)  # the connector is fetching and producing these when the broker dies
        gen1 = [pipe.path(i) for i in range(pipe.feeds)]
        before = {p: pipe.server.hits[p] for p in gen1}
        wait_until(
            "the connector to start on generation 1",
            lambda: any(pipe.server.hits[p] > before[p] for p in gen1),
            30,
            pipe.alive,
            interval_s=0.05,
        )
        enriched, indexed = pipe.end_offsets(topics.ENRICHED), pipe.index_count()
        private_stack.kill9("kafka")
        _stamp(f"kafka killed with {enriched} enriched, {indexed} indexed of 200 + 20", t0)
        fetched = sum(pipe.server.hits[p] > before[p] for p in gen1)
        time.sleep(10)
        pipe.alive()  # every process rides the outage out
        during = sum(pipe.server.hits[p] > before[p] for p in gen1)
        # The connector's scheduler waits on its flush while the broker is away.
        print(f"generation 1 fetched from {fetched} feeds at the kill, {during} after 10 s down")
        took = private_stack.up()
        _stamp(f"kafka back after {took:.1f}s", t0)
        pipe.wait_fetched(90)
        _stamp("generation 1 fetched", t0)
        pipe.publish(2)
        pipe.wait_fetched()
        expected = pipe.expected_ids()
        assert len(expected) == 20 * 12
        verdict = pipe.wait_settled(expected, timeout_s=180)
        _stamp(f"settled: {verdict.summary()}", t0)
        _assert_settled(pipe, verdict, private_stack)
        # At-least-once allows repeats in the topics across a broker crash (the index is
        # idempotent); report them.
        for spec in (topics.RAW, topics.ENRICHED):
            keys = Counter(m.key for m in pipe.read_topic(spec))
            print(f"{spec.name}: {sum(keys.values())} records, {len(keys)} distinct keys")
