"""Pure parts of the placement (issue 14.2): merging the feeds that carried an article."""

from __future__ import annotations

from streams.sinks.placement import (
    MAX_FEEDS,
    apply,
    ensure,
    feed_entry,
    from_seen,
    merge,
    seen_values,
)

A = feed_entry("wire-ar", "وكالة", "2026-11-30T23:58:00+00:00")
B = feed_entry("blog-tr", "Günlük", "2026-12-01T00:03:00+00:00")
B_LATER = feed_entry("blog-tr", "Günlük (yeni ad)", "2026-12-05T10:00:00+00:00")


def test_merge_keeps_one_entry_per_feed_with_its_earliest_sighting() -> None:
    merged = merge([B], [A], [B_LATER])
    assert [f["id"] for f in merged] == ["wire-ar", "blog-tr"]  # by first sighting
    assert merged[1]["first_seen_at"] == B["first_seen_at"]
    assert merged[1]["name"] == "Günlük (yeni ad)"  # the latest name
    assert merge(merged, [A], [B_LATER]) == merged  # redelivery changes nothing
    assert merge([A, B]) == merge([B, A])


def test_apply_sets_ids_doc_values_and_the_earliest_first_seen() -> None:
    doc = apply({"first_seen_at": B["first_seen_at"]}, [B, A])
    assert doc["feed_ids"] == ["wire-ar", "blog-tr"]
    assert doc["first_seen_at"] == A["first_seen_at"]
    assert from_seen(doc["feeds_seen"]) == doc["feeds"]
    assert from_seen(seen_values([feed_entry("x", None, A["first_seen_at"])]))[0]["name"] is None


def test_a_document_from_before_feeds_gets_its_one_feed() -> None:
    old = {"feed": {"id": "wire-ar", "name": "وكالة"}, "first_seen_at": A["first_seen_at"]}
    assert ensure(old)["feeds"] == [A] and old["feed_ids"] == ["wire-ar"]


def test_the_list_is_bounded_to_the_earliest_feeds() -> None:
    many = [
        feed_entry(f"f{n:04d}", None, f"2026-11-{1 + n % 28:02d}T00:00:00+00:00")
        for n in range(900)
    ]
    merged = merge(many)
    assert len(merged) == MAX_FEEDS
    assert merge(merged, many) == merged
