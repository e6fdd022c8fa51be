"""Local single-node Elasticsearch from the integ-test-zip distribution.

That distribution has no bundled JDK (needs Java 21+ via ES_JAVA_HOME) and only a few modules
(see ``modules.json`` written at start and the README). Elasticsearch refuses to run as root, so
as root it is run as a system user that owns its home, config, data and logs. Offline plugin
zips listed in ``NEWSFLOW_INFRA__ES_PLUGINS`` are installed into this local copy only.

Secure mode (``infra.secure``): security on, HTTPS on the HTTP layer with a certificate of the
stack's CA (``tls``), and one file-realm user from the stack's secrets (``secrets.ensure``) with
the ``superuser`` role. The built-in users (``elastic`` ...) are switched off: there is no
default or bootstrap password (the reserved realm would otherwise take the keystore seed as
``elastic``'s password). The transport layer uses the same certificate: a single node on
loopback (``discovery.type: single-node``) talks to no other node, but without transport TLS
Elasticsearch warns at every start and would refuse to start in production mode.
``create_api_key`` makes an API key limited to newsflow's indices with that user.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import pwd
import ssl
import subprocess
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

import bcrypt

from streams.infra import dist, plugin, safefs, secrets, tls
from streams.infra.errors import InfraError
from streams.infra.java import find_java_home
from streams.infra.procs import PidFile, Tracked, require_free_ports, start_detached, wait_until
from streams.infra.secrets import stack_run_dir
from streams.settings import ElasticSettings, InfraSettings


def run_dir(infra: InfraSettings) -> Path:
    return stack_run_dir(infra) / "elasticsearch"


def log_path(infra: InfraSettings) -> Path:
    return run_dir(infra) / "elasticsearch.log"


def pidfile(infra: InfraSettings) -> PidFile:
    return PidFile(run_dir(infra) / "elasticsearch.pid")


def base_url(infra: InfraSettings) -> str:
    scheme = "https" if infra.secure else "http"
    return f"{scheme}://{infra.host}:{infra.es_port}"


# Where the HTTP certificate and key are copied: Elasticsearch reads them only from inside its
# config directory (relative paths in elasticsearch.yml are resolved against it).
CERT = "certs/http.pem"
CERT_KEY = "certs/http-key.pem"
CERT_CA = "certs/ca.pem"


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
    if infra.secure:
        settings.update(
            {
                "xpack.security.enabled": "true",
                "xpack.security.http.ssl.enabled": "true",
                "xpack.security.http.ssl.certificate": CERT,
                "xpack.security.http.ssl.key": CERT_KEY,
                # A single node on loopback talks to no other node, but Elasticsearch still
                # warns (and refuses in production mode) without transport TLS: same certificate.
                "xpack.security.transport.ssl.enabled": "true",
                "xpack.security.transport.ssl.certificate": CERT,
                "xpack.security.transport.ssl.key": CERT_KEY,
                "xpack.security.transport.ssl.certificate_authorities": CERT_CA,
                "xpack.security.transport.ssl.verification_mode": "certificate",
                # no built-in users: `elastic` would otherwise log in with the keystore seed
                "xpack.security.authc.reserved_realm.enabled": "false",
                "xpack.security.authc.api_key.enabled": "true",
            }
        )
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
    if infra.secure:
        _write_security(infra, config, group)
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
        for sub in (config, config / "jvm.options.d", config / "certs"):
            if sub.is_dir():
                os.chown(sub, os.geteuid(), group, follow_symlinks=False)
    for name in ("data", "logs", "tmp"):
        safefs.service_dir(rdir / name, user)
    if user is not None:
        _check_traversable(rdir / "data", user)
        _check_traversable(home / "bin" / "elasticsearch", user)
    return env, user


def password_hash(password: str) -> str:
    """A file-realm password hash (bcrypt, the ``$2a$`` form Elasticsearch's own tool writes)."""
    return bcrypt.hashpw(password.encode(), bcrypt.gensalt(10, prefix=b"2a")).decode()


def _write_security(infra: InfraSettings, config: Path, group: int | None) -> None:
    """The HTTP certificate and key, and the file-realm user of a secure stack, into the config
    directory: root's, readable by the service user's group only (by us alone without root)."""
    paths = tls.ensure_server_cert(
        secrets.tls_dir(infra), "elasticsearch", sorted({infra.host, "localhost"})
    )
    private = 0o600 if group is None else 0o640
    safefs.claim_dir(config / "certs", 0o750)
    safefs.write_file(config / CERT, paths.cert.read_bytes(), 0o644, group)
    safefs.write_file(config / CERT_CA, paths.ca.read_bytes(), 0o644, group)
    safefs.write_file(config / CERT_KEY, paths.key.read_bytes(), private, group)
    creds = secrets.ensure(infra)
    safefs.write_file(
        config / "users", f"{creds.es_user}:{password_hash(creds.es_password)}\n", private, group
    )
    safefs.write_file(config / "users_roles", f"superuser:{creds.es_user}\n", private, group)


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


def ssl_context(infra: InfraSettings) -> ssl.SSLContext | None:
    """Trusting the stack's CA (and nothing else) for a secure stack; None for plain http."""
    if not infra.secure:
        return None
    return ssl.create_default_context(cafile=str(secrets.tls_dir(infra) / "ca.pem"))


def basic_auth(infra: InfraSettings) -> dict[str, str]:
    """The Authorization header of the stack's file-realm user (none without security)."""
    if not infra.secure:
        return {}
    creds = secrets.ensure(infra)
    token = base64.b64encode(f"{creds.es_user}:{creds.es_password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def request_json(
    infra: InfraSettings,
    path: str,
    body: Any = None,
    method: str | None = None,
    timeout: float = 5.0,
) -> Any:
    """One request to the local node as its admin user (https with the stack's CA if secure)."""
    headers = basic_auth(infra)
    data = None
    if body is not None:
        data = json.dumps(body).encode()
        headers["Content-Type"] = "application/json"
    req = urllib.request.Request(base_url(infra) + path, data, headers, method=method)  # noqa: S310
    with urllib.request.urlopen(req, timeout=timeout, context=ssl_context(infra)) as resp:  # noqa: S310
        return json.loads(resp.read())


def get_json(infra: InfraSettings, path: str, timeout: float = 5.0) -> Any:
    return request_json(infra, path, timeout=timeout)


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


def api_key_role(elastic: ElasticSettings) -> dict[str, Any]:
    """What a newsflow API key may do: put the index templates and the ILM policy (``newsflow
    bootstrap``; a cluster with ILM answers 403 to its status without ``manage_ilm``) and
    create, write, read and manage newsflow's own indices (monthly article indices, their
    reindex copies, the alias, the dead-letter index) -- nothing else on the cluster.

    ``_analyze`` without an index (how bootstrap probes for token filters) needs the cluster
    privilege ``manage``: deliberately not granted; bootstrap then assumes they exist."""
    prefix = elastic.index_prefix
    return {
        "cluster": ["manage_index_templates", "manage_ilm"],
        "indices": [
            {
                "names": [f"{prefix}-*", f"{prefix}_r*", elastic.alias, elastic.dead_letter_index],
                "privileges": ["create_index", "index", "write", "read", "manage"],
            }
        ],
    }


def create_api_key(
    infra: InfraSettings,
    elastic: ElasticSettings,
    name: str = "newsflow",
    expiration: str | None = None,
) -> dict[str, str]:
    """A new API key of the secure local stack, made by its file-realm user and limited to
    ``api_key_role(elastic)``: ``id``, ``name``, ``api_key`` and ``encoded`` (the value of
    ``NEWSFLOW_ELASTIC__API_KEY``). ``expiration`` is an Elasticsearch duration (``7d``)."""
    if not infra.secure:
        raise InfraError(
            "API keys need security on: this local stack runs without it.",
            "start a secure stack (`newsflow infra up --secure --stack NAME`).",
        )
    body: dict[str, Any] = {
        "name": name,
        "role_descriptors": {"newsflow": api_key_role(elastic)},
        "metadata": {"application": "newsflow"},
    }
    if expiration is not None:
        body["expiration"] = expiration
    found: dict[str, str] = request_json(
        infra, "/_security/api_key", body, method="POST", timeout=30
    )
    return found
