"""One frozen settings object for every newsflow process.

Built once at the entry point (``Settings()``) and passed down; no other module reads
``os.environ``. Environment variables are ``NEWSFLOW_<SECTION>__<FIELD>``, for example
``NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS`` or ``NEWSFLOW_INFRA__ES_HEAP``. Secrets are ``SecretStr``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

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
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = Field(
        "PLAINTEXT", description="How clients talk to the brokers (SASL_SSL in production)."
    )
    sasl_mechanism: Literal["SCRAM-SHA-512", "SCRAM-SHA-256", "PLAIN"] = Field(
        "SCRAM-SHA-512", description="SASL mechanism when the protocol is SASL_*."
    )
    sasl_username: str | None = Field(None, description="SASL user (SASL_* protocols).")
    sasl_password: SecretStr | None = Field(None, description="SASL password (SASL_* protocols).")
    ssl_cafile: Path | None = Field(
        None, description="PEM CA bundle that signed the brokers' certificates (SSL/SASL_SSL)."
    )
    ssl_certfile: Path | None = Field(None, description="PEM client certificate (mutual TLS).")
    ssl_keyfile: Path | None = Field(None, description="PEM key of the client certificate.")
    ssl_check_hostname: bool = Field(
        True, description="Check that a broker's certificate names the host we connected to."
    )
    acks: Literal["all", "1", "0"] = Field(
        "all",
        description="Producer acknowledgements; `all` waits for every in-sync replica "
        "(with topics.min_insync_replicas this is what makes a broker loss lose nothing).",
    )


class ElasticSettings(_Section):
    url: str = Field("http://127.0.0.1:9200", description="Elasticsearch base URL.")
    username: str | None = Field(None, description="Basic-auth user, if security is on.")
    password: SecretStr | None = Field(None, description="Basic-auth password.")
    api_key: SecretStr | None = Field(
        None,
        description="API key (the base64 `encoded` value); used instead of username/password.",
    )
    ca_certs: Path | None = Field(
        None, description="PEM CA that signed the cluster's HTTP certificate (https URLs)."
    )
    verify_certs: bool = Field(
        True, description="Verify the cluster's certificate; turn off only for throwaway tests."
    )
    alias: str = Field("news-articles", description="Read alias over the monthly indices.")
    index_prefix: str = Field("news-articles-v1", description="Prefix of concrete indices.")
    request_timeout_s: float = Field(30.0, description="Timeout of one Elasticsearch request.")
    dead_letter_index: str = Field(
        "newsflow-dead-letters", description="Index of dead letters for the Kibana ops view."
    )


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
    min_insync_replicas: int = Field(
        1,
        ge=1,
        description="`min.insync.replicas` of each topic; 2 with replication factor 3 in "
        "production (a write then survives the loss of any one broker).",
    )
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
    stack: str = Field(
        "default",
        pattern=r"^[a-z0-9-]{1,32}$",
        description="Name of this local stack: another name keeps its own data, logs, pid "
        "files and secrets beside the default one (the distributions are shared).",
    )
    brokers: int = Field(
        1, ge=1, le=5, description="Kafka brokers of the local stack (KRaft, each also a voter)."
    )
    secure: bool = Field(
        False,
        description="Local stack with security on: Kafka SASL_SSL (SCRAM-SHA-512) and "
        "Elasticsearch HTTPS with users; passwords are generated and kept 0600 in the stack.",
    )
    maven: str = Field("mvn", description="Maven executable used to fetch the distributions.")


class RetrySettings(_Section):
    """In-place retries of every stage: Kafka sends, dead letters, Elasticsearch writes and any
    ``RetryableError``. Capped exponential backoff with full jitter; retries never give up (the
    partition waits: backpressure, no loss)."""

    initial_s: float = Field(0.5, gt=0, description="First backoff after a retryable error.")
    max_s: float = Field(30.0, gt=0, description="Backoff cap; retries never give up.")


# Batches close when the input goes idle: a batch takes every record that is ready now (up to
# its size), waits at most ``batch_idle_s`` for the next one, and is never held open longer than
# its cap. At low load an article goes through alone; at full load batches fill.
_IDLE = "Close a batch when no record arrived for this long, seconds (0 = as soon as the input "
_IDLE += "has nothing ready)."


class EnrichSettings(_Section):
    batch_size: int = Field(64, ge=1, le=5000, description="Articles per enrichment batch.")
    batch_idle_s: float = Field(0.01, ge=0, le=5, description=_IDLE)
    batch_within_s: float = Field(
        0.5, gt=0, description="Longest a batch stays open while records keep arriving, seconds."
    )
    max_chars: int = Field(
        20000,
        ge=500,
        description="Per-article text limit for enrichment; longer text is cut "
        "at a word boundary and the article flagged (text_truncated).",
    )
    workers: int = Field(
        0,
        ge=0,
        le=64,
        description="Enrich worker processes `newsflow run` starts (0 = one per CPU core); "
        "parallelism is capped by the partition count.",
    )


class ExtractSettings(_Section):
    """The extract stage (`newsflow worker extract`): which pages to fetch, how long to wait.
    Politeness per host (robots.txt, pacing, backoff) is the ``page_fetch`` section."""

    batch_size: int = Field(64, ge=1, le=5000, description="Articles per extract batch.")
    batch_idle_s: float = Field(0.05, ge=0, le=5, description=_IDLE)
    batch_within_s: float = Field(
        1.0, gt=0, description="Longest a batch stays open while records keep arriving, seconds."
    )
    fetch_pages: bool = Field(
        True,
        description="Fetch article pages at all; false forwards every article with its feed "
        "text only (extraction.status skipped), whatever the feeds' full_text says.",
    )
    auto_min_chars: int = Field(
        600,
        ge=0,
        description="full_text: auto fetches the page when the feed's own text (the longer of "
        "summary and content) is shorter than this many characters.",
    )
    page_deadline_s: float = Field(
        20.0,
        gt=0,
        description="Budget of one page in a batch (queueing for its host, robots.txt, "
        "backoff waits, transfer); a batch's pages are fetched concurrently, so a batch takes "
        "about this long at most, plus extraction.",
    )
    max_body_chars: int = Field(
        100_000,
        ge=1000,
        description="Longest body forwarded; longer main text is cut (flag truncated).",
    )
    extract_threads: int = Field(
        2, ge=1, le=32, description="Threads extracting text from fetched pages (CPU work)."
    )
    seen_cache_size: int = Field(
        2048,
        ge=0,
        description="Articles per worker remembered with their extraction (article_id + "
        "content hash): a repeat is not fetched again. In memory: a restart forgets it.",
    )
    workers: int = Field(
        1, ge=1, le=64, description="Extract worker processes `newsflow run` starts."
    )


class IndexSettings(_Section):
    batch_size: int = Field(500, ge=1, le=10000, description="Articles per bulk request.")
    batch_idle_s: float = Field(0.01, ge=0, le=5, description=_IDLE)
    flush_interval_s: float = Field(
        1.0, gt=0, description="Longest a batch stays open while records keep arriving, seconds."
    )


class ConnectorSettings(_Section):
    """The RSS/Atom connector (`newsflow connect`, `newsflow feeds ...`)."""

    feeds_file: Path = Field(Path("feeds.yaml"), description="Feed list (YAML or OPML).")
    state_path: Path = Field(
        Path(".newsflow/feed-state.sqlite"), description="Durable per-feed state (SQLite)."
    )
    user_agent: str = Field(
        "newsflow/0.1 (self-hosted news feed poller; RSS/Atom)",
        description="User-Agent sent to publishers; put your contact URL or address in it.",
    )
    concurrency: int = Field(64, ge=1, le=2000, description="Fetches in flight at once.")
    per_host: int = Field(2, ge=1, le=100, description="Fetches in flight per host (politeness).")
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout.")
    read_timeout_s: float = Field(30.0, gt=0, description="Longest silence while reading.")
    total_timeout_s: float = Field(60.0, gt=0, description="Whole fetch incl. redirects.")
    max_compressed_bytes: int = Field(10 * 2**20, ge=1024, description="Cap on wire bytes.")
    max_body_bytes: int = Field(
        20 * 2**20, ge=1024, description="Cap on decompressed bytes (gzip bombs stop here)."
    )
    max_redirects: int = Field(5, ge=0, le=20, description="Redirect hops followed per fetch.")
    retry_after_cap_s: float = Field(6 * 3600.0, gt=0, description="Cap on honoured Retry-After.")
    min_interval_s: float = Field(300.0, ge=1, description="Default lower poll-interval bound.")
    max_interval_s: float = Field(3600.0, ge=1, description="Default upper poll-interval bound.")
    unconditional_every: int = Field(
        12,
        ge=2,
        description="Every Nth poll of a feed is unconditional, to catch validators that lie.",
    )
    dead_after_s: float = Field(3 * 86400.0, gt=0, description="Failing this long = dead.")
    max_record_bytes: int = Field(
        1_000_000,
        ge=10_000,
        description="Largest raw record produced; bigger ones are trimmed (content, then "
        "summary) and flagged source.truncated.",
    )
    compression: str = Field(
        "gzip", pattern=r"^(gzip|none)$", description="Kafka producer compression."
    )
    parse_workers: int = Field(
        -1,
        ge=-1,
        le=64,
        description="Processes that parse changed feed bodies beside the poller: -1 = one per "
        "CPU core, 0 = parse in the poller's own process. Started on first need.",
    )
    commit_interval_s: float = Field(
        0.5, gt=0, description="How often delivered polls' state is saved (after Kafka acks)."
    )
    delivery_timeout_s: float = Field(
        86400.0,
        ge=5,
        description="How long the connector's Kafka producer keeps retrying one record before "
        "reporting it failed (the connector then re-sends it). Long: while Kafka is away the "
        "producer keeps what the polls found and delivers it, once, when Kafka is back; "
        "connector.max_held_records bounds how much that is.",
    )
    max_held_records: int = Field(
        50_000,
        ge=100,
        description="Records produced but not yet confirmed by Kafka that the connector keeps "
        "(to re-send them while Kafka is unreachable); at this many, due polls are deferred "
        "until Kafka confirms again. Bounds the connector's memory during a Kafka outage.",
    )
    metrics_port: int = Field(
        9465, ge=0, le=65535, description="Prometheus /metrics port of `newsflow connect` (0=off)."
    )
    metrics_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the connector's /metrics and /health server binds: loopback by "
        "default; 0.0.0.0 (or an interface address) lets Prometheus on another host scrape it.",
    )
    replicas: int = Field(
        1,
        ge=1,
        le=1024,
        description="Connectors sharing this feed list; each feed is polled by exactly one of "
        "them, chosen by a stable hash of its id (connectors/sharding.py).",
    )
    replica: int | None = Field(
        None,
        ge=0,
        description="This connector's index, 0..replicas-1. Unset: the host name's trailing "
        "ordinal (StatefulSet pod connector-2 -> 2); with replicas > 1 and no ordinal, "
        "`connect` refuses to start. Replica i > 0 keeps its state in "
        "`<state_path stem>.replica-<i><suffix>`.",
    )


class OpsSettings(_Section):
    stall_after_s: float = Field(
        120.0,
        gt=0,
        description="Not ready when input waits (lag > 0) and nothing finished for this long.",
    )
    lag_interval_s: float = Field(10.0, gt=0, description="How often consumer lag is sampled.")


class FaustSettings(_Section):
    app_id: str = Field("newsflow", description="faust application id (consumer group prefix).")
    web_port: int = Field(
        6066, ge=1, le=65535, description="Port of the worker's web server (metrics, health)."
    )
    web_host: str = Field(
        "127.0.0.1",
        min_length=1,
        description="Address the worker's web server binds: loopback by default; 0.0.0.0 (or "
        "an interface address) lets Prometheus on another host scrape it.",
    )
    datadir: Path = Field(Path(".newsflow/faust"), description="Worker state directory.")
    session_timeout_s: float = Field(
        10.0,
        ge=6,
        le=300,
        description="Kafka consumer session timeout of a worker: a worker that died (SIGKILL, "
        "lost host) keeps its partitions this long before a replacement or peer takes them "
        "over (faust's default is 60 s). The broker accepts 6 s and up by default.",
    )
    heartbeat_interval_s: float = Field(
        2.0,
        gt=0,
        le=100,
        description="How often a worker heartbeats to its consumer group; at most a third of "
        "session_timeout_s, so that a live worker is never taken for dead.",
    )


class HostPolicy(_Section):
    """Politeness towards one host: how many page fetches at once, how far apart."""

    per_host: int = Field(2, ge=1, le=100, description="Page fetches in flight at once per host.")
    min_spacing_s: float = Field(
        1.0, ge=0, le=3600, description="Least time between two fetch starts to a host, seconds."
    )


class PageFetchSettings(_Section):
    """Fetching article pages for the extract stage (`streams/net/pages.py`): robots.txt,
    per-host concurrency and spacing, 429/503 backoff, caps and deadlines."""

    user_agent: str = Field(
        "newsflow/0.1 (self-hosted news reader; full-text fetch)",
        description="User-Agent sent for pages and robots.txt; put your contact in it.",
    )
    robots_agent: str | None = Field(
        None,
        description="Product token matched against robots.txt groups; default: the "
        "User-Agent up to its first '/' or space.",
    )
    concurrency: int = Field(64, ge=1, le=2000, description="Page fetches in flight, all hosts.")
    per_host: int = Field(2, ge=1, le=100, description="Page fetches in flight per host.")
    min_spacing_s: float = Field(
        1.0, ge=0, le=3600, description="Least time between two fetch starts to a host, seconds."
    )
    hosts: dict[str, HostPolicy] = Field(
        default_factory=dict,
        description="Per-host overrides of per_host/min_spacing_s, keyed by host (with "
        "':port' when not the default); a key also covers its subdomains.",
    )
    deadline_s: float = Field(
        60.0,
        gt=0,
        description="Default budget of one page fetch, seconds: queueing for the host, "
        "robots.txt, backoff waits, redirects and the body.",
    )
    connect_timeout_s: float = Field(10.0, gt=0, description="TCP connect timeout.")
    read_timeout_s: float = Field(15.0, gt=0, description="Longest silence while reading.")
    total_timeout_s: float = Field(
        30.0, gt=0, description="One transfer incl. redirects, once the host let us in."
    )
    max_wire_bytes: int = Field(5 * 2**20, ge=1024, description="Cap on a page's wire bytes.")
    max_page_bytes: int = Field(
        10 * 2**20, ge=1024, description="Cap on a page's decompressed bytes (bigger: too_large)."
    )
    max_redirects: int = Field(5, ge=0, le=20, description="Redirect hops followed per page.")
    backoff_initial_s: float = Field(
        30.0, gt=0, description="Host backoff after a 429/503 without Retry-After; doubles."
    )
    backoff_max_s: float = Field(
        3600.0, gt=0, description="Cap on any host backoff, Retry-After included, seconds."
    )
    robots_ttl_s: float = Field(
        86400.0, gt=0, le=86400.0, description="How long a fetched robots.txt is trusted."
    )
    robots_error_ttl_s: float = Field(
        600.0,
        gt=0,
        description="After a robots.txt 5xx/429/network error the host counts as disallowed "
        "(RFC 9309) this long before robots.txt is asked again.",
    )
    robots_max_bytes: int = Field(
        512 * 2**10, ge=1024, description="Cap on robots.txt (decompressed bytes)."
    )
    robots_timeout_s: float = Field(10.0, gt=0, description="Whole robots.txt fetch, seconds.")
    robots_cache_size: int = Field(10_000, ge=1, description="Hosts whose robots.txt is cached.")
    max_crawl_delay_s: float = Field(
        30.0, ge=0, description="robots.txt Crawl-delay honoured up to this (0: ignored)."
    )
    allow_private: bool = Field(
        False, description="Allow pages on loopback/private addresses (metadata stays blocked)."
    )


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
    connector: ConnectorSettings = Field(default_factory=ConnectorSettings)
    page_fetch: PageFetchSettings = Field(default_factory=PageFetchSettings)
    ops: OpsSettings = Field(default_factory=OpsSettings)
    extract: ExtractSettings = Field(default_factory=ExtractSettings)
    enrich: EnrichSettings = Field(default_factory=EnrichSettings)
    index: IndexSettings = Field(default_factory=IndexSettings)
    retry: RetrySettings = Field(default_factory=RetrySettings)
