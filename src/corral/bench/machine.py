"""The machine's state around a measurement: what else is running skews every figure."""

from __future__ import annotations

import os
import time

from corral.sandbox.base import SANDBOX_UID


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores; not idle or
    waiting on I/O). The kernel's part of a sandbox (namespace teardown in its workers,
    say) is charged to no process, so a process's own CPU would miss it."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def sandbox_user_pids() -> set[int]:
    """Processes of the sandbox user alive now. Before a run there should be none: one
    left by an earlier run (a leaked shell, say) competes for the CPU being measured.
    Only as root: otherwise sandboxes run as our own uid and cannot be told apart."""
    if os.geteuid() != 0:
        return set()
    found = set()
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == SANDBOX_UID:
                    found.add(int(name))
            except OSError:
                pass
    return found


def wait_for_sandbox_user(timeout: float) -> bool:
    """Wait until no process of the sandbox user is left (False: some still are)."""
    deadline = time.monotonic() + timeout
    while sandbox_user_pids():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True
