"""Readiness names the broker, certificate or credential at fault, against real listeners.

The default stack's broker (PLAINTEXT, 127.0.0.1:9092) and Elasticsearch, closed ports, and
TLS listeners of this test (a real TLS server with a certificate of the stack's own kind,
``streams.infra.tls``): the errors come from kafka-python's and the Elasticsearch client's own
connections, ``streams.diagnose`` words them. The lag sampler's cluster view (brokers in the
metadata, under-replicated partitions) is read from the real broker.
"""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from streams import diagnose, topics
from streams.commands.bootstrap import ensure_topics
from streams.infra import tls
from streams.metrics import KAFKA_BROKERS, OFFLINE_PARTITIONS, UNDER_REPLICATED
from streams.ops import Health, LagSampler, probe_broker
from streams.settings import ElasticSettings, KafkaSettings, Settings


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[int, tls.CertPaths]]:
    """A TLS listener on loopback with a certificate for 127.0.0.1 signed by its own CA; it
    answers any request with an empty 401 (what a secured Elasticsearch says to a stranger)."""
    paths = tls.ensure_server_cert(tmp_path_factory.mktemp("tls"), "listener", ["127.0.0.1"])
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(paths.cert, paths.key)
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen()
    server.settimeout(0.5)
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls_conn:
                    tls_conn.settimeout(2)
                    tls_conn.recv(65536)
                    tls_conn.sendall(
                        b"HTTP/1.1 401 Unauthorized\r\nX-Elastic-Product: Elasticsearch\r\n"
                        b"Content-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
                    )
            except (OSError, ssl.SSLError):
                conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    yield int(server.getsockname()[1]), paths
    stop.set()
    thread.join(5)
    server.close()


# --- Kafka: one probe connection says what the clients' "unable to bootstrap" hides ----------


def test_probe_of_the_running_broker_is_clean(kafka: Settings) -> None:
    assert probe_broker(kafka.kafka, kafka.kafka.bootstrap_servers.split(",")[0]) is None


def test_probe_names_a_closed_broker_port(kafka: Settings) -> None:
    address = f"127.0.0.1:{closed_port()}"
    exc = probe_broker(kafka.kafka, address)
    assert exc is not None
    assert diagnose.kafka(exc, kafka.kafka, address).message == (
        f"kafka: broker {address} unreachable (connection refused)"
    )


def test_probe_tls_and_sasl_clients_against_a_plaintext_listener(kafka: Settings) -> None:
    address = kafka.kafka.bootstrap_servers.split(",")[0]
    tls_client = KafkaSettings(bootstrap_servers=address, security_protocol="SSL")
    exc = probe_broker(tls_client, address)
    assert exc is not None
    assert diagnose.kafka(exc, tls_client, address).message == (
        f"kafka: {address} does not speak TLS (a PLAINTEXT listener?): "
        "NEWSFLOW_KAFKA__SECURITY_PROTOCOL=SSL"
    )
    sasl_client = KafkaSettings(
        bootstrap_servers=address,
        security_protocol="SASL_PLAINTEXT",
        sasl_username="newsflow",
        sasl_password="not-used-here",  # pydantic makes it a SecretStr
    )
    exc = probe_broker(sasl_client, address)
    assert exc is not None
    problem = diagnose.kafka(exc, sasl_client, address)
    assert problem.kind == "config" and "does not expect SASL" in problem.message
    assert "not-used-here" not in problem.message


def test_probe_names_an_untrusted_certificate_and_a_wrong_host(
    tls_server: tuple[int, tls.CertPaths],
) -> None:
    port, paths = tls_server
    address = f"127.0.0.1:{port}"
    system_ca = KafkaSettings(bootstrap_servers=address, security_protocol="SSL")
    exc = probe_broker(system_ca, address)
    assert exc is not None
    assert diagnose.kafka(exc, system_ca, address).message.startswith(
        f"kafka: TLS certificate of {address} not trusted (NEWSFLOW_KAFKA__SSL_CAFILE not set)"
    )
    # The right CA, but the broker reached by a name its certificate does not list.
    by_name = f"localhost:{port}"
    right_ca = KafkaSettings(
        bootstrap_servers=by_name, security_protocol="SSL", ssl_cafile=paths.ca
    )
    exc = probe_broker(right_ca, by_name)
    assert exc is not None
    problem = diagnose.kafka(exc, right_ca, by_name)
    assert problem.kind == "tls" and "not valid for that host name" in problem.message


# --- the lag sampler: readiness, the broker list and replication -----------------------------


@pytest.fixture
def namespaced(kafka: Settings, unique: str) -> Settings:
    settings = kafka.model_copy(
        update={
            "topics": kafka.topics.model_copy(
                update={"namespace": f"test.{unique}.", "partitions": 2}
            )
        }
    )
    ensure_topics(settings, lambda _m: None)
    return settings


def _sampler(settings: Settings, health: Health) -> LagSampler:
    topic = topics.RAW.topic_name(settings.topics)
    return LagSampler(settings, "enrich", f"test-group-{topic}", topic, health, 1.0)


def test_sampler_reports_brokers_and_zero_under_replicated_partitions(
    namespaced: Settings,
) -> None:
    health = Health("enrich", 60)
    _sampler(namespaced, health).sample()
    ok, report = health.report()
    assert ok, report
    assert report["problems"] == {} and report["warnings"] == {}
    assert report["kafka"]["brokers"] == ["1@127.0.0.1:9092"]
    assert report["kafka"]["under_replicated_partitions"] == 0
    assert report["kafka"]["offline_partitions"] == 0
    assert KAFKA_BROKERS._value.get() == 1
    for spec in topics.ALL:  # every newsflow topic has its series, at 0 on one broker
        name = spec.topic_name(namespaced.topics)
        assert UNDER_REPLICATED.labels(name)._value.get() == 0, name
        assert OFFLINE_PARTITIONS.labels(name)._value.get() == 0, name


def test_sampler_warns_about_a_listed_broker_that_is_down(namespaced: Settings) -> None:
    dead = f"127.0.0.1:{closed_port()}"
    settings = namespaced.model_copy(
        update={
            "kafka": namespaced.kafka.model_copy(
                update={"bootstrap_servers": f"{namespaced.kafka.bootstrap_servers},{dead}"}
            )
        }
    )
    health = Health("enrich", 60)
    _sampler(settings, health).sample()
    ok, report = health.report()
    assert ok, report  # the cluster still works: a warning, not unready
    assert report["warnings"]["kafka-brokers"] == (
        f"kafka: broker {dead} unreachable (connection refused) (1 of 2 brokers up)"
    )
    assert report["kafka"]["brokers_missing"] == [dead]


def test_sampler_names_every_unreachable_broker_and_is_not_ready(kafka: Settings) -> None:
    dead = [f"127.0.0.1:{closed_port()}", f"127.0.0.1:{closed_port()}"]
    settings = kafka.model_copy(
        update={"kafka": kafka.kafka.model_copy(update={"bootstrap_servers": ",".join(dead)})}
    )
    health = Health("enrich", 60)
    started = time.monotonic()
    _sampler(settings, health).sample()
    took = time.monotonic() - started
    ok, report = health.report()
    assert not ok
    assert report["problems"]["kafka"] == (
        f"kafka: brokers {dead[0]}, {dead[1]} unreachable (connection refused) (0 of 2 brokers up)"
    )
    assert took < 25, took  # the admin client's 10 s bootstrap, then the probes


# --- Elasticsearch: the client's own errors ---------------------------------------------------


def _es_error(settings: ElasticSettings, **options: object) -> Exception:
    client = Elasticsearch(settings.url, request_timeout=5, max_retries=0, **options)  # type: ignore[arg-type]
    try:
        client.info()
    except Exception as exc:
        return exc
    finally:
        client.close()
    raise AssertionError(f"{settings.url} answered")


def test_elastic_errors_name_the_url_the_ca_and_the_credential(
    tls_server: tuple[int, tls.CertPaths], tmp_path: Path
) -> None:
    port, paths = tls_server
    refused = ElasticSettings(url=f"http://127.0.0.1:{closed_port()}")
    assert diagnose.elastic(_es_error(refused), refused).message == (
        f"elasticsearch: {refused.url} unreachable (connection refused; NEWSFLOW_ELASTIC__URL)"
    )
    untrusted = ElasticSettings(url=f"https://127.0.0.1:{port}")
    assert diagnose.elastic(_es_error(untrusted), untrusted).message.startswith(
        f"elasticsearch: TLS certificate of https://127.0.0.1:{port} not trusted "
        "(NEWSFLOW_ELASTIC__CA_CERTS not set)"
    )
    password = "Wr0ng-but-secret"
    wrong = ElasticSettings(
        url=f"https://127.0.0.1:{port}",
        username="newsflow",
        password=password,  # pydantic makes it a SecretStr
        ca_certs=paths.ca,
    )
    exc = _es_error(wrong, ca_certs=str(paths.ca), basic_auth=("newsflow", password))
    problem = diagnose.elastic(exc, wrong)
    assert problem.auth == "authentication"
    assert problem.message == (
        "elasticsearch: authentication failed (401) for user newsflow "
        "(NEWSFLOW_ELASTIC__USERNAME/NEWSFLOW_ELASTIC__PASSWORD)"
    )
    assert password not in problem.message
