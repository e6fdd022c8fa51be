"""`newsflow bootstrap`: create the Kafka topics and put the Elasticsearch template. Idempotent.

Safe on every deploy: existing topics are kept (partitions are only ever increased), the
template is overwritten with the shipped one, existing indices of an older document version get
the template's new fields when the change is additive (a put-mapping: the same fields, more of
them; anything else is left for `newsflow reindex`), and the current month's index is created so
the read alias exists before the first article arrives.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from elasticsearch import ApiError, Elasticsearch
from kafka import KafkaAdminClient
from kafka.admin import NewPartitions, NewTopic
from kafka.errors import TopicAlreadyExistsError

from streams import topics
from streams.kafka_clients import client_options
from streams.settings import Settings
from streams.sinks.elastic import (
    ilm_policy,
    index_for,
    index_template,
    make_client,
    template_for,
    template_name,
    with_lifecycle,
)

Say = Callable[[str], None]


def ensure_topics(
    settings: Settings, say: Say, specs: tuple[topics.TopicSpec, ...] = topics.ALL
) -> dict[str, str]:
    admin = KafkaAdminClient(
        **client_options(settings.kafka),
        client_id=f"{settings.kafka.client_id}-bootstrap",
        request_timeout_ms=int(settings.kafka.request_timeout_s * 1000),
    )
    outcome: dict[str, str] = {}
    names = {spec.name: spec.topic_name(settings.topics) for spec in specs}
    try:
        existing = {
            t["name"]: len(t["partitions"])
            for t in admin.describe_topics(list(names.values()))
            if t.get("error_code", 0) == 0
        }
        for spec in specs:
            name = names[spec.name]
            want = spec.partitions(settings.topics)
            have = existing.get(name)
            if have is None:
                topic = NewTopic(
                    name,
                    want,
                    settings.topics.replication_factor,
                    topic_configs=spec.config(settings.topics),
                )
                try:
                    admin.create_topics([topic])
                    outcome[name] = f"created ({want} partitions)"
                except TopicAlreadyExistsError:
                    outcome[name] = "exists"
            elif have < want:
                admin.create_partitions({name: NewPartitions(total_count=want)})
                outcome[name] = f"partitions {have} -> {want}"
            else:
                outcome[name] = f"exists ({have} partitions)"
            say(f"topic {name}: {outcome[name]}")
    finally:
        admin.close()
    return outcome


def _ensure_dead_letter_index(es: Elasticsearch, settings: Settings, say: Say) -> None:
    from streams.stages.deadletters import TEMPLATE, dead_letter_template

    if not TEMPLATE.is_file():
        return
    name = settings.elastic.dead_letter_index
    es.indices.put_index_template(name=name, **dead_letter_template(settings.elastic))
    if not es.indices.exists(index=name):
        es.indices.create(index=name)
    say(f"dead-letter index {name}: ready (Kibana ops view)")


def ensure_elastic(settings: Settings, say: Say, client: Elasticsearch | None = None) -> str:
    es = client or make_client(settings.elastic)
    try:
        name = template_name(settings.elastic)
        template = template_for(es, settings.elastic, say)
        if _has_ilm(es):
            policy = ilm_policy()
            es.ilm.put_lifecycle(name=name, policy={**policy["policy"], "_meta": policy["_meta"]})
            template = with_lifecycle(template, name)
            say(f"ilm policy {name}: put (warm after 35 days, deleted after 400)")
        else:
            say(
                "ilm: not available on this cluster (the local one has no ILM); no retention policy"
            )
        es.indices.put_index_template(name=name, **template)
        say(f"index template {name}: put")
        _ensure_dead_letter_index(es, settings, say)
        _add_new_fields(es, settings, say)
        _warn_on_drift(es, settings, say)
        index = index_for(settings.elastic, datetime.now(UTC))
        if not es.indices.exists(index=index):
            es.indices.create(index=index)
            say(f"index {index}: created (alias {settings.elastic.alias})")
        else:
            say(f"index {index}: exists")
        return index
    finally:
        if client is None:
            es.close()


def _has_ilm(es: Elasticsearch) -> bool:
    try:
        es.ilm.get_status()
    except ApiError as exc:
        if exc.meta.status in (400, 404, 405):
            return False
        raise
    return True


def _add_new_fields(es: Elasticsearch, settings: Settings, say: Say) -> None:
    """Bring older indices to the template's mapping when only fields were added (e.g. the
    extract stage's ``extraction.*``): the index is ``dynamic: strict``, so without them every
    new document would be refused. A conflicting change fails here and stays for reindex."""
    mappings = index_template(settings.elastic)["template"]["mappings"]
    want = mappings["_meta"]["document_version"]
    prefix = settings.elastic.index_prefix
    current = es.indices.get_mapping(
        index=f"{prefix}-*,{prefix}_r*", ignore_unavailable=True, allow_no_indices=True
    )
    for name, body in sorted(current.items()):
        if (body["mappings"].get("_meta") or {}).get("document_version") == want:
            continue
        try:
            es.indices.put_mapping(
                index=name, properties=mappings["properties"], meta=mappings["_meta"]
            )
            say(f"index {name}: mapping updated to document version {want} (fields added)")
        except ApiError as exc:
            say(f"index {name}: mapping not updated in place ({exc.message}); see reindex")


def _warn_on_drift(es: Elasticsearch, settings: Settings, say: Say) -> None:
    """Existing indices built under an older template version need `newsflow reindex`."""
    want = index_template(settings.elastic)["_meta"]["document_version"]
    prefix = settings.elastic.index_prefix
    mappings = es.indices.get_mapping(
        index=f"{prefix}-*,{prefix}_r*", ignore_unavailable=True, allow_no_indices=True
    )
    stale = sorted(
        name
        for name, body in mappings.items()
        if (body["mappings"].get("_meta") or {}).get("document_version") != want
    )
    if stale:
        say(
            f"warning: {len(stale)} index(es) use an older document version than the template "
            f"({want}): {', '.join(stale)}; run `newsflow reindex`"
        )


def ensure_kibana(settings: Settings, say: Say) -> None:
    """Import the saved objects when a Kibana URL is configured (overwrites by stable id)."""
    if not settings.kibana.url:
        say("kibana: no NEWSFLOW_KIBANA__URL set; saved objects not imported")
        return
    from streams.commands.kibana import ASSET_FILES, import_objects

    for path in ASSET_FILES:
        summary = import_objects(settings.kibana, path)
        count = summary.get("successCount", 0)
        say(f"kibana: imported {count} saved objects from {path.name} into {settings.kibana.url}")


def bootstrap(settings: Settings, say: Say) -> None:
    ensure_topics(settings, say)
    ensure_elastic(settings, say)
    ensure_kibana(settings, say)
