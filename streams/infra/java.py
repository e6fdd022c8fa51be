"""Finding a JDK of a given major version (Kafka needs 17+, Elasticsearch 9 needs 21+)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

from streams.infra.errors import InfraError

JVM_ROOT = Path("/usr/lib/jvm")


def java_major(java_home: Path) -> int | None:
    """Major version of the JDK at ``java_home``, read from its ``release`` file."""
    release = java_home / "release"
    if not release.is_file() or not (java_home / "bin" / "java").exists():
        return None
    match = re.search(r'^JAVA_VERSION="(\d+)(?:\.(\d+))?', release.read_text(), re.MULTILINE)
    if not match:
        return None
    major = int(match.group(1))
    # Java 8 and older call themselves "1.8".
    return int(match.group(2) or 0) if major == 1 else major


def find_java_home(minimum: int, configured: Path | None, root: Path = JVM_ROOT) -> Path:
    """The configured JDK if it is new enough, else the newest JDK under ``root``, else PATH's."""
    what = f"Java {minimum}+"
    if configured is not None:
        major = java_major(configured)
        if major is None:
            raise InfraError(
                f"{configured} is not a JDK (no bin/java or release file).",
                f"point the setting at a JDK home providing {what}.",
            )
        if major < minimum:
            raise InfraError(
                f"{configured} is Java {major}; {what} is required.",
                f"point the setting at a JDK home providing {what}.",
            )
        return configured
    candidates: list[tuple[int, Path]] = []
    if root.is_dir():
        for home in root.iterdir():
            major = java_major(home.resolve())
            if major is not None and major >= minimum:
                candidates.append((major, home.resolve()))
    on_path = shutil.which("java")
    if on_path:
        home = Path(on_path).resolve().parent.parent
        major = java_major(home)
        if major is not None and major >= minimum:
            candidates.append((major, home))
    if not candidates:
        raise InfraError(
            f"No {what} found (looked under {root} and at `java` on PATH).",
            f"install a JDK {minimum} or newer (e.g. Debian's openjdk-{minimum}-jdk-headless or "
            "Temurin) or set NEWSFLOW_INFRA__ES_JAVA_HOME / NEWSFLOW_INFRA__JAVA_HOME.",
        )
    return max(candidates)[1]
