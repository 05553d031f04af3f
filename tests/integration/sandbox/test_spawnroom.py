"""bwrap starts from a small mount namespace: live workspaces of others are not in it,
yet each sandbox gets its own workspace, read-only `.git` binds included."""

from __future__ import annotations

import asyncio
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from corral.sandbox import BwrapSandbox, mounts, spawnroom
from corral.sandbox.base import SANDBOX_UID
from corral.sandbox.launcher import Launcher, launcher
from corral.sandbox.workspace import reap_orphans

from .conftest import LIMITS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the spawn room needs root")
OWNER = (SANDBOX_UID, SANDBOX_UID)


def _mount_points(pid: int) -> list[str]:
    with open(f"/proc/{pid}/mountinfo") as f:
        return [line.split()[4] for line in f]


async def test_sandboxes_start_without_the_other_workspaces(repo: Path) -> None:
    first = BwrapSandbox(repo, limits=LIMITS)
    second = BwrapSandbox(repo, limits=LIMITS)
    await first.start()
    try:
        await second.start()
        try:
            room = spawnroom.room()
            assert room is not None
            helper = launcher(OWNER).helper_pid
            theirs = _mount_points(helper)
            # Neither workspace is in the launcher's namespace, and the room is empty
            # again once both sandboxes are up.
            for box in (first, second):
                root = str(box.workspace.parent)
                assert not [p for p in theirs if p.startswith(root)]
            assert list(room.iterdir()) == []
            assert not [p for p in _mount_points(os.getpid()) if p.startswith(f"{room}/")]
            # Each sandbox still sees its own files, writes land on the host, and the
            # read-only `.git` binds hold inside.
            await first.exec("echo one > mine.txt", 10)
            assert (first.workspace / "mine.txt").read_text() == "one\n"
            result = await second.exec("cat mine.txt; touch .git/hooks/x && echo WROTE", 10)
            assert "WROTE" not in result.output and "No such file" in result.output
        finally:
            await second.close()
    finally:
        await first.close()


async def test_a_new_launcher_leaves_existing_workspaces_behind(tmp_path: Path) -> None:
    """Workspaces mounted before the launcher started are not in its namespace either."""
    stale = Path(tempfile.mkdtemp(prefix="corral-"))
    mounts.mount_tmpfs(stale, size_mb=1, inodes=64)
    room = spawnroom.room()
    assert room is not None
    fresh = Launcher(OWNER, room)
    try:
        started = await fresh.spawn(["/bin/true"], {}, {})  # it answers once it is set up
        os.close(started.pidfd)
        assert str(stale) in _mount_points(os.getpid())
        assert str(stale) not in _mount_points(fresh.helper_pid)
        assert str(room) in _mount_points(fresh.helper_pid)
        uid = (await asyncio.to_thread(
            subprocess.run, ["cat", f"/proc/{fresh.helper_pid}/status"], capture_output=True,
            text=True, check=True,
        )).stdout  # fmt: skip
        assert f"Uid:\t{SANDBOX_UID}\t{SANDBOX_UID}\t{SANDBOX_UID}" in uid
    finally:
        fresh.close()
        mounts.unmount(stale)
        os.rmdir(stale)


def test_a_dead_process_room_is_reaped(tmp_path: Path) -> None:
    """A room left mounted by a process killed with -9 goes with `reap_orphans`."""
    base = tmp_path / "base"
    base.mkdir()
    room = base / "corral-spawn-999999999-1-abcd1234"  # no such process
    room.mkdir()
    mounts.mount_tmpfs(room, size_mb=1, inodes=64)
    (room / "leftover").mkdir()
    assert str(room) in _mount_points(os.getpid())
    assert room in reap_orphans(base)
    assert not room.exists()
    assert str(room) not in _mount_points(os.getpid())


async def test_workspaces_made_later_do_not_reach_the_launcher(tmp_path: Path) -> None:
    """Where the dir that holds workspaces is on a shared mount (systemd makes `/`
    shared), a workspace mounted after the launcher started must not reach it either."""
    base = tmp_path / "base"
    base.mkdir()
    mounts.mount_tmpfs(base, size_mb=1, inodes=64)  # a shared mount, like `/` on a host
    room, later = base / "corral-spawn-t", base / "corral-later"
    try:
        room.mkdir()
        mounts.mount_tmpfs(room, size_mb=1, inodes=64, mode=0o711)
        fresh = Launcher(OWNER, room)
        try:
            started = await fresh.spawn(["/bin/true"], {}, {})  # answers once set up
            os.close(started.pidfd)
            later.mkdir()
            mounts.mount_tmpfs(later, size_mb=1, inodes=64)
            theirs = _mount_points(fresh.helper_pid)
            assert str(room) in theirs
            assert str(later) not in theirs
        finally:
            fresh.close()
    finally:
        mounts.unmount(base)
