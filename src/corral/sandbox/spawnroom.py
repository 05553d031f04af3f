"""A small mount namespace to start bwrap from, so a start does not pay for every workspace.

Why: each workspace is a tmpfs mount on the host, and bwrap reads the whole mount table
after each of its binds (about a dozen): with 1,000 live workspaces a start took ~45 ms
instead of ~11 ms, and starts serialise on the kernel's mount lock, so more processes do
not help. The launcher that starts bwrap therefore lives in a mount namespace of its own,
made when the launcher starts, without our workspace mounts; host mounts made later do
not reach it. One thing does: the "room", a shared host dir of which that namespace
holds a slave copy. To start a sandbox its workspace is bound into the room (so it shows
up in the launcher's namespace), bwrap binds it from there, and once the sandbox is up the
room bind is undone. The sandbox's copy stays a slave of the workspace mount, so
read-only binds made on the host later (`.git/hooks`) still reach it.
"""

from __future__ import annotations

import atexit
import contextlib
import logging
import os
import shutil
import threading
from pathlib import Path

from corral.sandbox import mounts
from corral.sandbox.procs import owned_tempdir

log = logging.getLogger(__name__)

_LOCK = threading.Lock()
_ROOM: tuple[int, Path] | None = None  # (pid that made it, path)

# Run by the launcher as root, before it drops to the sandbox uid (argv[3:6]: room, uid,
# gid). Failing to make the namespace is not fatal (bwrap then starts from the host's,
# slower); failing to drop privileges is.
PRELUDE = r"""
import ctypes, os, sys
def _lean(room):
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.unshare(0x20000) != 0:  # CLONE_NEWNS
        return
    if libc.mount(None, b"/", None, 0x4000 | 0x80000, None) != 0:  # MS_REC | MS_SLAVE
        return
    base = os.path.join(os.path.dirname(room), "corral-")
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f if len(line.split()) > 4]
    # The mount that holds the workspaces' dir, private: as a slave of a shared one (the
    # usual `/`) it would receive every workspace mounted later. The room, a mount of
    # its own, stays a slave.
    parent = os.path.dirname(room)
    holder = max((p for p in points if p == "/" or parent == p or parent.startswith(p + "/")),
                 key=len, default="/")
    libc.mount(None, holder.encode(), None, 0x40000, None)  # MS_PRIVATE
    for point in sorted(points, key=len, reverse=True):
        if point.startswith(base) and point != room and not point.startswith(room + "/"):
            libc.umount2(point.encode(), 2)  # MNT_DETACH
_lean(sys.argv[3])
_uid, _gid = int(sys.argv[4]), int(sys.argv[5])
os.setgroups([])
os.setresgid(_gid, _gid, _gid)
os.setresuid(_uid, _uid, _uid)
if os.getuid() != _uid or os.geteuid() != _uid or os.getgid() != _gid:
    sys.exit(1)
"""


def room() -> Path | None:
    """This process's room, made on first use; None where we cannot mount (not root)."""
    global _ROOM
    if not mounts.can_mount():
        return None
    with _LOCK:
        if _ROOM is not None and _ROOM[0] == os.getpid():
            return _ROOM[1]
        path = owned_tempdir("corral-spawn-")  # so `reap_orphans` can clean up
        try:
            # A small shared tmpfs: its binds reach the launcher's namespace, and making
            # and removing a dir per start is cheaper there than on the host's disk.
            # 0711: bwrap runs as the sandbox uid and must pass through.
            mounts.mount_tmpfs(path, size_mb=1, inodes=65536, mode=0o711)
        except OSError as exc:
            with contextlib.suppress(OSError):
                mounts.unmount(path)
            log.warning("no spawn room, bwrap starts from the host's mounts: %s", exc)
            shutil.rmtree(path, ignore_errors=True)
            return None
        _ROOM = (os.getpid(), path)
        return path


def expose(workspace: Path, name: str) -> Path | None:
    """Bind `workspace` into the room as `name`; the path bwrap should bind (None: use
    `workspace` itself)."""
    here = room()
    if here is None:
        return None
    spot = here / name
    try:
        spot.mkdir(mode=0o711)
        mounts.bind(workspace, spot)
    except OSError as exc:
        log.warning("cannot bind %s into the spawn room: %s", workspace, exc)
        with contextlib.suppress(OSError):
            spot.rmdir()
        return None
    return spot


def withdraw(spot: Path) -> None:
    """Undo `expose` (the sandbox keeps its own copy of the mount)."""
    try:
        mounts.unshare_and_unmount(spot)
    except OSError as exc:
        log.warning("cannot withdraw %s from the spawn room: %s", spot, exc)
        return
    with contextlib.suppress(OSError):
        spot.rmdir()


@atexit.register
def _remove() -> None:
    global _ROOM
    with _LOCK:
        if _ROOM is None or _ROOM[0] != os.getpid():
            return
        path, _ROOM = _ROOM[1], None
    with contextlib.suppress(OSError):
        mounts.unmount(path)
    shutil.rmtree(path, ignore_errors=True)
