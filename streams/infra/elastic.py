"""Local single-node Elasticsearch from the integ-test-zip distribution.

That distribution has no bundled JDK (needs Java 21+ via ES_JAVA_HOME) and only a few modules
(see ``modules.json`` written at start and the README). Elasticsearch refuses to run as root, so
as root it is run as a system user that owns its home, config, data and logs. Offline plugin
zips listed in ``NEWSFLOW_INFRA__ES_PLUGINS`` are installed into this local copy only.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import pwd
import subprocess
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from streams.infra import dist, plugin, safefs
from streams.infra.errors import InfraError
from streams.infra.java import find_java_home
from streams.infra.procs import PidFile, Tracked, require_free_ports, start_detached, wait_until
from streams.infra.secrets import stack_run_dir
from streams.settings import InfraSettings


def run_dir(infra: InfraSettings) -> Path:
    return stack_run_dir(infra) / "elasticsearch"


def log_path(infra: InfraSettings) -> Path:
    return run_dir(infra) / "elasticsearch.log"


def pidfile(infra: InfraSettings) -> PidFile:
    return PidFile(run_dir(infra) / "elasticsearch.pid")


def base_url(infra: InfraSettings) -> str:
    return f"http://{infra.host}:{infra.es_port}"


def elasticsearch_yml(infra: InfraSettings, rdir: Path) -> str:
    settings = {
        "cluster.name": "newsflow-local",
        "node.name": "newsflow-local-1",
        "path.data": str(rdir / "data"),
        "path.logs": str(rdir / "logs"),
        "network.host": infra.host,
        "http.port": str(infra.es_port),
        "transport.port": str(infra.es_transport_port),
        "discovery.type": "single-node",
        "xpack.security.enabled": "false",
        "cluster.routing.allocation.disk.threshold_enabled": "false",
        "action.destructive_requires_name": "false",
    }
    return "".join(f"{k}: {json.dumps(v)}\n" for k, v in settings.items())


def _run_as(infra: InfraSettings) -> str | None:
    """The user Elasticsearch runs as: ourselves, or a system user when we are root."""
    if os.geteuid() != 0:
        return None
    try:
        pwd.getpwnam(infra.es_user)
    except KeyError:
        res = subprocess.run(
            [
                "useradd",
                "--system",
                "--user-group",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                infra.es_user,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise InfraError(
                f"Could not create system user {infra.es_user!r}: {res.stderr.strip()}",
                "create it yourself or set NEWSFLOW_INFRA__ES_USER to an existing non-root user.",
            ) from None
    return infra.es_user


def _check_traversable(path: Path, user: str) -> None:
    entry = pwd.getpwnam(user)
    for parent in [*reversed(path.parents)]:
        st = parent.stat()
        if st.st_uid != entry.pw_uid and not st.st_mode & 0o001:
            raise InfraError(
                f"User {user!r} cannot enter {parent} (on the way to {path}).",
                "set NEWSFLOW_INFRA__HOME to a directory outside /root, e.g. /var/cache/newsflow.",
            )


def _env(infra: InfraSettings, rdir: Path) -> dict[str, str]:
    java_home = find_java_home(21, infra.es_java_home)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("ES_", "JAVA_TOOL"))}
    env.update(
        ES_JAVA_HOME=str(java_home),
        ES_PATH_CONF=str(rdir / "config"),
        ES_TMPDIR=str(rdir / "tmp"),
        HOME=str(rdir),
    )
    return env


def plugin_name(archive: Path) -> str:
    """The name a plugin zip declares (classic or stable plugin descriptor)."""
    try:
        with zipfile.ZipFile(archive) as zf:
            for member in ("plugin-descriptor.properties", "stable-plugin-descriptor.properties"):
                if member in zf.namelist():
                    for line in zf.read(member).decode().splitlines():
                        key, _, value = line.partition("=")
                        if key.strip() == "name":
                            return value.strip()
    except (OSError, zipfile.BadZipFile) as exc:
        raise InfraError(
            f"Plugin {archive} cannot be read: {exc}",
            "rebuild the plugin zip or remove it from NEWSFLOW_INFRA__ES_PLUGINS.",
        ) from exc
    raise InfraError(
        f"Plugin {archive} has no plugin descriptor with a name.",
        "a plugin zip carries plugin-descriptor.properties or "
        "stable-plugin-descriptor.properties at its root.",
    )


def install_plugins(
    infra: InfraSettings, env: dict[str, str], extra: tuple[Path, ...] = ()
) -> list[str]:
    """Install ``extra`` and the configured offline plugin zips; reinstall one whose zip changed."""
    home = dist.es_home(infra)
    markers = run_dir(infra) / "plugins"
    safefs.claim_dir(markers)
    installed = []
    for archive in (*extra, *infra.es_plugins):
        name = plugin_name(archive)
        digest = hashlib.sha256(archive.read_bytes()).hexdigest()
        marker = markers / f"{name}.sha256"
        if (home / "plugins" / name).is_dir() and marker.is_file() and marker.read_text() == digest:
            installed.append(name)
            continue
        tool = _tool(infra, "elasticsearch-plugin")
        if (home / "plugins" / name).is_dir():
            subprocess.run([str(tool), "remove", name], env=env, capture_output=True, check=False)
        res = subprocess.run(
            [str(tool), "install", "--batch", archive.resolve().as_uri()],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if res.returncode != 0:
            raise InfraError(
                f"Installing plugin {archive} failed:\n{(res.stderr or res.stdout)[-1500:]}",
                "a classic plugin must name this exact Elasticsearch version; "
                "rebuild it or remove it from NEWSFLOW_INFRA__ES_PLUGINS.",
            )
        safefs.write_file(marker, digest)
        installed.append(name)
    return installed


def prepare(infra: InfraSettings) -> tuple[dict[str, str], str | None]:
    """Lay out the run directory and install the plugins; returns the environment and the user
    Elasticsearch runs as.

    As root, root owns the distribution, the run directory, the config (group-readable by the
    service user), pid file, log and plugin markers; the service user owns only ``data``,
    ``logs`` and ``tmp``. A layout from an older version (everything the service user's) is
    taken back: anything that user could have changed is deleted and re-created (the
    distribution is re-unpacked from its checked zip), never reused and never followed."""
    user = _run_as(infra)
    rdir = run_dir(infra)
    home = dist.es_home(infra)
    safefs.own_dir(rdir)
    if not safefs.tree_is_ours(home):
        dist.unpack_es(infra, lambda _msg: None)  # written by someone else: start afresh
    config = rdir / "config"
    safefs.claim_dir(config, 0o750)
    safefs.claim_dir(config / "jvm.options.d", 0o750)
    for name in ("elasticsearch.pid", "elasticsearch.log", "modules.json"):
        safefs.claim_file(rdir / name)
    group = None if user is None else pwd.getpwnam(user).pw_gid
    shipped = home / "config"
    for item in shipped.iterdir():
        if item.is_file() and not item.is_symlink() and item.name != "elasticsearch.yml":
            safefs.write_file(config / item.name, item.read_bytes(), 0o640, group)
    safefs.write_file(config / "elasticsearch.yml", elasticsearch_yml(infra, rdir), 0o640, group)
    safefs.write_file(
        config / "jvm.options.d" / "newsflow-heap.options",
        f"-Xms{infra.es_heap}\n-Xmx{infra.es_heap}\n",
        0o640,
        group,
    )
    env = _env(infra, rdir)
    _create_keystore(infra, env, group)
    # Always: the built-in language analyzers this distribution lacks (cached build, see plugin.py).
    analysis = plugin.build_analysis_plugin(infra, lambda _msg: None)
    install_plugins(infra, env, extra=(analysis,))
    for path in [home / "plugins", *(home / "plugins").rglob("*")]:  # whatever the umask
        if not path.is_symlink():
            path.chmod(path.stat().st_mode & 0o7755)
    if group is not None:  # the config directories: root's, readable by the service user
        for sub in (config, config / "jvm.options.d"):
            os.chown(sub, os.geteuid(), group, follow_symlinks=False)
    for name in ("data", "logs", "tmp"):
        safefs.service_dir(rdir / name, user)
    if user is not None:
        _check_traversable(rdir / "data", user)
        _check_traversable(home / "bin" / "elasticsearch", user)
    return env, user


def _tool(infra: InfraSettings, name: str) -> Path:
    """A tool of the distribution that we run ourselves (as root): only from a tree only root
    can change."""
    tool = dist.es_home(infra) / "bin" / name
    safefs.check_trusted(tool)
    return tool


def _create_keystore(infra: InfraSettings, env: dict[str, str], group: int | None) -> None:
    """Elasticsearch creates a missing keystore in its config directory at start, which the
    service user cannot write: create it beforehand (as us, from the trusted distribution)."""
    keystore = run_dir(infra) / "config" / "elasticsearch.keystore"
    safefs.claim_file(keystore)
    if keystore.exists():
        return
    res = subprocess.run(
        [str(_tool(infra, "elasticsearch-keystore")), "create"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if res.returncode != 0 or not keystore.is_file():
        raise InfraError(
            f"Creating the Elasticsearch keystore failed:\n{(res.stderr or res.stdout)[-1500:]}"
        )
    if group is not None:
        os.chown(keystore, os.geteuid(), group, follow_symlinks=False)
    os.chmod(keystore, 0o640)


def start(infra: InfraSettings) -> Tracked:
    require_free_ports("Elasticsearch", infra.host, [infra.es_port, infra.es_transport_port])
    env, user = prepare(infra)
    argv = [str(dist.es_home(infra) / "bin" / "elasticsearch")]
    return start_detached(
        "elasticsearch",
        argv,
        log=log_path(infra),
        pidfile=pidfile(infra),
        env=env,
        cwd=run_dir(infra),
        user=user,
    )


def get_json(infra: InfraSettings, path: str, timeout: float = 5.0) -> Any:
    with urllib.request.urlopen(base_url(infra) + path, timeout=timeout) as resp:  # noqa: S310
        return json.loads(resp.read())


def is_ready(infra: InfraSettings) -> bool:
    health = get_json(infra, "/_cluster/health?wait_for_status=yellow&timeout=2s")
    return health.get("status") in ("green", "yellow")


def wait_ready(infra: InfraSettings, tracked: Tracked) -> float:
    return wait_until(
        "Elasticsearch", lambda: is_ready(infra), tracked=tracked, timeout_s=infra.start_timeout_s
    )


def record_modules(infra: InfraSettings) -> dict[str, list[str]]:
    """Modules and plugins the running node really has; saved to ``modules.json``."""
    # `GET /` is the rest-root module, which this distribution lacks: ask the nodes API.
    fields = "nodes.*.version,nodes.*.modules.name,nodes.*.plugins.name"
    nodes = get_json(infra, f"/_nodes/_local/plugins?filter_path={fields}")
    node = next(iter(nodes["nodes"].values()))
    found = {
        "version": [node["version"]],
        "modules": sorted(m["name"] for m in node.get("modules", [])),
        "plugins": sorted(p["name"] for p in node.get("plugins", [])),
    }
    # A node started by an older version may still run in a run directory its service user
    # owns: then nothing is written there (the next start takes the directory back).
    with contextlib.suppress(InfraError):
        safefs.write_file(run_dir(infra) / "modules.json", json.dumps(found, indent=2))
    return found
