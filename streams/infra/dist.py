"""Downloading, unpacking and verifying the Kafka and Elasticsearch distributions.

Maven does the download (``deploy/local/pom.xml``): its local repository is a checksum-verified
cache that resumes artifact by artifact after an interruption. We copy the artifacts into
``<home>/dist``, unpack Elasticsearch, and write a manifest (size + SHA-256 of every file) once a
distribution is complete; every later ``infra up`` checks the manifest, so a damaged cache is
reported instead of producing a half-working service.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import stat
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path, PurePosixPath

from streams import resources
from streams.infra.errors import InfraError
from streams.settings import InfraSettings

MANIFEST = ".newsflow-manifest.json"

# Maven Central publishes the integ-test zip without checksum files, so Maven cannot verify it.
# SHA-256 of the zips as first downloaded here; another version is accepted with a warning
# (only its zip CRCs are then checked).
ES_ZIP_SHA256 = {
    "9.1.5": "44d43090e4e17147500ed1601c1f5688ba9a4806c8111e2367f2953235335dd9",
    "9.2.0": "bf44938a0490ba2a303d39c9cb64b38963dd08c812ce93e10816e878585bcb6b",
    "9.2.4": "af7b81fe31627c7523b2546351cd4e47310faa6a72c8db8dc8f7a191e871cfaf",
    "9.3.2": "99b5b540c8d3a5c53cbe1e4f35c46acefff59131760ddc330a7616cd319086f1",
}
POM = resources.deploy_file("local/pom.xml")  # package data


def maven_pom(infra: InfraSettings) -> Path:
    """The pom copied to ``<home>/maven``: Maven writes ``target/`` beside its pom, and the
    installed package data may be read-only (a wheel in the image's site-packages)."""
    return resources.materialize(POM, infra.home / "maven" / "pom.xml")


Progress = Callable[[str], None]


def dist_dir(infra: InfraSettings) -> Path:
    return infra.home / "dist"


def kafka_home(infra: InfraSettings) -> Path:
    return dist_dir(infra) / f"kafka-{infra.kafka_version}"


def es_home(infra: InfraSettings) -> Path:
    return dist_dir(infra) / f"elasticsearch-{infra.es_version}"


def es_zip(infra: InfraSettings) -> Path:
    return dist_dir(infra) / "downloads" / f"elasticsearch-{infra.es_version}.zip"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def write_manifest(root: Path, skip: tuple[str, ...] = ()) -> None:
    files = {
        str(p.relative_to(root)): [p.stat().st_size, _sha256(p)]
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != MANIFEST and not str(p.relative_to(root)).startswith(skip)
    }
    (root / MANIFEST).write_text(json.dumps({"files": files, "skip": list(skip)}, indent=0))


def verify_manifest(root: Path) -> list[str]:
    """Problems found in ``root`` against its manifest (empty list = intact)."""
    try:
        manifest = json.loads((root / MANIFEST).read_text())
        files = manifest["files"]
        # Manifests written before "skip" was recorded skipped plugins/ (Elasticsearch).
        skip = tuple(manifest.get("skip", ["plugins"]))
    except (OSError, ValueError, KeyError) as exc:
        return [f"manifest unreadable: {exc}"]
    problems = [
        f"unexpected {rel}"  # e.g. a jar dropped into lib/ would be loaded
        for rel in sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if (p.is_file() or p.is_symlink()) and p.name != MANIFEST
        )
        if rel not in files and not rel.startswith(skip)
    ]
    for rel, (size, digest) in files.items():
        path = root / rel
        if path.is_symlink():
            problems.append(f"link {rel}")
        elif not path.is_file():
            problems.append(f"missing {rel}")
        elif path.stat().st_size != size or _sha256(path) != digest:
            problems.append(f"changed {rel}")
    return problems


def is_complete(root: Path) -> bool:
    return (root / MANIFEST).is_file()


def check_intact(root: Path, what: str) -> None:
    problems = verify_manifest(root)
    if problems:
        shown = "; ".join(problems[:5]) + (" ..." if len(problems) > 5 else "")
        raise InfraError(
            f"The cached {what} in {root} is corrupt ({len(problems)} problem(s): {shown}).",
            f"delete {root} and run `newsflow infra up` again to re-create it.",
        )


def fetch(infra: InfraSettings, progress: Progress) -> None:
    """Make sure both distributions are present and intact, downloading what is missing."""
    if not is_complete(kafka_home(infra)):
        progress(f"fetching Kafka {infra.kafka_version} with Maven (cached in ~/.m2) ...")
        _maven_fetch(infra, "kafka", progress, strict=True)
        write_manifest(kafka_home(infra))
    if not is_complete(es_home(infra)):
        unpack_es(infra, progress)
    check_intact(kafka_home(infra), f"Kafka {infra.kafka_version}")
    check_intact(es_home(infra), f"Elasticsearch {infra.es_version}")


def _maven_repo_dir(infra: InfraSettings) -> Path:
    return (
        Path.home()
        / ".m2/repository/org/elasticsearch/distribution/integ-test-zip"
        / "elasticsearch"
        / infra.es_version
    )


def _check_es_zip(infra: InfraSettings, progress: Progress) -> None:
    expected = ES_ZIP_SHA256.get(infra.es_version)
    archive = es_zip(infra)
    if expected is None:
        progress(
            f"warning: no pinned SHA-256 for Elasticsearch {infra.es_version}; "
            "only the zip's own CRCs are checked"
        )
        return
    actual = _sha256(archive)
    if actual != expected:
        archive.unlink(missing_ok=True)
        raise InfraError(
            f"{archive.name} has SHA-256 {actual}, expected {expected}.",
            f"the download is damaged or not the published file: delete {_maven_repo_dir(infra)} "
            "(Maven's cached copy) and run `newsflow infra up` again.",
        )


def _maven_fetch(infra: InfraSettings, profile: str, progress: Progress, strict: bool) -> None:
    if shutil.which(infra.maven) is None:
        raise InfraError(
            f"Maven (`{infra.maven}`) is not installed; it fetches Kafka and "
            "Elasticsearch from Maven Central.",
            "install it (Debian: `apt-get install -y maven`).",
        )
    if not POM.is_file():
        raise InfraError(
            f"{POM} is missing from the installed package data ({resources.DEPLOY_PACKAGE}); "
            "the wheel was built without it."
        )
    pom = maven_pom(infra)
    argv = [
        infra.maven,
        "-B",
        *(["--strict-checksums"] if strict else []),
        "-P",
        profile,
        "-f",
        str(pom),
        "generate-resources",
        f"-Dkafka.version={infra.kafka_version}",
        f"-Dlog4j.version={infra.log4j_version}",
        f"-Des.version={infra.es_version}",
        f"-Dnewsflow.out={dist_dir(infra)}",
    ]
    lines: list[str] = []
    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=pom.parent,
    )
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.append(line.rstrip())
        if "Downloaded from" in line or ("Downloading from" in line and ".zip" in line):
            progress("  " + line.split("] ", 1)[-1].strip())
    if proc.wait() != 0:
        errors = [line for line in lines if "ERROR" in line][:8] or lines[-15:]
        raise InfraError(
            f"Downloading {profile} with Maven failed:\n" + "\n".join(errors),
            "check that Maven Central is reachable (proxy settings go in ~/.m2/settings.xml) "
            "and that the versions exist; run `newsflow infra up` again to resume.",
        )
    shutil.rmtree(pom.parent / "target", ignore_errors=True)


def unpack_es(infra: InfraSettings, progress: Progress) -> None:
    """(Re-)create the Elasticsearch home from its zip (fetched first if missing, checked)."""
    if not es_zip(infra).is_file():
        progress(f"fetching Elasticsearch {infra.es_version} with Maven (cached in ~/.m2) ...")
        _maven_fetch(infra, "elasticsearch", progress, strict=False)
    _check_es_zip(infra, progress)
    _unpack_es(infra, progress)


def member_problem(info: zipfile.ZipInfo) -> str | None:
    """Why a zip member must not be unpacked (None if it may): absolute paths, drive letters,
    ``..`` components, backslashes, NUL bytes and symbolic links could write or point outside
    the target directory."""
    name = info.filename
    if "\0" in name:
        return "a NUL byte in its name"
    if "\\" in name:
        return "a backslash in its name"
    if name.startswith("/") or re.match(r"^[A-Za-z]:", name):
        return "an absolute path"
    if ".." in PurePosixPath(name).parts:
        return "a '..' component"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "a symbolic link"
    return None


def _unpack_es(infra: InfraSettings, progress: Progress) -> None:
    archive = es_zip(infra)
    target = es_home(infra)
    progress(f"unpacking {archive.name} ...")
    staging = target.with_name(target.name + ".partial")
    try:
        with zipfile.ZipFile(archive) as zf:
            members = zf.infolist()
            for info in members:  # before anything is written
                problem = member_problem(info)
                if problem is not None:
                    raise InfraError(
                        f"{archive} has an unsafe member {info.filename!r} ({problem}); "
                        "nothing was unpacked.",
                        "this is not the published Elasticsearch zip: delete "
                        f"{_maven_repo_dir(infra)} (Maven's cached copy) and {archive}, then "
                        "run `newsflow infra up` again.",
                    )
            bad = zf.testzip()
            if bad is not None:
                raise zipfile.BadZipFile(f"CRC mismatch in {bad}")
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)
            prefix = f"elasticsearch-{infra.es_version}/"
            for info in members:
                rel = (
                    info.filename[len(prefix) :]
                    if info.filename.startswith(prefix)
                    else info.filename
                )
                if not rel.strip("/"):
                    continue
                dest = staging / rel
                if not dest.resolve().is_relative_to(staging.resolve()):  # belt and braces
                    raise InfraError(f"{archive}: member {info.filename!r} leaves {staging}.")
                if info.is_dir():
                    dest.mkdir(parents=True, exist_ok=True)
                    continue
                dest.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(dest, "xb") as out:
                    shutil.copyfileobj(src, out)
                mode = (info.external_attr >> 16) & 0o755  # no setuid, nothing group-writable
                if mode:
                    dest.chmod(mode)  # zipfile drops the exec bits of bin/*; restore them
    except zipfile.BadZipFile as exc:
        repo_dir = Path.home() / ".m2/repository/org/elasticsearch/distribution/integ-test-zip"
        archive.unlink(missing_ok=True)
        raise InfraError(
            f"{archive} is not a valid zip ({exc}).",
            f"delete {repo_dir / 'elasticsearch' / infra.es_version} (Maven's cached "
            "copy) and run `newsflow infra up` again.",
        ) from exc
    # plugins/ and the config/ that ES may touch are not part of the pristine distribution.
    write_manifest(staging, skip=("plugins",))
    for path in [staging, *staging.rglob("*")]:  # whatever the umask: writable by us alone
        path.chmod(path.stat().st_mode & 0o7755)
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
