"""The local multi-broker and secure Kafka stack's generated files (pure functions, no JVM)."""

from __future__ import annotations

from pathlib import Path

import pytest

from streams.infra import kafka, secrets, stack
from streams.infra.errors import InfraError
from streams.settings import InfraSettings


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines())


def _three(tmp_path: Path, **kw: object) -> InfraSettings:
    fields: dict[str, object] = {
        "home": tmp_path,
        "stack": "secure",
        "brokers": 3,
        "kafka_port": 19092,
        "kafka_controller_port": 19093,
        "es_port": 19200,
        "es_transport_port": 19300,
    }
    return InfraSettings.model_validate(fields | kw)


def test_broker_i_listens_on_its_own_ports_with_every_node_a_voter(tmp_path: Path) -> None:
    infra = _three(tmp_path)
    for i, (port, cport) in enumerate([(19092, 19093), (19102, 19103), (19112, 19113)]):
        props = _props(kafka.server_properties(infra, tmp_path / f"d{i}", i))
        assert props["node.id"] == str(i + 1)
        assert props["listeners"] == f"PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}"
        assert props["advertised.listeners"] == f"PLAINTEXT://127.0.0.1:{port}"
        assert props["controller.quorum.voters"] == (
            "1@127.0.0.1:19093,2@127.0.0.1:19103,3@127.0.0.1:19113"
        )
        assert "controller.quorum.bootstrap.servers" not in props  # never mix the two styles
        assert props["log.dirs"] == str(tmp_path / f"d{i}")
    assert secrets.broker_ports(infra) == [19092, 19102, 19112]


def test_three_brokers_replicate_three_times_with_two_in_sync(tmp_path: Path) -> None:
    props = _props(kafka.server_properties(_three(tmp_path), tmp_path, 1))
    assert props["default.replication.factor"] == "3"
    assert props["min.insync.replicas"] == "2"
    for topic in ("offsets.topic", "transaction.state.log", "share.coordinator.state.topic"):
        assert props[f"{topic}.replication.factor"] == "3"
    assert props["transaction.state.log.min.isr"] == "2"
    assert props["share.coordinator.state.topic.min.isr"] == "2"
    assert kafka.replication(1) == (1, 1)
    assert kafka.replication(2) == (2, 1)
    assert kafka.replication(5) == (3, 2)


def test_single_broker_file_is_unchanged_by_the_cluster_options(tmp_path: Path) -> None:
    """The running default stack must keep exactly its config (standalone quorum, RF 1)."""
    infra = InfraSettings(home=tmp_path)
    props = _props(kafka.server_properties(infra, tmp_path / "data"))
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:9093"
    assert "controller.quorum.voters" not in props
    assert "default.replication.factor" not in props and "min.insync.replicas" not in props
    assert props["offsets.topic.replication.factor"] == "1"
    assert kafka.format_args(infra, None) == ["--ignore-formatted", "--standalone"]
    assert kafka.run_dir(infra) == tmp_path / "run" / "kafka"
    [broker] = kafka.brokers(infra)
    assert (broker.name, broker.dir, broker.pidfile.path) == (
        "kafka",
        tmp_path / "run" / "kafka",
        tmp_path / "run" / "kafka" / "kafka.pid",
    )


def test_secure_broker_speaks_sasl_ssl_with_scram_and_pem_stores(tmp_path: Path) -> None:
    infra = _three(tmp_path, secure=True)
    props = _props(kafka.server_properties(infra, tmp_path, 2, admin_password="s3cret-x"))
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19112,CONTROLLER://127.0.0.1:19113"
    assert props["listener.security.protocol.map"] == "CONTROLLER:PLAINTEXT,SASL_SSL:SASL_SSL"
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["sasl.enabled.mechanisms"] == "SCRAM-SHA-512"
    assert props["sasl.mechanism.inter.broker.protocol"] == "SCRAM-SHA-512"
    jaas = props["listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config"]
    assert 'username="admin" password="s3cret-x";' in jaas and "ScramLoginModule" in jaas
    assert props["ssl.keystore.type"] == "PEM" and props["ssl.truststore.type"] == "PEM"
    tls = tmp_path / "run-secure" / "tls"
    assert props["ssl.keystore.location"] == str(tls / "kafka-keystore.pem")
    assert props["ssl.truststore.location"] == str(tls / "ca.pem")
    assert not any("PLAINTEXT://" in v for v in props.values())  # no plain client listener
    with pytest.raises(ValueError, match="admin"):
        kafka.server_properties(infra, tmp_path, 0)


def test_scram_users_are_created_at_format_time(tmp_path: Path) -> None:
    infra = _three(tmp_path, secure=True)
    creds = secrets.LocalSecrets("newsflow", "pw-client", "pw-admin", "newsflow", "pw-es")
    args = kafka.format_args(infra, creds)
    assert "--standalone" not in args  # static voters
    scram = [args[i + 1] for i, a in enumerate(args) if a == "--add-scram"]
    assert scram == [
        "SCRAM-SHA-512=[name=admin,password=pw-admin]",
        "SCRAM-SHA-512=[name=newsflow,password=pw-client]",
    ]


def test_non_default_stack_keeps_its_files_apart(tmp_path: Path) -> None:
    infra = _three(tmp_path)
    assert kafka.run_dir(infra) == tmp_path / "run-secure" / "kafka"
    names = [(b.name, b.dir.name) for b in kafka.brokers(infra)]
    assert names == [("kafka-1", "broker-1"), ("kafka-2", "broker-2"), ("kafka-3", "broker-3")]


def test_colliding_ports_are_refused(tmp_path: Path) -> None:
    kafka.check_ports(_three(tmp_path))
    with pytest.raises(InfraError, match="19102"):  # controller base 10 above the client base
        kafka.check_ports(_three(tmp_path, kafka_controller_port=19102))
    with pytest.raises(InfraError, match="Elasticsearch"):
        kafka.check_ports(_three(tmp_path, es_port=19112))


def test_stack_remembers_its_shape_unless_told_otherwise(tmp_path: Path) -> None:
    stack.remember(_three(tmp_path, secure=True))
    plain = InfraSettings(home=tmp_path, stack="secure")
    found = stack.resolve(plain)
    assert (found.brokers, found.secure, found.kafka_port, found.es_port) == (3, True, 19092, 19200)
    explicit = stack.resolve(InfraSettings(home=tmp_path, stack="secure", es_port=29200))
    assert explicit.es_port == 29200 and explicit.brokers == 3
    assert stack.resolve(InfraSettings(home=tmp_path)).brokers == 1  # default stack: no record


def test_client_sections_match_client_env(tmp_path: Path) -> None:
    infra = _three(tmp_path, secure=True)
    sections = secrets.client_sections(infra)
    assert (
        sections["kafka"]["bootstrap_servers"] == "127.0.0.1:19092,127.0.0.1:19102,127.0.0.1:19112"
    )
    assert sections["kafka"]["security_protocol"] == "SASL_SSL"
    assert sections["topics"] == {"replication_factor": "3", "min_insync_replicas": "2"}
    settings = kafka.client_settings(infra, [19102])
    assert settings.bootstrap_servers == "127.0.0.1:19102"
    assert settings.sasl_password is not None
    assert settings.sasl_password.get_secret_value() == secrets.ensure(infra).kafka_password


def test_one_up_or_down_of_a_stack_at_a_time(tmp_path: Path) -> None:
    import threading

    infra = _three(tmp_path)
    said: list[str] = []
    inside = threading.Event()
    release = threading.Event()

    def hold() -> None:
        with stack._locked(infra, said.append):
            inside.set()
            release.wait(10)

    holder = threading.Thread(target=hold)
    holder.start()
    assert inside.wait(10)

    def enter() -> None:
        with stack._locked(infra, said.append):
            pass

    second = threading.Thread(target=enter)
    second.start()
    second.join(1.0)
    assert second.is_alive()  # blocked while the first holds the stack
    assert said == ["stack secure: waiting for another `infra up`/`down` to finish ..."]
    release.set()
    holder.join(10)
    second.join(10)
    assert not second.is_alive()


def test_infra_env_prints_eval_able_exports_of_the_stack(tmp_path: Path) -> None:
    import shlex

    from typer.testing import CliRunner

    from streams.commands.cli import app

    stack.remember(_three(tmp_path, secure=True))  # what `infra up --stack secure ...` records
    result = CliRunner().invoke(
        app, ["infra", "env", "--stack", "secure"], env={"NEWSFLOW_INFRA__HOME": str(tmp_path)}
    )
    assert result.exit_code == 0, result.output
    exported = {}
    for line in result.stdout.splitlines():
        word, assignment = shlex.split(line)
        assert word == "export"
        key, _, value = assignment.partition("=")
        exported[key] = value
    infra = _three(tmp_path, secure=True)
    assert exported == secrets.client_env(infra)
    assert exported["NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS"].count(",") == 2
    assert exported["NEWSFLOW_KAFKA__SASL_PASSWORD"] == secrets.ensure(infra).kafka_password
