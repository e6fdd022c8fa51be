"""newsflow against a real Elasticsearch with security on (issue 16.1, Elasticsearch side).

Everything runs on the secure three-broker stack (fixture ``secure_stack``, marker ``cluster``):
Kafka SASL_SSL/SCRAM, and the local Elasticsearch in its secure mode (HTTPS with the stack CA, one
file-realm user from the stack's generated secrets, API keys), beside the default stack, which
stays untouched.

Checked: basic auth over HTTPS verifies the certificate against the stack CA and nothing else; no
built-in user with a default password exists; plain http to the HTTPS port fails with a hint; an
API key made by ``create_api_key`` runs ``newsflow bootstrap`` and the index stage and can touch
nothing else; rejected credentials (a wrong password, a revoked API key) make the index stage wait
(readiness 503 naming the user or key and the setting to fix, nothing dead-lettered, nothing
lost) and after a restart with the right credential exactly the ids fed are indexed, once each.
"""

from __future__ import annotations

import base64
import json
import os
import shlex
import stat
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elastic_transport import TransportError
from elasticsearch import ApiError, Elasticsearch
from kafka import KafkaAdminClient
from pydantic import SecretStr

from streams import topics
from streams.errors import RetryableError
from streams.infra import elastic, secrets
from streams.kafka_clients import client_options
from streams.schema import encode
from streams.settings import ElasticSettings, InfraSettings, KafkaSettings, Settings
from streams.sinks.elastic import ElasticSink, make_client, prepare_bulk
from tests.integration import stage_helpers as h

pytestmark = pytest.mark.cluster
FIRST_SEEN = datetime(2026, 10, 7, tzinfo=UTC)
ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class SecureElastic:
    infra: InfraSettings  # the secure stack
    env: dict[str, str]  # NEWSFLOW_* of its clients: brokers, SCRAM user, ES user, the CA


@pytest.fixture(scope="session")
def secure_es(secure_stack: Settings) -> SecureElastic:
    """The secure stack (A's ``secure_stack``: three SASL_SSL brokers, the HTTPS Elasticsearch
    with its file-realm user) and the client environment `newsflow infra env` prints for it."""
    return SecureElastic(secure_stack.infra, secrets.client_env(secure_stack.infra))


def _settings(env: dict[str, str], monkeypatch: pytest.MonkeyPatch) -> Settings:
    for key in ("USERNAME", "PASSWORD", "API_KEY", "CA_CERTS"):
        monkeypatch.delenv(f"NEWSFLOW_ELASTIC__{key}", raising=False)
    return h.settings_for(env, monkeypatch)


def _indexed_ids(client: Elasticsearch, alias: str) -> list[str]:
    """Every document id under the alias, duplicates included (one per document)."""
    client.indices.refresh(index=alias)
    hits = client.search(index=alias, size=1000, source=False)["hits"]["hits"]
    return [hit["_id"] for hit in hits]


def _drop(client: Elasticsearch, env: dict[str, str]) -> None:
    prefix = env["NEWSFLOW_ELASTIC__INDEX_PREFIX"]
    client.indices.delete(index=f"{prefix}-*", ignore_unavailable=True)
    client.options(ignore_status=404).indices.delete_index_template(name=prefix)


def test_basic_auth_over_https_trusts_the_stack_ca_only(
    secure_es: SecureElastic, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = _settings(secure_es.env, monkeypatch)
    assert settings.elastic.url == "https://127.0.0.1:19200"
    client = make_client(settings.elastic)
    me = client.security.authenticate()
    assert me["username"] == secrets.ensure(secure_es.infra).es_user
    assert me["authentication_realm"]["type"] == "file"
    assert "superuser" in me["roles"]
    client.close()

    # The certificate is checked: the default CA bundle does not know the stack's CA.
    untrusted = make_client(settings.elastic.model_copy(update={"ca_certs": None}))
    with pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        untrusted.security.authenticate()
    untrusted.close()

    # No built-in user with a default or bootstrap password, and a wrong password is a 401.
    for user, password in [("elastic", "changeme"), ("elastic", ""), (me["username"], "wrong")]:
        other = settings.elastic.model_copy(
            update={"username": user, "password": SecretStr(password)}
        )
        guest = make_client(other)
        with pytest.raises(ApiError) as err:
            guest.security.authenticate()
        assert err.value.meta.status == 401, (user, err.value)
        guest.close()


def test_the_key_and_the_password_hash_are_private_to_the_service(
    secure_es: SecureElastic,
) -> None:
    config = elastic.run_dir(secure_es.infra) / "config"
    creds = secrets.ensure(secure_es.infra)
    for name in ("certs/http-key.pem", "users", "users_roles"):
        st = (config / name).stat()
        assert st.st_mode & 0o007 == 0, f"{name} is readable by others: {oct(st.st_mode)}"
        assert st.st_uid == os.geteuid()
    users = (config / "users").read_text()
    assert users.startswith(f"{creds.es_user}:$2a$") and creds.es_password not in users
    assert stat.S_IMODE(secrets._path(secure_es.infra).stat().st_mode) == 0o600


def test_plain_http_to_the_https_port_fails_with_a_hint(
    secure_es: SecureElastic, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = {**secure_es.env, "NEWSFLOW_ELASTIC__URL": "http://127.0.0.1:19200"}
    sink = ElasticSink(_settings(env, monkeypatch).elastic)
    sink.start()
    with pytest.raises(RetryableError, match="must start with https://"):
        sink.send(prepare_bulk([("any-index", "x", {"a": 1})]))
    sink.close()


class IndexWorker:
    def __init__(self, env: dict[str, str], alive: Callable[[], None]):
        self.base = f"http://127.0.0.1:{env['NEWSFLOW_FAUST__WEB_PORT']}"
        self.alive = alive

    def ready(self) -> tuple[int, dict[str, Any]]:
        status, body = h.http_get(self.base + "/health/ready")
        return status, (json.loads(body) if status in (200, 503) else {})

    def wait_problem(self, *words: str) -> str:
        """Until /health/ready answers 503 with an Elasticsearch problem naming ``words``."""
        seen: dict[str, Any] = {}

        def named() -> bool:
            status, report = self.ready()
            seen.update(report)
            problem = str(report.get("problems", {}).get("elasticsearch", ""))
            return status == 503 and all(w in problem for w in words)

        assert h.wait_for(named, 90, self.alive), f"readiness never named {words}: {seen}"
        return str(seen["problems"]["elasticsearch"])


@pytest.fixture
def isolated(secure_es: SecureElastic, unique: str, tmp_path: Path) -> Iterator[dict[str, str]]:
    """Worker environment: isolated topics and index names on the secure stack (Kafka and
    Elasticsearch); its topics, indices and template are removed afterwards."""
    env = {**h.isolated_env(Settings(), unique, tmp_path), **secure_es.env}
    env["NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX"] = f"test-dead-letters-{unique}"
    yield env
    client = _admin(env)
    _drop(client, env)
    client.indices.delete(index=env["NEWSFLOW_ELASTIC__DEAD_LETTER_INDEX"], ignore_unavailable=True)
    client.close()
    kafka = KafkaSettings.model_validate(secrets.client_sections(secure_es.infra)["kafka"])
    admin = KafkaAdminClient(**client_options(kafka), client_id="test-elastic-security")
    try:
        ours = [t for t in admin.list_topics() if t.startswith(env["NEWSFLOW_TOPICS__NAMESPACE"])]
        if ours:
            admin.delete_topics(ours)
    finally:
        admin.close()


def _admin(env: dict[str, str]) -> Elasticsearch:
    """A client as the stack's file-realm user, for ``env``'s index names."""
    fields = {
        k.removeprefix("NEWSFLOW_ELASTIC__").lower(): v
        for k, v in env.items()
        if k.startswith("NEWSFLOW_ELASTIC__")
    }
    return make_client(ElasticSettings(**fields))


def _bootstrap(env: dict[str, str], log: Path) -> None:
    """`newsflow bootstrap` as a user runs it, with ``env``'s credentials."""
    res = subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "bootstrap"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    log.write_text(res.stdout + res.stderr)
    assert res.returncode == 0, res.stderr[-3000:]


def _wait_and_resume(
    env: dict[str, str],
    admin_env: dict[str, str],
    wrong: dict[str, str],
    right: dict[str, str],
    expect_words: tuple[str, ...],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    secret: str,
) -> dict[str, float]:
    """Feed articles; the index worker with ``wrong`` credentials must wait (503 naming
    ``expect_words``, nothing dead-lettered or indexed); a restart with ``right`` ones indexes
    exactly the ids fed, once each. Returns timings."""
    settings = _settings(env, monkeypatch)
    admin = _admin(admin_env)
    alias = settings.elastic.alias
    articles = h.index_articles(FIRST_SEEN, range(40))
    h.produce(
        settings,
        topics.ENRICHED.topic_name(settings.topics),
        [(a.article_id.encode(), encode(a)) for a in articles],
    )
    times: dict[str, float] = {}
    log = tmp_path / "index-wrong.log"
    began = time.monotonic()
    with h.worker("index", {**env, **wrong}, log) as proc:

        def alive() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        worker = IndexWorker(env, alive)
        problem = worker.wait_problem(*expect_words)
        times["refusal_reported_s"] = time.monotonic() - began
        print(f"readiness problem: {problem}")
        assert secret not in problem  # the secret itself is never shown
        time.sleep(3)  # retries go on; nothing may be dead-lettered or skipped meanwhile
        assert worker.ready()[0] == 503
        assert _indexed_ids(admin, alias) == []
        dlq = topics.DLQ_INDEX.topic_name(settings.topics)
        assert h.read_all(settings, dlq, 0, 3, alive) == []
        # The operator restarts it. SIGTERM gives up the batch that waits to be retried,
        # unacked (redelivered to the next worker): the worker exits by itself.
        began = time.monotonic()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
            raise AssertionError(
                "the worker did not exit on SIGTERM while retrying:\n" + log.read_text()[-3000:]
            ) from None
        times["stop_s"] = time.monotonic() - began
    log = tmp_path / "index-right.log"
    began = time.monotonic()
    with h.worker("index", {**env, **right}, log) as proc:

        def alive_again() -> None:
            assert proc.poll() is None, log.read_text()[-4000:]

        worker = IndexWorker(env, alive_again)

        def all_indexed() -> bool:
            return len(_indexed_ids(admin, alias)) >= len(articles)

        assert h.wait_for(all_indexed, 120, alive_again), log.read_text()[-4000:]
        times["indexed_after_fix_s"] = time.monotonic() - began
        assert h.wait_for(lambda: worker.ready()[0] == 200, 30, alive_again), worker.ready()
        time.sleep(2)
        assert h.read_all(settings, dlq, 0, 3, alive_again) == []
    ids = _indexed_ids(admin, alias)
    assert sorted(ids) == sorted(a.article_id for a in articles)  # exact set, no duplicates
    admin.close()
    return times


def test_wrong_password_waits_reports_the_user_and_resumes_after_the_fix(
    isolated: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    env = isolated
    _bootstrap(env, tmp_path / "bootstrap.log")
    user = env["NEWSFLOW_ELASTIC__USERNAME"]
    wrong_password = "not-the-password-" + os.urandom(4).hex()
    times = _wait_and_resume(
        env,
        env,
        {"NEWSFLOW_ELASTIC__PASSWORD": wrong_password},
        {},
        ("authentication failed (401)", f"user {user}", "NEWSFLOW_ELASTIC__PASSWORD"),
        tmp_path,
        monkeypatch,
        wrong_password,
    )
    print(f"wrong password: {times}")


def test_api_key_bootstraps_and_indexes_a_revoked_one_waits(
    isolated: dict[str, str],
    secure_es: SecureElastic,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    env = isolated
    limits = _settings(env, monkeypatch).elastic
    # As a user makes one: `newsflow infra api-key --stack secure` (limits from the settings).
    res = subprocess.run(
        [sys.executable, "-m", "streams.commands.cli", "infra", "api-key", "--stack", "secure"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert res.returncode == 0, res.stderr
    name, _, value = shlex.split(res.stdout.strip())[1].partition("=")
    assert name == "NEWSFLOW_ELASTIC__API_KEY"
    key = {"encoded": value}
    revoked = elastic.create_api_key(secure_es.infra, limits, name="test-revoked")
    user_keys = ("NEWSFLOW_ELASTIC__USERNAME", "NEWSFLOW_ELASTIC__PASSWORD")
    as_key = {k: v for k, v in env.items() if k not in user_keys}
    _bootstrap({**as_key, "NEWSFLOW_ELASTIC__API_KEY": key["encoded"]}, tmp_path / "bootstrap.log")

    # The key is limited to newsflow's indices.
    keyed = make_client(
        limits.model_copy(
            update={"api_key": SecretStr(key["encoded"]), "username": None, "password": None}
        )
    )
    with pytest.raises(ApiError) as err:
        keyed.indices.create(index=f"not-newsflow-{env['NEWSFLOW_FAUST__APP_ID']}")
    assert err.value.meta.status == 403
    keyed.close()

    elastic.request_json(
        secure_es.infra, "/_security/api_key", {"ids": [revoked["id"]]}, method="DELETE"
    )
    times = _wait_and_resume(
        as_key,
        env,
        {"NEWSFLOW_ELASTIC__API_KEY": revoked["encoded"]},
        {"NEWSFLOW_ELASTIC__API_KEY": key["encoded"]},
        ("authentication failed (401)", revoked["id"], "NEWSFLOW_ELASTIC__API_KEY"),
        tmp_path,
        monkeypatch,
        revoked["api_key"],
    )
    print(f"revoked API key: {times}")
    key_id = base64.b64decode(key["encoded"]).decode().partition(":")[0]
    gone = elastic.request_json(
        secure_es.infra, "/_security/api_key", {"ids": [key_id]}, method="DELETE"
    )
    assert gone["invalidated_api_keys"] == [key_id]  # the stack keeps no test key alive
