"""Host-side mounts for workspaces: a size-capped tmpfs and read-only binds, via libc.

Why mounts on the host rather than inside each backend: the same workspace is seen by
bwrap (bind), by a Docker container started earlier from a warm pool (rslave bind) and
by the host (diff, read_file). A tmpfs with `size=` makes a disk fill stop at the
workspace; making it a shared mount lets read-only binds added later (`.git/hooks`,
`.git/config`) propagate into sandboxes that were already running. Read-only binds are
made with the new mount API (open_tree + mount_setattr + move_mount) because a
classic bind-then-remount is read-only only on the host: the copies propagated into
sandboxes stay writable. All of this needs root; without it callers fall back.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
from pathlib import Path

_libc = ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
_libc.syscall.restype = ctypes.c_long
_libc.mount.argtypes = [
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_char_p,
    ctypes.c_ulong,
    ctypes.c_void_p,
]
_libc.umount2.argtypes = [ctypes.c_char_p, ctypes.c_int]

MS_NOSUID, MS_NODEV, MS_BIND, MS_REC = 0x2, 0x4, 0x1000, 0x4000
MS_PRIVATE, MS_SHARED = 0x40000, 0x100000
MNT_DETACH = 0x2
_AT_FDCWD = -100
_AT_EMPTY_PATH = 0x1000
_OPEN_TREE_CLONE, _OPEN_TREE_CLOEXEC = 0x1, 0o2000000
_MOUNT_ATTR_RDONLY = 0x1
_MOVE_MOUNT_F_EMPTY_PATH = 0x4
# open_tree, move_mount and mount_setattr have the same numbers on x86_64 and aarch64.
_SYS_OPEN_TREE, _SYS_MOVE_MOUNT, _SYS_MOUNT_SETATTR = 428, 429, 442


class _MountAttr(ctypes.Structure):
    _fields_ = [
        ("attr_set", ctypes.c_uint64),
        ("attr_clr", ctypes.c_uint64),
        ("propagation", ctypes.c_uint64),
        ("userns_fd", ctypes.c_uint64),
    ]


def _check(result: int, what: str, path: Path | str) -> int:
    if result < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"{what}: {os.strerror(err)}", str(path))
    return result


def can_mount() -> bool:
    return os.geteuid() == 0


def mount_tmpfs(path: Path, *, size_mb: int, inodes: int, mode: int = 0o711) -> None:
    """Mount a size-capped tmpfs on `path` and make it shared (see the module doc)."""
    opts = f"size={size_mb}m,nr_inodes={inodes},mode={mode:o}".encode()
    flags = MS_NOSUID | MS_NODEV
    _check(_libc.mount(b"tmpfs", bytes(path), b"tmpfs", flags, opts), "mount tmpfs", path)
    try:
        _check(_libc.mount(None, bytes(path), None, MS_SHARED, None), "make shared", path)
    except OSError:
        unmount(path)
        raise


def ro_bind_self(path: Path) -> None:
    """Cover `path` with a read-only bind of itself, read-only in every propagated copy."""
    fd = _check(
        _libc.syscall(_SYS_OPEN_TREE, _AT_FDCWD, bytes(path),
                      _OPEN_TREE_CLONE | _OPEN_TREE_CLOEXEC),
        "open_tree", path,
    )  # fmt: skip
    try:
        attr = _MountAttr(_MOUNT_ATTR_RDONLY, 0, 0, 0)
        _check(
            _libc.syscall(_SYS_MOUNT_SETATTR, fd, b"", _AT_EMPTY_PATH, ctypes.byref(attr),
                          ctypes.sizeof(attr)),
            "mount_setattr", path,
        )  # fmt: skip
        _check(
            _libc.syscall(_SYS_MOVE_MOUNT, fd, b"", _AT_FDCWD, bytes(path),
                          _MOVE_MOUNT_F_EMPTY_PATH),
            "move_mount", path,
        )  # fmt: skip
    finally:
        os.close(fd)


def bind(src: Path, dst: Path) -> None:
    """Bind `src` (and the mounts under it) on `dst`; a shared `src` keeps propagating."""
    _check(_libc.mount(bytes(src), bytes(dst), None, MS_BIND | MS_REC, None), "bind", dst)


def unshare_and_unmount(path: Path) -> None:
    """Unmount `path` without taking its peers' mounts along.

    A plain unmount of a bind of a shared mount also unmounts, in every peer, the mounts
    that correspond to the ones under it (the workspace's read-only `.git` binds, on the
    host and in its sandbox). Made private first, it leaves the peer group alone, and its
    slaves pass to a peer.
    """
    _check(_libc.mount(None, bytes(path), None, MS_PRIVATE | MS_REC, None), "make private", path)
    unmount(path)


def unmount(path: Path) -> None:
    """Lazily detach the mount on `path` and everything under it."""
    _check(_libc.umount2(bytes(path), MNT_DETACH), "umount", path)


def mounted_under(prefix: Path) -> list[Path]:
    """Mount points below `prefix` (from /proc/self/mountinfo), deepest last."""
    found = []
    base = str(prefix).rstrip("/") + "/"
    try:
        text = Path("/proc/self/mountinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        fields = line.split()
        if len(fields) > 4:
            point = fields[4].encode().decode("unicode_escape")
            if point.startswith(base):
                found.append(Path(point))
    return found
