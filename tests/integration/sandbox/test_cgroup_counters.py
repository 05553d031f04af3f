"""On a real cgroup (v1 or v2), a counter file kept open sees the kernel's later counts."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from corral.sandbox.procs import Cgroups

# Waits for a line, then starts more processes than pids.max allows.
FORKS = """
import subprocess, sys
sys.stdin.readline()
started, refused = [], 0
for _ in range(4):
    try:
        started.append(subprocess.Popen(["sleep", "30"]))
    except OSError:
        refused += 1
for p in started:
    p.kill()
    p.wait()
print(refused)
"""


def test_a_kept_open_pids_counter_sees_the_limit_hit(monkeypatch: pytest.MonkeyPatch) -> None:
    group = Cgroups.create(memory_mb=256, pids=3)
    if group is None:
        pytest.skip("no writable cgroups on this host")
    opens: list[str] = []
    real_open = os.open

    def spy_open(path: str, flags: int, *args: int, **kwargs: int) -> int:
        opens.append(str(path))
        return real_open(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", spy_open)
    child = None
    try:
        assert group.pids_hits() == 0  # opens pids.events
        ooms = group.oom_kills()
        child = subprocess.Popen(
            [sys.executable, "-c", FORKS], stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        group.add(child.pid)
        out, _ = child.communicate(b"go\n", timeout=60)
        assert int(out) >= 1, "pids.max did not refuse a process"
        assert group.pids_hits() >= 1 and group.oom_kills() == ooms
        assert sorted(opens) == sorted({str(group.pids_events), str(group.oom_file)})
    finally:
        if child is not None and child.poll() is None:
            child.kill()
            child.wait()
        for _ in range(100):
            if group.remove():
                break
            time.sleep(0.01)


def test_a_dead_workers_empty_cgroups_are_reaped_and_a_live_ones_kept() -> None:
    """A worker killed with -9 leaves its sandboxes' cgroups behind; the next one reaps
    them (never a live worker's fresh, still empty, group)."""
    from corral.sandbox.procs import reap_orphan_cgroups

    mine = Cgroups.create(memory_mb=64, pids=16)
    if mine is None:
        pytest.skip("no writable cgroups on this host")
    parents = sorted({d.parent for d in mine.dirs})
    dead = [parent / "corral-999999999-1-deadbeef" for parent in parents]  # no such worker
    for d in dead:
        d.mkdir()
    try:
        gone = reap_orphan_cgroups(parents)
        assert sorted(gone) == sorted(dead) and not any(d.exists() for d in dead)
        assert all(d.exists() for d in mine.dirs)  # ours: alive, kept
    finally:
        for d in dead:
            if d.exists():
                d.rmdir()
        mine.remove()
