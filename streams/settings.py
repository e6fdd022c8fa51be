"""One frozen settings object for every newsflow process.

Built once at the entry point (``Settings()``) and passed down; no other module reads
``os.environ``. Environment variables are ``NEWSFLOW_<SECTION>__<FIELD>``, for example
``NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS`` or ``NEWSFLOW_INFRA__ES_HEAP``. Secrets are ``SecretStr``.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_infra_home() -> Path:
    # Elasticsearch refuses to run as root, so as root we run it as a system user; that user
    # cannot traverse /root, hence a system-wide cache directory in that case.
    if os.geteuid() == 0:
        return Path("/var/cache/newsflow")
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "newsflow"


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class KafkaSettings(_Section):
    bootstrap_servers: str = Field(
        "127.0.0.1:9092", description="Comma-separated host:port list of Kafka brokers."
    )
    client_id: str = Field("newsflow", description="Client id prefix used by producers/consumers.")
    request_timeout_s: float = Field(30.0, description="Timeout of one Kafka request, seconds.")


class ElasticSettings(_Section):
    url: str = Field("http://127.0.0.1:9200", description="Elasticsearch base URL.")
    username: str | None = Field(None, description="Basic-auth user, if security is on.")
    password: SecretStr | None = Field(None, description="Basic-auth password.")
    alias: str = Field("news-articles", description="Read alias over the monthly indices.")
    index_prefix: str = Field("news-articles-v1", description="Prefix of concrete indices.")
    request_timeout_s: float = Field(30.0, description="Timeout of one Elasticsearch request.")


class KibanaSettings(_Section):
    url: str | None = Field(
        None,
        description="Kibana base URL; when set, `newsflow bootstrap` imports the saved objects.",
    )
    username: str | None = Field(None, description="Basic-auth user for Kibana.")
    password: SecretStr | None = Field(None, description="Basic-auth password for Kibana.")
    space: str | None = Field(None, description="Kibana space to import into (default space).")


class TopicSettings(_Section):
    namespace: str = Field(
        "",
        pattern=r"^[A-Za-z0-9._-]*$",
        description="Prefix of every topic name (isolates tenants or test runs).",
    )
    partitions: int = Field(6, ge=1, description="Partitions of each newsflow topic.")
    replication_factor: int = Field(1, ge=1, description="Replication factor of each topic.")
    retention_days: int = Field(7, ge=1, description="Retention of article topics, days.")
    dlq_retention_days: int = Field(30, ge=1, description="Retention of dead-letter topics, days.")


class InfraSettings(_Section):
    """The embedded local stack (`newsflow infra ...`): real Kafka + Elasticsearch on loopback."""

    home: Path = Field(
        default_factory=_default_infra_home,
        description="Cache of downloaded distributions plus data, logs and pid files.",
    )
    kafka_version: str = Field("4.1.2", description="Apache Kafka (kafka_2.13) version.")
    log4j_version: str = Field("2.24.3", description="log4j2 version for Kafka's SLF4J binding.")
    es_version: str = Field("9.3.2", description="Elasticsearch integ-test-zip version.")
    host: str = Field("127.0.0.1", description="Loopback address every local service binds.")
    kafka_port: int = Field(9092, description="Kafka broker (client) port.")
    kafka_controller_port: int = Field(9093, description="Kafka KRaft controller port.")
    es_port: int = Field(9200, description="Elasticsearch HTTP port.")
    es_transport_port: int = Field(9300, description="Elasticsearch transport port.")
    kafka_heap: str = Field("512m", description="Kafka JVM heap (-Xms/-Xmx).")
    es_heap: str = Field("1g", description="Elasticsearch JVM heap (-Xms/-Xmx).")
    java_home: Path | None = Field(None, description="JDK for Kafka (17+); default: java on PATH.")
    es_java_home: Path | None = Field(
        None, description="JDK 21+ for Elasticsearch; default: newest JDK under /usr/lib/jvm."
    )
    es_user: str = Field("newsflow", description="System user that runs Elasticsearch as root.")
    es_plugins: tuple[Path, ...] = Field(
        (), description="Offline plugin zips installed into the local Elasticsearch."
    )
    start_timeout_s: float = Field(180.0, description="How long `infra up` waits for readiness.")
    maven: str = Field("mvn", description="Maven executable used to fetch the distributions.")


class EnrichSettings(_Section):
    batch_size: int = Field(64, ge=1, le=5000, description="Articles per enrichment batch.")
    batch_within_s: float = Field(0.5, gt=0, description="Max wait to fill a batch, seconds.")
    max_chars: int = Field(
        20000,
        ge=500,
        description="Per-article text limit for enrichment; longer text is cut "
        "at a word boundary and the article flagged (text_truncated).",
    )


class IndexSettings(_Section):
    batch_size: int = Field(500, ge=1, le=10000, description="Articles per bulk request.")
    flush_interval_s: float = Field(1.0, gt=0, description="Max wait to fill a batch, seconds.")
    retry_initial_s: float = Field(0.5, gt=0, description="First backoff after a retryable error.")
    retry_max_s: float = Field(30.0, gt=0, description="Backoff cap; retries never give up.")


class FaustSettings(_Section):
    app_id: str = Field("newsflow", description="faust application id (consumer group prefix).")
    web_port: int = Field(
        6066, ge=1, le=65535, description="Port of the worker's web server (metrics, health)."
    )
    datadir: Path = Field(Path(".newsflow/faust"), description="Worker state directory.")


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSFLOW_", env_nested_delimiter="__", frozen=True, extra="forbid"
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    elastic: ElasticSettings = Field(default_factory=ElasticSettings)
    kibana: KibanaSettings = Field(default_factory=KibanaSettings)
    topics: TopicSettings = Field(default_factory=TopicSettings)
    infra: InfraSettings = Field(default_factory=InfraSettings)
    faust: FaustSettings = Field(default_factory=FaustSettings)
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
