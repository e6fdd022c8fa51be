"""streams.diagnose: library exceptions + settings -> a message naming what to fix, no secret.

The exceptions are the libraries' own classes (kafka-python, aiokafka, elasticsearch /
elastic_transport), built with the texts they carry when raised against real listeners (see
tests/integration/test_ops_diagnose.py for the same against real brokers and TLS servers).
"""

from __future__ import annotations

import base64
import logging
import ssl

import aiokafka.errors as aioerrors
import elastic_transport
import elasticsearch
import kafka.errors as kerrors
import pytest
from pydantic import SecretStr

from streams import diagnose
from streams.kafka_clients import KafkaConfigError
from streams.metrics import AUTH_FAILURES
from streams.ops import Health
from streams.settings import ElasticSettings, KafkaSettings
from streams.sinks.elastic import Refused

PASSWORD = "s3cr3t-Pa55word"
SASL = KafkaSettings(
    bootstrap_servers="127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112",
    security_protocol="SASL_SSL",
    sasl_username="newsflow",
    sasl_password=SecretStr(PASSWORD),
)
PLAIN = KafkaSettings()
API_KEY_ID, API_KEY_SECRET = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"
API_KEY = base64.b64encode(f"{API_KEY_ID}:{API_KEY_SECRET}".encode()).decode()
ES_USER = ElasticSettings(
    url="https://127.0.0.1:19200", username="newsflow", password=SecretStr(PASSWORD)
)
ES_KEY = ElasticSettings(url="https://127.0.0.1:19200", api_key=SecretStr(API_KEY))


def cert_error(text: str, code: int = 19) -> kerrors.KafkaConnectionError:
    """kafka-python's handshake failure as raised: the ssl error is its __context__."""
    verify = ssl.SSLCertVerificationError(1, f"[SSL: CERTIFICATE_VERIFY_FAILED] {text}")
    verify.verify_message, verify.verify_code = text, code
    try:
        try:
            raise verify
        except ssl.SSLError as e:
            raise kerrors.KafkaConnectionError(f"Handshake failed: {e}") from None
    except kerrors.KafkaConnectionError as outer:
        outer.__context__ = verify
        return outer


def es_error(cls: type[elasticsearch.ApiError], status: int, body: object) -> Exception:
    node = elastic_transport.NodeConfig("https", "127.0.0.1", 19200)
    meta = elastic_transport.ApiResponseMeta(
        status, "1.1", elastic_transport.HttpHeaders(), 0.01, node
    )
    return cls(str(body), meta=meta, body=body)


# --- Kafka -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "exc",
    [
        kerrors.SaslAuthenticationFailedError(
            "SaslAuthenticationFailedError: Authentication failed during authentication due to "
            "invalid credentials with SASL mechanism SCRAM-SHA-512"
        ),
        aioerrors.SaslAuthenticationFailed(),
        aioerrors.AuthenticationFailedError(),
    ],
    ids=["kafka-python", "aiokafka", "aiokafka-auth"],
)
def test_kafka_sasl_failure_names_the_user_and_the_variables(exc: Exception) -> None:
    problem = diagnose.kafka(exc, SASL)
    assert problem.kind == "authentication" and problem.auth == "authentication"
    assert problem.message.startswith(
        "kafka: SASL authentication failed for user 'newsflow' (SCRAM-SHA-512; check "
        "NEWSFLOW_KAFKA__SASL_USERNAME/SASL_PASSWORD)"
    ), problem.message


def test_kafka_sasl_demanded_but_plaintext_configured() -> None:
    problem = diagnose.kafka(kerrors.SaslAuthenticationFailedError("x"), PLAIN, "127.0.0.1:9092")
    assert "demands authentication" in problem.message
    assert "NEWSFLOW_KAFKA__SECURITY_PROTOCOL=PLAINTEXT" in problem.message


def test_kafka_untrusted_certificate_names_the_broker_and_the_ca_setting() -> None:
    exc = cert_error("self-signed certificate in certificate chain")
    problem = diagnose.kafka(exc, SASL, "127.0.0.1:19092")
    assert problem.kind == "tls" and problem.broker == "127.0.0.1:19092"
    assert problem.message.startswith(
        "kafka: TLS certificate of 127.0.0.1:19092 not trusted (NEWSFLOW_KAFKA__SSL_CAFILE not set)"
    ), problem.message


def test_kafka_certificate_for_another_host() -> None:
    exc = cert_error("IP address mismatch, certificate is not valid for '127.0.0.1'.", 64)
    problem = diagnose.kafka(exc, SASL, "127.0.0.1:19092")
    assert "not valid for that host name" in problem.message
    assert "NEWSFLOW_KAFKA__SSL_CHECK_HOSTNAME" in problem.message


def test_kafka_tls_client_on_a_plaintext_listener() -> None:
    exc = kerrors.KafkaConnectionError(
        "Handshake failed: [SSL: UNEXPECTED_EOF_WHILE_READING] EOF occurred in violation of "
        "protocol (_ssl.c:1006)"
    )
    problem = diagnose.kafka(exc, SASL, "127.0.0.1:9092")
    assert problem.message == (
        "kafka: 127.0.0.1:9092 does not speak TLS (a PLAINTEXT listener?): "
        "NEWSFLOW_KAFKA__SECURITY_PROTOCOL=SASL_SSL"
    )


def test_kafka_sasl_client_on_a_plaintext_listener() -> None:
    sasl_plain = SASL.model_copy(update={"security_protocol": "SASL_PLAINTEXT"})
    problem = diagnose.kafka(kerrors.IllegalSaslStateError(), sasl_plain, "127.0.0.1:9092")
    assert problem.kind == "config"
    assert "does not expect SASL" in problem.message and "SASL_PLAINTEXT" in problem.message


def test_kafka_unsupported_mechanism() -> None:
    exc = kerrors.UnsupportedSaslMechanismError(
        "Kafka broker does not support SCRAM-SHA-512 sasl mechanism. Enabled mechanisms: ['PLAIN']"
    )
    problem = diagnose.kafka(exc, SASL)
    assert "NEWSFLOW_KAFKA__SASL_MECHANISM" in problem.message and "PLAIN" in problem.message


def test_kafka_acl_denial_is_an_authorization_problem() -> None:
    problem = diagnose.kafka(kerrors.TopicAuthorizationFailedError("news.articles.raw.v1"), SASL)
    assert problem.kind == "authorization" and problem.auth == "authorization"
    assert "user 'newsflow' is not allowed" in problem.message


def test_kafka_refused_broker() -> None:
    problem = diagnose.kafka(
        kerrors.KafkaConnectionError("111 ECONNREFUSED"), PLAIN, "127.0.0.1:19102"
    )
    assert problem.message == "kafka: broker 127.0.0.1:19102 unreachable (connection refused)"
    assert problem.auth is None


@pytest.mark.parametrize(
    "exc",
    [
        kerrors.KafkaTimeoutError("Unable to bootstrap from ['127.0.0.1:9092']"),
        aioerrors.KafkaConnectionError(
            "Unable to bootstrap from [('127.0.0.1', 9092, <AddressFamily.AF_INET: 2>)]"
        ),
        aioerrors.NoBrokersAvailable(),
    ],
    ids=["kafka-python", "aiokafka", "aiokafka-no-brokers"],
)
def test_kafka_bootstrap_failure_without_a_broker_names_the_setting(exc: Exception) -> None:
    problem = diagnose.kafka(exc, PLAIN)
    assert problem.kind == "unreachable"
    assert "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS=127.0.0.1:9092" in problem.message


def test_kafka_config_error_is_passed_on() -> None:
    exc = KafkaConfigError("kafka.ssl_cafile: /nope/ca.pem is not a readable file")
    problem = diagnose.kafka(exc, SASL)
    assert problem.kind == "config"
    assert problem.message == "kafka: kafka.ssl_cafile: /nope/ca.pem is not a readable file"


def test_per_broker_summary_counts_the_brokers_up() -> None:
    results: dict[str, BaseException | None] = {
        "127.0.0.1:19092": None,
        "127.0.0.1:19102": kerrors.KafkaConnectionError("111 ECONNREFUSED"),
        "127.0.0.1:19112": None,
    }
    problem = diagnose.kafka_brokers(results, SASL)
    assert problem is not None and problem.broker == "127.0.0.1:19102"
    assert problem.message == (
        "kafka: broker 127.0.0.1:19102 unreachable (connection refused) (2 of 3 brokers up)"
    )
    results["127.0.0.1:19112"] = kerrors.KafkaConnectionError("111 ECONNREFUSED")
    problem = diagnose.kafka_brokers(results, SASL)
    assert problem is not None
    assert problem.message == (
        "kafka: brokers 127.0.0.1:19102, 127.0.0.1:19112 unreachable (connection refused) "
        "(1 of 3 brokers up)"
    )
    assert diagnose.kafka_brokers(dict.fromkeys(results), SASL) is None


def test_per_broker_summary_of_a_credential_problem_has_no_broker_list() -> None:
    auth = kerrors.SaslAuthenticationFailedError("invalid credentials")
    problem = diagnose.kafka_brokers(dict.fromkeys(("a:1", "b:2", "c:3"), auth), SASL)
    assert problem is not None and problem.kind == "authentication"
    assert problem.message == (
        "kafka: SASL authentication failed for user 'newsflow' (SCRAM-SHA-512; check "
        "NEWSFLOW_KAFKA__SASL_USERNAME/SASL_PASSWORD)"
    )


def test_missing_brokers_warning() -> None:
    missing: dict[str, BaseException | None] = {
        "127.0.0.1:19102 (id 2)": kerrors.KafkaConnectionError("111 ECONNREFUSED"),
    }
    assert diagnose.brokers_missing(missing, 2, SASL) == (
        "kafka: broker 127.0.0.1:19102 (id 2) unreachable (connection refused) (2 of 3 brokers up)"
    )
    fenced = diagnose.brokers_missing({"127.0.0.1:19102 (id 2)": None}, 2, SASL)
    assert fenced is not None and "not in the cluster metadata" in fenced
    assert diagnose.brokers_missing({}, 3, SASL) is None


def test_no_kafka_message_contains_the_password() -> None:
    leaky = [
        kerrors.SaslAuthenticationFailedError(f"bad password {PASSWORD}"),
        kerrors.KafkaError(f"sasl_plain_password={PASSWORD}"),
        KafkaConfigError(f"password {PASSWORD} too short"),
        cert_error(f"weird {PASSWORD}"),
    ]
    for exc in leaky:
        for broker in (None, "127.0.0.1:19092"):
            message = diagnose.kafka(exc, SASL, broker).message
            assert PASSWORD not in message, message


# --- Elasticsearch ---------------------------------------------------------------------------


def test_elastic_401_names_the_user() -> None:
    exc = es_error(elasticsearch.AuthenticationException, 401, {"error": {"type": "security"}})
    problem = diagnose.elastic(exc, ES_USER)
    assert problem.kind == "authentication" and problem.auth == "authentication"
    assert problem.message == (
        "elasticsearch: authentication failed (401) for user newsflow "
        "(NEWSFLOW_ELASTIC__USERNAME/NEWSFLOW_ELASTIC__PASSWORD)"
    )


def test_elastic_401_names_the_api_key_by_its_id_only() -> None:
    exc = es_error(elasticsearch.AuthenticationException, 401, {"error": f"key {API_KEY}"})
    problem = diagnose.elastic(exc, ES_KEY)
    assert problem.message == (
        f"elasticsearch: authentication failed (401) for API key {API_KEY_ID} "
        "(NEWSFLOW_ELASTIC__API_KEY)"
    )
    assert API_KEY not in problem.message and API_KEY_SECRET not in problem.message


def test_elastic_401_without_credentials_says_to_set_them() -> None:
    exc = es_error(elasticsearch.AuthenticationException, 401, {})
    problem = diagnose.elastic(exc, ElasticSettings(url="https://127.0.0.1:19200"))
    assert "no credentials (set NEWSFLOW_ELASTIC__API_KEY" in problem.message


def test_elastic_403_is_a_privilege_and_a_block_is_not() -> None:
    denied = es_error(
        elasticsearch.AuthorizationException,
        403,
        {
            "error": {
                "type": "security_exception",
                "reason": "action [indices:data/write/bulk[s]] is unauthorized for user "
                "[newsflow] with effective roles [viewer]",
            }
        },
    )
    problem = diagnose.elastic(denied, ES_USER)
    assert problem.kind == "authorization"
    assert "user newsflow" in problem.message and "is unauthorized" in problem.message
    block = es_error(
        elasticsearch.AuthorizationException,
        403,
        {"error": {"type": "cluster_block_exception", "reason": "index [x] blocked"}},
    )
    assert diagnose.elastic(block, ES_USER).kind == "refused"


def test_elastic_tls_failures() -> None:
    untrusted = elastic_transport.TlsError(
        "[SSL: CERTIFICATE_VERIFY_FAILED] certificate verify failed: self-signed certificate in "
        "certificate chain (_ssl.c:1006)"
    )
    problem = diagnose.elastic(untrusted, ES_USER)
    assert problem.message.startswith(
        "elasticsearch: TLS certificate of https://127.0.0.1:19200 not trusted "
        "(NEWSFLOW_ELASTIC__CA_CERTS not set)"
    )
    mismatch = elastic_transport.TlsError("hostname '127.0.0.1' doesn't match 'example.invalid'")
    assert "NEWSFLOW_ELASTIC__URL" in diagnose.elastic(mismatch, ES_USER).message
    wrong = elastic_transport.TlsError("[SSL: WRONG_VERSION_NUMBER] wrong version number")
    assert "does not speak TLS" in diagnose.elastic(wrong, ES_USER).message


def test_elastic_unreachable_and_slow() -> None:
    refused = elastic_transport.ConnectionError(
        "HTTPConnection(host='127.0.0.1', port=19299): Failed to establish a new connection: "
        "[Errno 111] Connection refused"
    )
    settings = ElasticSettings(url="http://127.0.0.1:19299")
    assert diagnose.elastic(refused, settings).message == (
        "elasticsearch: http://127.0.0.1:19299 unreachable (connection refused; "
        "NEWSFLOW_ELASTIC__URL)"
    )
    slow = elastic_transport.ConnectionTimeout("Connection timed out")
    assert "NEWSFLOW_ELASTIC__REQUEST_TIMEOUT_S=30" in diagnose.elastic(slow, settings).message
    reset = elastic_transport.ConnectionError(
        "('Connection aborted.', ConnectionResetError(104, 'Connection reset by peer'))"
    )
    assert "https-only" in diagnose.elastic(reset, settings).message


def test_elastic_url_credentials_and_passwords_never_shown() -> None:
    settings = ElasticSettings(
        url=f"https://newsflow:{PASSWORD}@127.0.0.1:19200", password=SecretStr(PASSWORD)
    )
    for exc in (
        elastic_transport.ConnectionError(f"https://newsflow:{PASSWORD}@127.0.0.1:19200 refused"),
        elastic_transport.TlsError(f"certificate verify failed {PASSWORD}"),
        es_error(elasticsearch.ApiError, 500, {"error": f"boom {PASSWORD}"}),
    ):
        message = diagnose.elastic(exc, settings).message
        assert PASSWORD not in message, message


def test_index_path_refusal_text_names_the_credential() -> None:
    """The sink's own refusal (what write_until_settled hands to on_request) is re-worded."""
    text = str(Refused("credentials", "AuthenticationException(401, 'security_exception')"))
    problem = diagnose.elastic_answer_problem(text, ES_KEY)
    assert problem is not None and problem.auth == "authentication"
    assert f"API key {API_KEY_ID} (NEWSFLOW_ELASTIC__API_KEY)" in problem.message
    assert "credentials" in problem.message  # the refusal reason stays named
    privileges = str(Refused("privileges", "AuthorizationException(403)"))
    reworded = diagnose.elastic_answer(privileges, ES_USER) or ""
    assert "lacks a privilege (403)" in reworded and "privileges" in reworded
    block = str(Refused("write_block", "x" * 400 + " cluster_block_exception"))
    assert "cluster_block_exception" in (diagnose.elastic_answer(block, ES_USER) or "")
    assert diagnose.elastic_answer(None, ES_USER) is None
    down = "RetryableError: ConnectionError(Connection refused)"
    assert "unreachable (connection refused" in (diagnose.elastic_answer(down, ES_USER) or "")


# --- Health: counting and logging ------------------------------------------------------------


def test_health_counts_auth_failures_and_logs_once(caplog: pytest.LogCaptureFixture) -> None:
    health = Health("index", 60)
    counter = AUTH_FAILURES.labels("elasticsearch", "authentication")
    before = counter._value.get()
    problem = diagnose.elastic(es_error(elasticsearch.AuthenticationException, 401, {}), ES_USER)
    with caplog.at_level(logging.INFO, logger="newsflow.ops"):
        health.dependency("elasticsearch", problem)
        health.dependency("elasticsearch", problem)
        ok, report = health.report()
        health.dependency("elasticsearch", None)
    assert counter._value.get() == before + 2
    assert not ok and report["problems"]["elasticsearch"] == problem.message
    lines = [r.getMessage() for r in caplog.records]
    assert lines.count(f"index not ready: {problem.message}") == 1, lines
    assert any("works again" in line for line in lines)
    assert health.report()[0]


def test_health_warnings_do_not_make_the_process_unready() -> None:
    health = Health("enrich", 60)
    health.warning("kafka-brokers", "kafka: broker a:1 unreachable (2 of 3 brokers up)")
    ok, report = health.report()
    assert ok and report["warnings"] == {
        "kafka-brokers": "kafka: broker a:1 unreachable (2 of 3 brokers up)"
    }
