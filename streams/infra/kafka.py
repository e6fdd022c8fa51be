"""Local Apache Kafka in KRaft combined mode: each node is a broker and a controller in one JVM.

One broker (the default stack) or ``infra.brokers`` of them (`newsflow infra up --brokers 3`):

- Ports: broker i (from 0) serves clients on ``secrets.broker_ports(infra)[i]`` =
  ``kafka_port + 10*i`` and its controller on ``kafka_controller_port + 10*i``; with the default
  9092/9093 that is 9092/9093, 9102/9103, 9112/9113. The two series never meet while the
  controller port differs from the client port by less than 10 (checked: ``check_ports``).
- Quorum: one node formats with ``--standalone`` and ``controller.quorum.bootstrap.servers``
  (the default stack, unchanged); several nodes share a static ``controller.quorum.voters``
  list (every node a voter) and one cluster id, kept in ``<run>/kafka/cluster.id``.
- Replication: with N brokers new topics default to replication factor ``min(3, N)`` and
  ``min.insync.replicas`` ``min(2, RF-1)`` (3 and 2 from three brokers on); the offsets,
  transaction and share-coordinator topics get the same.
- Files: the single broker keeps ``<run>/kafka/{server.properties,kafka.pid,kafka.log,data}``;
  broker n of several keeps them under ``<run>/kafka/broker-<n>/``.
- Security (``infra.secure``): the client listener is ``SASL_SSL`` with SCRAM-SHA-512, the
  brokers talk to each other on it as user ``admin``; the newsflow user and ``admin`` are
  created when the storage is formatted (``--add-scram``), passwords from
  ``secrets.ensure``. TLS uses PEM stores (Kafka 3.3+ takes an unencrypted PKCS#8 key): the
  server certificate ``tls/kafka.pem`` from the stack's CA, key and chain joined in
  ``tls/kafka-keystore.pem`` (0600). The controller listener stays PLAINTEXT on loopback: only
  processes of this machine reach it. No authorizer: every authenticated user may do
  everything (a production cluster adds ``StandardAuthorizer`` and ACLs; see the README).
  ``server.properties`` holds the ``admin`` password and is written 0600.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from streams.infra import dist, safefs, secrets, tls
from streams.infra.errors import InfraError
from streams.infra.java import find_java_home
from streams.infra.procs import PidFile, Tracked, require_free_ports, start_detached, stop, tail
from streams.infra.secrets import stack_run_dir
from streams.settings import InfraSettings, KafkaSettings

LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka
        level: WARN
      - name: org.apache.kafka
        level: WARN
      - name: kafka.server.KafkaServer
        level: INFO
"""

SCRAM = "SCRAM-SHA-512"
ADMIN_USER = "admin"  # the brokers' own (inter-broker) SCRAM user


def new_cluster_id() -> str:
    """16 random bytes, URL-safe base64 without padding (what `kafka-storage random-uuid` gives)."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")


def run_dir(infra: InfraSettings) -> Path:
    return stack_run_dir(infra) / "kafka"


@dataclass(frozen=True)
class Broker:
    """One node of the local cluster (broker and controller)."""

    index: int  # from 0
    node_id: int  # index + 1
    name: str  # "kafka" alone, "kafka-<node_id>" among several
    port: int  # client listener
    controller_port: int
    dir: Path  # server.properties, kafka.pid, kafka.log, data/

    @property
    def pidfile(self) -> PidFile:
        return PidFile(self.dir / "kafka.pid")

    @property
    def log(self) -> Path:
        return self.dir / "kafka.log"

    @property
    def data(self) -> Path:
        return self.dir / "data"


def controller_ports(infra: InfraSettings) -> list[int]:
    return [infra.kafka_controller_port + 10 * i for i in range(infra.brokers)]


def brokers(infra: InfraSettings) -> list[Broker]:
    rdir = run_dir(infra)
    single = infra.brokers == 1
    return [
        Broker(
            index=i,
            node_id=i + 1,
            name="kafka" if single else f"kafka-{i + 1}",
            port=port,
            controller_port=cport,
            dir=rdir if single else rdir / f"broker-{i + 1}",
        )
        for i, (port, cport) in enumerate(
            zip(secrets.broker_ports(infra), controller_ports(infra), strict=True)
        )
    ]


def check_ports(infra: InfraSettings) -> None:
    """Every port of the stack distinct: client and controller series and Elasticsearch's."""
    used: dict[int, str] = {}
    named = [(p, f"broker {i + 1} client") for i, p in enumerate(secrets.broker_ports(infra))]
    named += [(p, f"broker {i + 1} controller") for i, p in enumerate(controller_ports(infra))]
    named += [(infra.es_port, "Elasticsearch HTTP"), (infra.es_transport_port, "ES transport")]
    for port, what in named:
        if port in used:
            raise InfraError(
                f"port {port} would serve both the {used[port]} and the {what} port.",
                "broker i uses kafka_port+10*i and kafka_controller_port+10*i: keep the two "
                "base ports less than 10 apart and away from the Elasticsearch ports.",
            )
        used[port] = what


def all_pidfiles(infra: InfraSettings) -> list[tuple[str, PidFile]]:
    """Pid files of this stack's brokers, also those of an earlier broker count (so `down`
    stops whatever an earlier `up` started)."""
    found = {b.name: b.pidfile for b in brokers(infra)}
    rdir = run_dir(infra)
    if (rdir / "kafka.pid").exists():
        found.setdefault("kafka", PidFile(rdir / "kafka.pid"))
    for path in sorted(rdir.glob("broker-*/kafka.pid")):
        found.setdefault(f"kafka-{path.parent.name.removeprefix('broker-')}", PidFile(path))
    return list(found.items())


def log_path(infra: InfraSettings) -> Path:
    return brokers(infra)[0].log


def pidfile(infra: InfraSettings) -> PidFile:
    return brokers(infra)[0].pidfile


def keystore_path(infra: InfraSettings) -> Path:
    return secrets.tls_dir(infra) / "kafka-keystore.pem"


def replication(brokers_n: int) -> tuple[int, int]:
    """(replication factor, min.insync.replicas) of a cluster of ``brokers_n`` brokers."""
    rf = min(3, brokers_n)
    return rf, max(1, min(2, rf - 1))


def _jaas(user: str, password: str) -> str:
    return (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        f'username="{user}" password="{password}";'
    )


def server_properties(
    infra: InfraSettings, data_dir: Path, index: int = 0, admin_password: str | None = None
) -> str:
    """``server.properties`` of broker ``index`` (pure: paths and ports from ``infra``).
    A secure stack needs ``admin_password`` (the inter-broker SCRAM user's)."""
    host = infra.host
    ports, cports = secrets.broker_ports(infra), controller_ports(infra)
    listener = "SASL_SSL" if infra.secure else "PLAINTEXT"
    rf, min_isr = replication(infra.brokers)
    props = {
        "process.roles": "broker,controller",
        "node.id": str(index + 1),
    }
    if infra.brokers == 1:
        props["controller.quorum.bootstrap.servers"] = f"{host}:{cports[0]}"
    else:
        props["controller.quorum.voters"] = ",".join(
            f"{i + 1}@{host}:{p}" for i, p in enumerate(cports)
        )
    props |= {
        "listeners": f"{listener}://{host}:{ports[index]},CONTROLLER://{host}:{cports[index]}",
        "advertised.listeners": f"{listener}://{host}:{ports[index]}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": listener,
        "listener.security.protocol.map": f"CONTROLLER:PLAINTEXT,{listener}:{listener}",
        "log.dirs": str(data_dir),
        "num.partitions": "1",
        "default.replication.factor": str(rf),
        "min.insync.replicas": str(min_isr),
        "offsets.topic.replication.factor": str(rf),
        "transaction.state.log.replication.factor": str(rf),
        "transaction.state.log.min.isr": str(min_isr),
        "share.coordinator.state.topic.replication.factor": str(rf),
        "share.coordinator.state.topic.min.isr": str(min_isr),
        "group.initial.rebalance.delay.ms": "0",
        "auto.create.topics.enable": "false",
        "log.retention.hours": "168",
    }
    if infra.brokers == 1:  # the default stack's file, exactly as before
        for key in ("default.replication.factor", "min.insync.replicas"):
            del props[key]
    if infra.secure:
        if not admin_password:
            raise ValueError("a secure broker needs the admin (inter-broker) password")
        tdir = secrets.tls_dir(infra)
        props |= {
            "sasl.enabled.mechanisms": SCRAM,
            "sasl.mechanism.inter.broker.protocol": SCRAM,
            f"listener.name.sasl_ssl.{SCRAM.lower()}.sasl.jaas.config": _jaas(
                ADMIN_USER, admin_password
            ),
            "ssl.keystore.type": "PEM",
            "ssl.keystore.location": str(keystore_path(infra)),
            "ssl.truststore.type": "PEM",
            "ssl.truststore.location": str(tdir / "ca.pem"),
            "ssl.client.auth": "none",
            "ssl.endpoint.identification.algorithm": "https",
        }
    return "".join(f"{k}={v}\n" for k, v in props.items())


def format_args(infra: InfraSettings, creds: secrets.LocalSecrets | None) -> list[str]:
    """StorageTool arguments after ``-c <props>``: the quorum style and the SCRAM users."""
    args = ["--ignore-formatted"]
    if infra.brokers == 1:
        args.append("--standalone")
    if infra.secure:
        assert creds is not None
        for user, password in (
            (ADMIN_USER, creds.kafka_admin_password),
            (creds.kafka_user, creds.kafka_password),
        ):
            args += ["--add-scram", f"{SCRAM}=[name={user},password={password}]"]
    return args


def _java(infra: InfraSettings) -> Path:
    return find_java_home(17, infra.java_home) / "bin" / "java"


def _classpath(infra: InfraSettings) -> str:
    return str(dist.kafka_home(infra) / "libs" / "*")


def _env(infra: InfraSettings) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KAFKA_", "JAVA_TOOL"))}
    return env


def _shape(infra: InfraSettings) -> dict[str, Any]:
    return {"brokers": infra.brokers, "secure": infra.secure}


def _cluster_id(infra: InfraSettings) -> str:
    """One cluster id for every node of the stack, and a check that the storage was formatted
    for this shape (broker count, security): another shape needs a fresh format."""
    rdir = run_dir(infra)
    path = rdir / "cluster.json"
    raw = safefs.read_owned(path, "cluster file")
    if raw is not None:
        known = json.loads(raw)
        if {k: known.get(k) for k in ("brokers", "secure")} != _shape(infra):
            raise InfraError(
                f"Kafka storage under {rdir} was formatted for {known.get('brokers')} "
                f"broker(s), secure={known.get('secure')}; asked for {infra.brokers}, "
                f"secure={infra.secure}.",
                f"stop the stack (`newsflow infra down --stack {infra.stack}`), delete {rdir} "
                "(its topics are lost) and run `infra up` again, or ask for the old shape.",
            )
        return str(known["cluster_id"])
    has_data = any(b.data.joinpath("meta.properties").is_file() for b in brokers(infra))
    if has_data and infra.brokers == 1 and not infra.secure:
        return new_cluster_id()  # a single plain broker formatted before cluster.json existed
    if has_data:
        raise InfraError(
            f"Kafka storage under {rdir} has no cluster.json: its shape is unknown.",
            f"delete {rdir} and run `infra up` again.",
        )
    made = {"cluster_id": new_cluster_id(), **_shape(infra)}
    if infra.brokers > 1 or infra.secure:
        safefs.write_file(path, json.dumps(made))
    return str(made["cluster_id"])


def _keystore(infra: InfraSettings) -> None:
    certs = tls.ensure_server_cert(secrets.tls_dir(infra), "kafka", [infra.host, "localhost"])
    pem = certs.key.read_text() + certs.cert.read_text()
    safefs.write_file(keystore_path(infra), pem, mode=0o600)


def prepare(infra: InfraSettings) -> dict[str, Path]:
    """Write every broker's config and format the storage of those not yet formatted (KRaft
    needs the cluster id, and a secure cluster its SCRAM users, in each log dir). Returns the
    ``server.properties`` of each broker by name."""
    check_ports(infra)
    rdir = run_dir(infra)
    safefs.own_dir(rdir)  # ours alone: pid files, logs and configs are written here
    creds = secrets.ensure(infra) if infra.secure else None
    if infra.secure:
        _keystore(infra)
    safefs.write_file(rdir / "log4j2.yaml", LOG4J2)
    cluster_id = _cluster_id(infra)
    props: dict[str, Path] = {}
    pending: list[tuple[Broker, subprocess.Popen[str]]] = []
    for broker in brokers(infra):
        safefs.own_dir(broker.dir)
        for name in ("kafka.pid", "kafka.log"):
            safefs.claim_file(broker.dir / name)
        path = broker.dir / "server.properties"
        admin = creds.kafka_admin_password if creds else None
        text = server_properties(infra, broker.data, broker.index, admin)
        safefs.write_file(path, text, mode=0o600 if infra.secure else 0o644)
        props[broker.name] = path
        if broker.data.joinpath("meta.properties").is_file():
            continue
        argv = [
            str(_java(infra)),
            "-cp",
            _classpath(infra),
            f"-Dlog4j2.configurationFile={rdir / 'log4j2.yaml'}",
            "kafka.tools.StorageTool",
            "format",
            "-t",
            cluster_id,
            "-c",
            str(path),
            *format_args(infra, creds),
        ]
        pending.append(
            (
                broker,
                subprocess.Popen(
                    argv,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    env=_env(infra),
                ),
            )
        )
    for broker, proc in pending:  # formatted in parallel: one JVM start each
        out, _ = proc.communicate()
        if proc.returncode != 0:
            raise InfraError(
                f"Formatting Kafka storage of {broker.name} failed:\n" + out[-2000:],
                f"delete {broker.data} if it holds a broken previous format and retry.",
            )
    return props


def start_broker(infra: InfraSettings, broker: Broker, props: Path) -> Tracked:
    require_free_ports(broker.name, infra.host, [broker.port, broker.controller_port])
    argv = [
        str(_java(infra)),
        f"-Xms{infra.kafka_heap}",
        f"-Xmx{infra.kafka_heap}",
        "-XX:+UseG1GC",
        "-XX:MaxGCPauseMillis=20",
        "-Djava.awt.headless=true",
        f"-Dlog4j2.configurationFile={run_dir(infra) / 'log4j2.yaml'}",
        f"-Dkafka.logs.dir={broker.dir / 'logs'}",
        "-cp",
        _classpath(infra),
        "kafka.Kafka",
        str(props),
    ]
    return start_detached(
        broker.name, argv, log=broker.log, pidfile=broker.pidfile, env=_env(infra), cwd=broker.dir
    )


def start(infra: InfraSettings, which: Sequence[Broker] | None = None) -> dict[str, Tracked]:
    """Start ``which`` brokers (default: all) at once, without waiting: on two cores three JVMs
    starting together are ready sooner than one after another."""
    todo = list(brokers(infra) if which is None else which)
    for broker in todo:  # every port checked before any JVM starts
        require_free_ports(broker.name, infra.host, [broker.port, broker.controller_port])
    props = prepare(infra)
    started: dict[str, Tracked] = {}
    try:
        for broker in todo:
            started[broker.name] = start_broker(infra, broker, props[broker.name])
    except InfraError:
        for name, tracked in started.items():
            stop(tracked, timeout_s=20)
            next(b for b in todo if b.name == name).pidfile.remove()
        raise
    return started


def client_settings(infra: InfraSettings, ports: Sequence[int] | None = None) -> KafkaSettings:
    """What a client of this stack uses (brokers, and SASL_SSL credentials and CA when secure),
    from ``secrets.client_env``; ``ports`` narrows the bootstrap list."""
    fields = secrets.client_sections(infra).get("kafka", {})
    if ports is not None:
        fields["bootstrap_servers"] = ",".join(f"{infra.host}:{p}" for p in ports)
    return KafkaSettings(**fields)


def cluster_node_ids(infra: InfraSettings, ports: Sequence[int] | None = None) -> set[int]:
    """Node ids in the cluster metadata, asked through ``ports`` (default: every broker)."""
    from kafka import KafkaAdminClient

    from streams.kafka_clients import client_options

    admin = KafkaAdminClient(
        **client_options(client_settings(infra, ports)),
        request_timeout_ms=5000,
        client_id="newsflow-infra",
    )
    try:
        found = admin.describe_cluster().get("brokers", [])
        return {int(b["broker_id"]) for b in found if not b.get("is_fenced")}
    finally:
        admin.close()


def is_ready(infra: InfraSettings) -> bool:
    """Ready = a real client (with the stack's credentials) sees every broker in the cluster
    metadata (not just an open port)."""
    return cluster_node_ids(infra) >= {b.node_id for b in brokers(infra)}


def broker_ready(infra: InfraSettings, broker: Broker) -> bool:
    """This broker answers on its own port and is registered in the cluster."""
    return broker.node_id in cluster_node_ids(infra, [broker.port])


def wait_ready(infra: InfraSettings, tracked: Sequence[Tracked] | Tracked) -> float:
    """Until every broker is in the metadata; fails early when one of ``tracked`` died."""
    procs = [tracked] if isinstance(tracked, Tracked) else list(tracked)
    started = time.monotonic()
    while True:
        for proc in procs:
            if not proc.alive():
                raise InfraError(
                    f"{proc.name} exited while starting; last log lines:\n" + tail(proc.log, 25),
                    f"full log: {proc.log}",
                )
        try:
            if is_ready(infra):
                return time.monotonic() - started
        except Exception:  # noqa: BLE001, S110 - not ready yet; any error means "try again"
            pass
        if time.monotonic() - started > infra.start_timeout_s:
            logs = "\n".join(f"--- {p.name}\n{tail(p.log, 10)}" for p in procs)
            raise InfraError(
                f"Kafka ({infra.brokers} broker(s)) not ready after "
                f"{infra.start_timeout_s:.0f}s; last log lines:\n{logs}",
                "full logs: " + ", ".join(str(p.log) for p in procs),
            )
        time.sleep(0.5)


def stop_broker(infra: InfraSettings, node_id: int, timeout_s: float = 60.0) -> bool:
    """Stop one broker (SIGTERM, SIGKILL after ``timeout_s``; ``timeout_s=0`` kills at once).
    `newsflow infra up` starts it again. True if it was running."""
    broker = brokers(infra)[node_id - 1]
    tracked = broker.pidfile.read()
    if tracked is None:
        return False
    ran = stop(tracked, timeout_s=timeout_s)
    broker.pidfile.remove()
    return ran
