"""The machine's state around a measurement: what else is running skews every figure."""

from __future__ import annotations

import os

from corral.sandbox.base import SANDBOX_UID


def machine_busy_s() -> float:
    """CPU seconds the whole machine has been busy since boot (all cores; not idle or
    waiting on I/O). The kernel's part of a sandbox (namespace teardown in its workers,
    say) is charged to no process, so a process's own CPU would miss it."""
    with open("/proc/stat") as f:
        ticks = [int(v) for v in f.readline().split()[1:]]
    return (sum(ticks) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")


def stray_sandbox_processes(uid: int = SANDBOX_UID) -> int:
    """Processes of the sandbox user alive now. Before a run there should be none: one
    left by an earlier run (a leaked shell, say) competes for the CPU being measured."""
    count = 0
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                if os.stat(f"/proc/{name}").st_uid == uid:
                    count += 1
            except OSError:
                pass
    return count
