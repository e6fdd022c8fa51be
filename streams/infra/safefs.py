"""Files the local stack writes, reads and executes as root, safe from its service user.

As root, Elasticsearch runs as a system user (``InfraSettings.es_user``). That user must not be
able to make root write, read or run something else: a symlink or hard link planted where root
writes a pid file, a log or a config file would make root overwrite any file; a pid file it wrote
would make ``infra down`` signal any process; a script it edited in a directory it owns would run
as root. So:

- root writes only into directories it owns that nobody else can write (``check_owned_dir``),
  through a fresh file renamed into place (``write_file``) or opened with ``O_NOFOLLOW``
  (``open_append``); a link found there is refused, never followed;
- root reads a pid file only if it is a regular file it owns with a single link
  (``read_owned``);
- root executes only files whose whole path is owned by root and writable by nobody else
  (``check_trusted``);
- the service user owns only its data, log and temp directories (``service_dir``).

Without root (a developer's own account) the same checks hold with "root" read as "us".
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import stat
from pathlib import Path

from streams.infra.errors import InfraError

_HINT = "something else wrote there; check it is not an attack, delete it and retry."


def _fstat_trusted(st: os.stat_result, path: Path, what: str) -> None:
    if not stat.S_ISREG(st.st_mode):
        raise InfraError(f"{what} {path} is not a regular file.", _HINT)
    if st.st_uid not in (0, os.geteuid()):
        raise InfraError(
            f"{what} {path} belongs to uid {st.st_uid}, not to us (uid {os.geteuid()}); "
            "refusing to trust it.",
            _HINT,
        )
    if st.st_nlink != 1:
        raise InfraError(f"{what} {path} has {st.st_nlink} hard links; refusing to use it.", _HINT)


def check_owned_dir(path: Path) -> None:
    """``path`` is a real directory (not a link) owned by us (or root) and writable by nobody
    else, so nobody else can plant or swap entries in it."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        raise InfraError(f"directory {path} does not exist.") from None
    if stat.S_ISLNK(st.st_mode):
        raise InfraError(f"{path} is a symbolic link; refusing to write through it.", _HINT)
    if not stat.S_ISDIR(st.st_mode):
        raise InfraError(f"{path} is not a directory.", _HINT)
    if st.st_uid not in (0, os.geteuid()) or st.st_mode & 0o022:
        raise InfraError(
            f"{path} can be written by another user (owner uid {st.st_uid}, mode "
            f"{stat.S_IMODE(st.st_mode):o}); refusing to write into it.",
            _HINT,
        )


def own_dir(path: Path, mode: int = 0o755) -> None:
    """Create ``path`` (and missing parents) or take it back: ours, ``mode``, never a link."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    fd = _open_dir(path)
    try:
        st = os.fstat(fd)
        if st.st_uid != os.geteuid() or st.st_gid != os.getegid():
            os.fchown(fd, os.geteuid(), os.getegid())
        if stat.S_IMODE(st.st_mode) != mode:
            os.fchmod(fd, mode)
    finally:
        os.close(fd)


def _open_dir(path: Path) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as exc:
        raise InfraError(f"{path} is not a directory we can use ({exc}).", _HINT) from exc


def service_dir(path: Path, user: str | None, mode: int = 0o750) -> None:
    """A directory the service ``user`` writes (data, logs, temp), created by us in a directory
    we own. Existing content it already owns is left alone; anything else is handed over
    without following links (only entries not already the user's are visited, so nothing the
    user could have linked there is touched)."""
    check_owned_dir(path.parent)
    with contextlib.suppress(FileExistsError):
        os.mkdir(path, mode)
    if user is None:
        return
    entry = pwd.getpwnam(user)
    uid, gid = entry.pw_uid, entry.pw_gid
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise InfraError(f"{path} is not a directory (a link?); refusing to use it.", _HINT)
    if st.st_uid == uid:
        return
    # Ours (created by an earlier run as root): hand the tree over. Collect first (every
    # directory entered is not the user's, so the user cannot change it meanwhile), never
    # entering what the user already owns, then chown deepest first so that a directory
    # becomes the user's only after everything in it.
    todo: list[str] = [str(path)]
    for top, dirs, files in os.walk(path, followlinks=False):
        keep = []
        for name in files:
            sub = os.path.join(top, name)
            st = os.lstat(sub)
            if st.st_uid != uid and st.st_nlink == 1:
                todo.append(sub)
        for name in dirs:
            sub = os.path.join(top, name)
            st = os.lstat(sub)
            if st.st_uid == uid:
                continue
            todo.append(sub)
            if not stat.S_ISLNK(st.st_mode):
                keep.append(name)
        dirs[:] = keep
    for sub in reversed(todo):
        os.lchown(sub, uid, gid)
    os.chmod(path, mode)


def write_file(path: Path, data: bytes | str, mode: int = 0o644, group: int | None = None) -> None:
    """Replace ``path`` with ``data``: a new file in a directory we own, renamed over whatever
    was there (a link is replaced, never followed)."""
    check_owned_dir(path.parent)
    payload = data.encode() if isinstance(data, str) else data
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with contextlib.suppress(FileNotFoundError):
        os.unlink(tmp)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        if group is not None:
            os.fchown(fd, -1, group)
        os.fchmod(fd, mode)  # umask-free
        with os.fdopen(fd, "wb", closefd=False) as out:
            out.write(payload)
    except BaseException:
        os.close(fd)
        os.unlink(tmp)
        raise
    os.close(fd)
    os.replace(tmp, path)


def open_append(path: Path) -> int:
    """An fd appending to ``path`` (created if missing), which must be a regular file of ours
    with one link in a directory we own."""
    check_owned_dir(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW, 0o644)
    except OSError as exc:
        raise InfraError(f"cannot open {path} safely ({exc}); a link?", _HINT) from exc
    try:
        _fstat_trusted(os.fstat(fd), path, "log file")
    except InfraError:
        os.close(fd)
        raise
    return fd


def read_owned(path: Path, what: str = "file") -> bytes | None:
    """The bytes of ``path`` if it is a regular file of ours with one link; None if missing."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symbolic link
        raise InfraError(f"{what} {path} cannot be opened safely ({exc}); a link?", _HINT) from exc
    try:
        _fstat_trusted(os.fstat(fd), path, what)
        with os.fdopen(fd, "rb", closefd=False) as src:
            return src.read()
    finally:
        os.close(fd)


def claim_file(path: Path) -> None:
    """Remove ``path`` from a directory we own unless it is a regular file of ours with one link
    (a link, a special file or another user's file is not reused: it is re-created)."""
    check_owned_dir(path.parent)
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    if not stat.S_ISREG(st.st_mode) or st.st_nlink != 1 or st.st_uid != os.geteuid():
        os.unlink(path)


def claim_dir(path: Path, mode: int = 0o755) -> None:
    """``path`` as a directory tree entirely ours: one that is not (or holds anything that is
    not, or a link) is deleted without following links and re-created empty."""
    check_owned_dir(path.parent)
    if os.path.lexists(path) and not tree_is_ours(path):
        if os.path.islink(path) or not os.path.isdir(path):
            os.unlink(path)
        else:
            shutil.rmtree(path)  # fd-based on Linux: never follows a link out of the tree
    own_dir(path, mode)


def tree_is_ours(root: Path) -> bool:
    """Every entry under ``root`` (itself included) is ours, writable by nobody else, and none
    is a link: nobody else can have changed it, or can change it now."""
    entries = [str(root)]
    for top, dirs, files in os.walk(root, followlinks=False):
        entries.extend(os.path.join(top, name) for name in [*dirs, *files])
    for entry in entries:
        st = os.lstat(entry)
        if stat.S_ISLNK(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return False
    return True


def check_trusted(path: Path) -> None:
    """``path`` may be executed as us: it and every directory above it (links resolved) belong
    to root or us and nobody else can change them (a sticky world-writable directory such as
    /tmp counts as safe: others cannot rename what is ours in it)."""
    if os.geteuid() != 0:
        return  # a user running their own files from their own directories crosses no boundary
    real = Path(os.path.realpath(path))
    for part in [*reversed(real.parents), real]:
        st = os.lstat(part)
        if st.st_uid not in (0, os.geteuid()):
            raise InfraError(
                f"refusing to run {path}: {part} belongs to uid {st.st_uid}.",
                "root only runs programs from directories only root can change.",
            )
        writable_by_others = st.st_mode & 0o022
        if writable_by_others and not (stat.S_ISDIR(st.st_mode) and st.st_mode & stat.S_ISVTX):
            raise InfraError(
                f"refusing to run {path}: {part} can be changed by other users "
                f"(mode {stat.S_IMODE(st.st_mode):o}).",
                "root only runs programs from directories only root can change.",
            )
