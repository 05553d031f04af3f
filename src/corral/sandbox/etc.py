"""The /etc a bwrap sandbox sees: a copy made once, bound with one mount per sandbox.

Why a copy and not one bind per host entry: bwrap reads the whole mount table
(/proc/self/mountinfo) for every bind it makes, so a start costs binds x host mounts;
two dozen /etc binds were most of a start on a host with a few hundred mounts. The
copy holds only an allowlist of host entries (loader, certificates, time zone, ...), only
what any local user could read anyway, plus our own passwd, group and hosts.

Copying takes ~100 ms here, so copies are shared between processes: named after our
uid and a fingerprint of the host entries (so a CA bundle update makes a new one), built
in a private dir and renamed into place, and used only if owned by us and not writable
by anybody else. A process keeps the copy it found at its first sandbox.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import logging
import os
import shutil
import stat
import tempfile
import threading
from pathlib import Path

log = logging.getLogger(__name__)

# Host /etc entries a sandbox may see: loader, certificates, time zone. No secrets.
ALLOWED = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl", "ca-certificates",
    "ca-certificates.conf", "localtime", "timezone", "nsswitch.conf", "mime.types",
    "os-release", "debian_version", "terminfo", "magic", "magic.mime", "python3",
    "python3.11", "python3.12", "protocols", "services", "inputrc",
)  # fmt: skip
PREFIX = "corral-etc-"

_lock = threading.Lock()
_cached: dict[tuple[str, str], Path] = {}


def own_files(user: str, uid: int, home: str) -> dict[str, str]:
    """passwd, group and hosts for a sandbox whose only user is `user`."""
    return {
        "passwd": f"root:x:0:0:root:/root:/usr/sbin/nologin\n"
        f"{user}:x:{uid}:{uid}:corral sandbox:{home}:/bin/bash\n"
        "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n",
        "group": f"root:x:0:\n{user}:x:{uid}:\nnogroup:x:65534:\n",
        "hosts": "127.0.0.1 localhost corral\n::1 localhost ip6-localhost ip6-loopback\n",
    }


def template(own: dict[str, str], *, source: Path = Path("/etc")) -> Path:
    """The /etc dir to bind read-only into every sandbox of this process."""
    key = (str(source), repr(sorted(own.items())))
    with _lock:
        path = _cached.get(key)
        if path is None or not path.is_dir():
            path = _cached[key] = _shared(own, source)
        return path


def _shared(own: dict[str, str], source: Path) -> Path:
    name = f"{PREFIX}{os.geteuid()}-{fingerprint(own, source)}"
    final = Path(tempfile.gettempdir()) / name
    if _trusted(final):
        return final / "etc"
    made = build(own, source=source)
    try:
        os.rename(made.parent, final)
    except OSError as exc:
        if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY) or not _trusted(final):
            log.debug("keeping a private sandbox /etc (%s: %s)", final, exc)
            return made  # somebody else's dir by that name: use our own copy
        shutil.rmtree(made.parent, ignore_errors=True)  # another process was faster
    return final / "etc"


def _trusted(root: Path) -> bool:
    """Ours and writable only by us, all the way to the copy."""
    for path in (root, root / "etc"):
        try:
            st = path.lstat()
        except OSError:
            return False
        if not stat.S_ISDIR(st.st_mode) or st.st_uid != os.geteuid() or st.st_mode & 0o022:
            return False
    return True


def fingerprint(own: dict[str, str], source: Path = Path("/etc")) -> str:
    """Changes when an allowed entry, or anything directly in an allowed dir, changes."""
    h = hashlib.sha256(repr(sorted(own.items())).encode())
    for name in ALLOWED:
        try:
            st = (source / name).stat()
        except OSError:
            continue
        h.update(f"{name} {st.st_mode} {st.st_size} {st.st_mtime_ns} {st.st_ino}\n".encode())
        if stat.S_ISDIR(st.st_mode):
            with contextlib.suppress(OSError), os.scandir(source / name) as entries:
                for e in entries:
                    s = e.stat(follow_symlinks=False)
                    h.update(f"{e.name} {s.st_mode} {s.st_size} {s.st_mtime_ns}\n".encode())
    return h.hexdigest()[:16]


def build(own: dict[str, str], *, source: Path = Path("/etc")) -> Path:
    """A fresh copy under the temp dir (`corral-etc-*/etc`)."""
    root = Path(tempfile.mkdtemp(prefix=f"{PREFIX}new-"))
    try:
        os.chmod(root, 0o755)
        etc = root / "etc"
        etc.mkdir(mode=0o755)
        os.chmod(etc, 0o755)
        for name in ALLOWED:
            _copy_entry(source / name, etc / name)
        for name, text in own.items():
            (etc / name).write_text(text)
            os.chmod(etc / name, 0o644)
        return etc
    except BaseException:
        shutil.rmtree(root, ignore_errors=True)
        raise


def _public(st: os.stat_result) -> bool:
    """Readable by anybody (searchable, for a dir) and writable only by its owner."""
    need = stat.S_IROTH | (stat.S_IXOTH if stat.S_ISDIR(st.st_mode) else 0)
    return st.st_mode & need == need and not st.st_mode & 0o022


def _copy_entry(src: Path, dst: Path) -> None:
    """A top-level entry: symlinks followed (as a bind would), then copied as they are."""
    try:
        st = src.stat()
    except OSError:
        return  # missing, or a dangling link: as `--ro-bind-try` skipped it
    if not _public(st):
        return
    try:
        if stat.S_ISDIR(st.st_mode):
            _copy_dir(src.resolve(), dst)
        elif stat.S_ISREG(st.st_mode):
            shutil.copy2(src, dst)
    except OSError as exc:
        log.warning("sandbox /etc: cannot copy %s: %s", src, exc)


def _copy_dir(src: Path, dst: Path) -> None:
    """Links stay links; files and dirs only if public (e.g. no `ssl/private`)."""
    os.mkdir(dst)
    shutil.copystat(src, dst)
    with os.scandir(src) as entries:
        for entry in entries:
            target = dst / entry.name
            with contextlib.suppress(OSError):
                if entry.is_symlink():
                    os.symlink(os.readlink(entry.path), target)
                    continue
                st = entry.stat(follow_symlinks=False)
                if not _public(st):
                    continue
                if stat.S_ISDIR(st.st_mode):
                    _copy_dir(Path(entry.path), target)
                elif stat.S_ISREG(st.st_mode):
                    shutil.copy2(entry.path, target)
