"""The local stack as root versus its service user (issue 14.15): real files, links, users.

Root must never write through, read from, or execute something the Elasticsearch service user
could have planted (symbolic links, hard links, pid files, scripts), and must refuse archive
members that would land outside the directory they are unpacked into.
"""

from __future__ import annotations

import os
import pwd
import shutil
import stat
import subprocess
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from streams.infra import dist, elastic, plugin
from streams.infra.errors import InfraError
from streams.infra.procs import PidFile, Tracked, _start_ticks, start_detached
from streams.settings import InfraSettings

SERVICE_USER = "nobody"  # any existing non-root account plays the service user
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="the attacks need root and another user")


def _give(path: Path, user: str = SERVICE_USER) -> None:
    entry = pwd.getpwnam(user)
    os.lchown(path, entry.pw_uid, entry.pw_gid)


def _uid(user: str = SERVICE_USER) -> int:
    return pwd.getpwnam(user).pw_uid


# --- pid files and logs ----------------------------------------------------------------------


def test_pid_file_write_replaces_a_planted_link_instead_of_following_it(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    (tmp_path / "run").mkdir()
    path = tmp_path / "run" / "svc.pid"
    path.symlink_to(victim)
    PidFile(path).write(Tracked("svc", 123, 456, tmp_path / "svc.log"))
    assert victim.read_text() == "precious\n"
    assert not path.is_symlink() and PidFile(path).read() == Tracked(
        "svc", 123, 456, tmp_path / "svc.log"
    )


@as_root
def test_pid_file_in_a_directory_the_service_user_owns_is_not_written(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    _give(run)
    with pytest.raises(InfraError, match="can be written by another user"):
        PidFile(run / "svc.pid").write(Tracked("svc", 123, 456, tmp_path / "svc.log"))
    assert not (run / "svc.pid").exists()


@as_root
def test_pid_file_written_by_the_service_user_is_not_believed(tmp_path: Path) -> None:
    """Its pid and start time could name any process, which `infra down` would then kill."""
    bystander = subprocess.Popen(["sleep", "60"])
    try:
        ticks = _start_ticks(bystander.pid)
        assert ticks is not None
        forged = tmp_path / "svc.pid"
        forged.write_text(
            f'{{"name": "svc", "pid": {bystander.pid}, "start_ticks": {ticks}, "log": "/x"}}'
        )
        _give(forged)
        with pytest.raises(InfraError, match="refusing to trust it"):
            PidFile(forged).read()
    finally:
        bystander.kill()
        bystander.wait()


def test_pid_file_that_is_a_link_or_hard_link_is_not_read(tmp_path: Path) -> None:
    real = tmp_path / "real.pid"
    real.write_text('{"name": "svc", "pid": 1, "start_ticks": 1, "log": "/x"}')
    (tmp_path / "soft.pid").symlink_to(real)
    with pytest.raises(InfraError, match="a link"):
        PidFile(tmp_path / "soft.pid").read()
    os.link(real, tmp_path / "hard.pid")
    with pytest.raises(InfraError, match="hard links"):
        PidFile(tmp_path / "hard.pid").read()


def test_service_log_that_is_a_link_is_refused_and_not_appended_to(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("precious\n")
    log = tmp_path / "svc.log"
    log.symlink_to(victim)
    with pytest.raises(InfraError, match="a link"):
        start_detached("svc", ["echo", "pwned"], log=log, pidfile=PidFile(tmp_path / "svc.pid"))
    assert victim.read_text() == "precious\n"
    assert not (tmp_path / "svc.pid").exists()


# --- archives --------------------------------------------------------------------------------

VERSION = "0.0.1"  # unpinned: only the zip's CRCs are checked
PREFIX = f"elasticsearch-{VERSION}/"


def _zip(infra: InfraSettings, members: list[tuple[zipfile.ZipInfo | str, str]]) -> Path:
    archive = dist.es_zip(infra)
    archive.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr(PREFIX + "config/jvm.options", "-Xss1m\n")
        for info, body in members:
            zf.writestr(info, body)
    return archive


def _link_member(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("{prefix}../../outside/evil.sh", "'..'"),
        ("../outside/evil.sh", "'..'"),
        ("{abs}/outside/evil.sh", "absolute path"),
        ("C:/outside/evil.sh", "absolute path"),
        ("{prefix}bin\\..\\..\\evil.sh", "backslash"),
    ],
)
def test_unsafe_zip_members_are_refused_before_anything_is_written(
    tmp_path: Path, name: str, why: str
) -> None:
    infra = InfraSettings(home=tmp_path / "home", es_version=VERSION)
    member = name.format(prefix=PREFIX, abs=str(tmp_path).lstrip("/"))
    if "{abs}" in name:
        member = "/" + member
    _zip(infra, [(member, "#!/bin/sh\necho pwned\n")])
    with pytest.raises(InfraError, match="unsafe member") as err:
        dist._unpack_es(infra, lambda _msg: None)
    assert why in str(err.value)
    assert "not the published Elasticsearch zip" in (err.value.hint or "")
    assert not (tmp_path / "outside").exists()
    assert not dist.es_home(infra).exists()
    assert not dist.es_home(infra).with_name(dist.es_home(infra).name + ".partial").exists()


def test_symbolic_link_zip_members_are_refused(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path / "home", es_version=VERSION)
    _zip(infra, [(_link_member(PREFIX + "lib/evil.jar", "/etc/shadow"), "/etc/shadow")])
    with pytest.raises(InfraError, match=r"unsafe member .*symbolic link"):
        dist._unpack_es(infra, lambda _msg: None)
    assert not dist.es_home(infra).exists()


def test_unpacked_files_are_never_setuid_or_group_writable(tmp_path: Path) -> None:
    infra = InfraSettings(home=tmp_path / "home", es_version=VERSION)
    info = zipfile.ZipInfo(PREFIX + "bin/elasticsearch")
    info.external_attr = 0o6777 << 16
    _zip(infra, [(info, "#!/bin/sh\n")])
    dist._unpack_es(infra, lambda _msg: None)
    mode = stat.S_IMODE((dist.es_home(infra) / "bin" / "elasticsearch").stat().st_mode)
    assert mode == 0o755


def test_unpacked_tree_is_ours_alone_whatever_the_umask(tmp_path: Path) -> None:
    """Else every start would find it "not ours" and unpack it again (umask 002 is common)."""
    from streams.infra import safefs

    infra = InfraSettings(home=tmp_path / "home", es_version=VERSION)
    _zip(infra, [(PREFIX + "lib/a.jar", "jar")])
    old = os.umask(0o002)
    try:
        dist._unpack_es(infra, lambda _msg: None)
    finally:
        os.umask(old)
    assert safefs.tree_is_ours(dist.es_home(infra))


def test_manifest_reports_files_added_to_the_distribution(tmp_path: Path) -> None:
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "a.jar").write_bytes(b"a")
    dist.write_manifest(tmp_path)
    (tmp_path / "lib" / "b.jar").write_bytes(b"planted")  # a JVM loads every jar in lib/
    (tmp_path / "lib" / "a.jar").unlink()
    (tmp_path / "lib" / "a.jar").symlink_to(tmp_path / "elsewhere")
    assert dist.verify_manifest(tmp_path) == ["unexpected lib/b.jar", "link lib/a.jar"]


# --- the Elasticsearch run layout as root ----------------------------------------------------


def _fake_distribution_zip(infra: InfraSettings) -> None:
    """A stand-in distribution whose tools behave like the real ones where prepare() uses them."""
    plugin_tool = (
        "#!/bin/sh\n"  # install --batch file:///.../<name>.zip -> plugins/<name>/
        'home=$(cd "$(dirname "$0")/.." && pwd)\n'
        'if [ "$1" = install ]; then n=$(basename "$3" .zip); mkdir -p "$home/plugins/$n"; fi\n'
    )
    keystore_tool = (
        '#!/bin/sh\n[ "$1" = create ] && echo keystore > "$ES_PATH_CONF/elasticsearch.keystore"\n'
    )
    members: list[tuple[zipfile.ZipInfo | str, str]] = []
    for name, body in (
        ("bin/elasticsearch", "#!/bin/sh\nsleep 60\n"),
        ("bin/elasticsearch-plugin", plugin_tool),
        ("bin/elasticsearch-keystore", keystore_tool),
    ):
        info = zipfile.ZipInfo(PREFIX + name)
        info.external_attr = 0o755 << 16
        members.append((info, body))
    members.append((PREFIX + "config/log4j2.properties", "status = error\n"))
    members.append((PREFIX + "plugins/", ""))
    _zip(infra, members)


@pytest.fixture
def service_home(monkeypatch: pytest.MonkeyPatch) -> Iterator[InfraSettings]:
    base = Path(tempfile.mkdtemp(prefix="newsflow-h8-"))
    base.chmod(0o755)  # the service user must be able to enter it
    infra = InfraSettings(home=base, es_version=VERSION, es_user=SERVICE_USER)
    _fake_distribution_zip(infra)
    analysis = base / "analysis.zip"
    with zipfile.ZipFile(analysis, "w") as zf:
        zf.writestr("stable-plugin-descriptor.properties", "name=analysis\n")
    # The real plugin is built with Maven; the layout does not depend on it.
    monkeypatch.setattr(plugin, "build_analysis_plugin", lambda _infra, _say: analysis)
    try:
        yield infra
    finally:
        shutil.rmtree(base, ignore_errors=True)


@as_root
def test_prepare_takes_back_a_layout_the_service_user_owned(service_home: InfraSettings) -> None:
    """The layout older versions left (everything the service user's), with traps in it: a
    config file and the pid file linked to root's files, a tool rewritten to run as root, a
    hard link in the data directory to a root file."""
    infra = service_home
    base = infra.home
    dist._unpack_es(infra, lambda _msg: None)
    home, rdir = dist.es_home(infra), elastic.run_dir(infra)
    for sub in ("config/jvm.options.d", "data", "logs", "tmp", "plugins"):
        (rdir / sub).mkdir(parents=True)
    victims = {name: base / name for name in ("yml-victim", "pid-victim", "data-victim")}
    for victim in victims.values():
        victim.write_text("precious\n")
        victim.chmod(0o600)
    (rdir / "config" / "elasticsearch.yml").symlink_to(victims["yml-victim"])
    (rdir / "elasticsearch.pid").symlink_to(victims["pid-victim"])
    pwned = base / "pwned"
    (home / "bin" / "elasticsearch-plugin").write_text(f"#!/bin/sh\ntouch {pwned}\n")
    for tree in (home, rdir):
        for path in [tree, *tree.rglob("*")]:
            _give(path)
    os.link(victims["data-victim"], rdir / "data" / "innocent")  # after: same inode as root's

    env, user = elastic.prepare(infra)

    assert user == SERVICE_USER
    assert not pwned.exists(), "root ran a script the service user had edited"
    for victim in victims.values():
        st = victim.stat()
        assert (victim.read_text(), st.st_uid, stat.S_IMODE(st.st_mode)) == ("precious\n", 0, 0o600)
    # root's: the distribution, the run directory, the config (readable by the service group)
    for path in [home, *home.rglob("*")]:
        st = path.lstat()
        assert st.st_uid == 0 and not st.st_mode & 0o022, path
    assert (home / "plugins" / "analysis").is_dir()  # installed from the trusted tree
    for path in (rdir, rdir / "config", rdir / "plugins"):
        assert path.lstat().st_uid == 0 and not path.lstat().st_mode & 0o022, path
    for path in (rdir / "config").rglob("*"):
        st = path.lstat()
        assert not path.is_symlink() and st.st_uid == 0 and not st.st_mode & 0o027, path
    assert (rdir / "config" / "elasticsearch.keystore").read_text() == "keystore\n"
    assert "network.host" in (rdir / "config" / "elasticsearch.yml").read_text()
    assert not (rdir / "elasticsearch.pid").exists()
    # the service user's: only its data, logs and temp directories
    for name in ("data", "logs", "tmp"):
        assert (rdir / name).lstat().st_uid == _uid(), name
    assert env["ES_PATH_CONF"] == str(rdir / "config")


@as_root
def test_start_runs_as_the_service_user_with_root_owned_pid_file_and_log(
    service_home: InfraSettings,
) -> None:
    infra = service_home
    dist._unpack_es(infra, lambda _msg: None)
    tracked = elastic.start(infra.model_copy(update={"es_port": 1, "es_transport_port": 2}))
    try:
        assert tracked.alive()
        assert Path(f"/proc/{tracked.pid}").stat().st_uid == _uid()
        for path in (elastic.pidfile(infra).path, elastic.log_path(infra)):
            assert path.lstat().st_uid == 0 and not path.is_symlink()
        assert elastic.pidfile(infra).read() == tracked
    finally:
        os.killpg(tracked.pid, 9)
