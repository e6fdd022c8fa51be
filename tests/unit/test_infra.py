"""The local-stack machinery that needs no Kafka or Elasticsearch: real files, real processes."""

from __future__ import annotations

import base64
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from streams.infra import dist, elastic, kafka
from streams.infra.errors import InfraError
from streams.infra.java import find_java_home, java_major
from streams.infra.procs import PidFile, port_in_use, require_free_ports, start_detached, stop
from streams.settings import InfraSettings


def _fake_jdk(root: Path, name: str, version: str) -> Path:
    home = root / name
    (home / "bin").mkdir(parents=True)
    (home / "bin" / "java").write_text("#!/bin/sh\n")
    (home / "release").write_text(f'IMPLEMENTOR="x"\nJAVA_VERSION="{version}"\n')
    return home


def test_java_major_reads_release_files(tmp_path: Path) -> None:
    assert java_major(_fake_jdk(tmp_path, "a", "21.0.4")) == 21
    assert java_major(_fake_jdk(tmp_path, "b", "1.8.0_402")) == 8
    assert java_major(tmp_path / "missing") is None


def test_find_java_home_picks_newest_and_rejects_old(tmp_path: Path) -> None:
    _fake_jdk(tmp_path, "jdk17", "17.0.9")
    new = _fake_jdk(tmp_path, "jdk25", "25.0.1")
    assert find_java_home(21, None, root=tmp_path) == new.resolve()
    with pytest.raises(InfraError, match="Java 17; Java 21\\+ is required"):
        find_java_home(21, tmp_path / "jdk17", root=tmp_path)
    with pytest.raises(InfraError, match="No Java 99\\+ found") as err:
        find_java_home(99, None, root=tmp_path)
    assert "ES_JAVA_HOME" in err.value.hint


def test_cluster_id_is_16_bytes_urlsafe_without_padding() -> None:
    ids = {kafka.new_cluster_id() for _ in range(200)}
    assert len(ids) == 200
    for cid in ids:
        assert "=" not in cid and "+" not in cid and "/" not in cid
        assert len(base64.urlsafe_b64decode(cid + "==")) == 16


def test_kafka_properties_are_plain_and_single_node(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path, kafka_port=19092, kafka_controller_port=19093)
    text = kafka.server_properties(infra, tmp_path / "data")
    props = dict(line.split("=", 1) for line in text.splitlines())
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert props["controller.quorum.bootstrap.servers"] == "127.0.0.1:19093"
    assert "controller.quorum.voters" not in props  # never mix the two quorum styles
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["auto.create.topics.enable"] == "false"
    assert not any("#" in line for line in text.splitlines())


def test_elasticsearch_yml_binds_loopback_single_node(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path, es_port=19200)
    yml = elastic.elasticsearch_yml(infra, tmp_path)
    assert 'network.host: "127.0.0.1"' in yml and 'http.port: "19200"' in yml
    assert 'discovery.type: "single-node"' in yml


def test_manifest_detects_changed_and_missing_files(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.jar").write_bytes(b"a" * 100)
    (tmp_path / "b.txt").write_text("b")
    dist.write_manifest(tmp_path)
    assert dist.verify_manifest(tmp_path) == []
    (tmp_path / "lib" / "a.jar").write_bytes(b"a" * 99 + b"X")  # same size, other bytes
    (tmp_path / "b.txt").unlink()
    assert sorted(dist.verify_manifest(tmp_path)) == ["changed lib/a.jar", "missing b.txt"]
    with pytest.raises(InfraError, match="corrupt") as err:
        dist.check_intact(tmp_path, "thing")
    assert "delete" in err.value.hint


def test_corrupt_elasticsearch_zip_is_reported(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path, es_version="9.9.9")
    dist.es_zip(infra).parent.mkdir(parents=True)
    dist.es_zip(infra).write_bytes(b"PK\x03\x04 truncated garbage")
    with pytest.raises(InfraError, match="not a valid zip") as err:
        dist._unpack_es(infra, lambda _msg: None)
    assert "run `newsflow infra up` again" in err.value.hint
    assert not dist.es_zip(infra).exists()  # the bad copy is gone, the next run refetches


def test_unpack_keeps_exec_bits(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path, es_version="9.9.9")
    archive = dist.es_zip(infra)
    archive.parent.mkdir(parents=True)
    with zipfile.ZipFile(archive, "w") as zf:
        info = zipfile.ZipInfo("elasticsearch-9.9.9/bin/elasticsearch")
        info.external_attr = 0o755 << 16
        zf.writestr(info, "#!/bin/sh\n")
        zf.writestr("elasticsearch-9.9.9/config/jvm.options", "-Xss1m\n")
    dist._unpack_es(infra, lambda _msg: None)
    script = dist.es_home(infra) / "bin" / "elasticsearch"
    assert script.stat().st_mode & 0o111
    assert dist.verify_manifest(dist.es_home(infra)) == []


def test_plugin_name_from_descriptor(tmp_path: Path) -> None:
    good = tmp_path / "good.zip"
    with zipfile.ZipFile(good, "w") as zf:
        zf.writestr("stable-plugin-descriptor.properties", "description=x\nname=newsflow-arabic\n")
    assert elastic.plugin_name(good) == "newsflow-arabic"
    bad = tmp_path / "bad.zip"
    with zipfile.ZipFile(bad, "w") as zf:
        zf.writestr("README", "no descriptor")
    with pytest.raises(InfraError, match="no plugin descriptor"):
        elastic.plugin_name(bad)


def test_busy_port_is_refused_with_a_hint() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert port_in_use("127.0.0.1", port)
        with pytest.raises(InfraError, match=f"port 127.0.0.1:{port} is already in use") as err:
            require_free_ports("Kafka", "127.0.0.1", [port])
        assert "NEWSFLOW_INFRA__" in err.value.hint


def test_stop_kills_the_started_group_and_only_it(tmp_path: Path) -> None:
    # A parent that spawns a child, like Elasticsearch's launcher; plus an unrelated process.
    script = "import subprocess, time; subprocess.Popen(['sleep', '300']); time.sleep(300)"
    pidfile = PidFile(tmp_path / "svc.pid")
    tracked = start_detached(
        "svc", [sys.executable, "-c", script], log=tmp_path / "svc.log", pidfile=pidfile
    )
    bystander = subprocess.Popen(["sleep", "300"])
    try:
        time.sleep(0.5)
        assert pidfile.read() == tracked and tracked.alive()
        assert stop(tracked, timeout_s=10) is True
        assert not tracked.alive()
        members = subprocess.run(
            ["ps", "-o", "pid=,stat=", "-g", str(tracked.pid)], capture_output=True, text=True
        ).stdout.split("\n")
        live = [m for m in members if m.strip() and "Z" not in m.split()[1]]
        assert live == []  # the child died with the group (zombies await a reaping init)
        assert bystander.poll() is None  # never killed by name or pattern
        assert stop(tracked) is False  # second stop is harmless
    finally:
        bystander.kill()
        bystander.wait()


def test_pinned_sha256_mismatch_is_refused(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path, es_version="9.3.2")
    archive = dist.es_zip(infra)
    archive.parent.mkdir(parents=True)
    archive.write_bytes(b"not the published zip")
    with pytest.raises(InfraError, match="expected 99b5b540") as err:
        dist._check_es_zip(infra, lambda _msg: None)
    assert ".m2/repository/org/elasticsearch" in err.value.hint
    assert not archive.exists()


def test_unpinned_version_only_warns(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path, es_version="9.9.9")
    said: list[str] = []
    dist._check_es_zip(infra, said.append)
    assert said and "no pinned SHA-256" in said[0]
