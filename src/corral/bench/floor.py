"""The fleet's floor: the same bwrap sandboxes with nothing of corral around them.

Why: the fleet's wall time holds two things, what its sandboxes cost the kernel and what
corral adds. This starts N bare bwrap sandboxes with corral's own arguments (namespaces,
binds, seccomp filter, the same unprivileged uid) from one shell loop; each waits L
seconds S times (bash's builtin `read -t`: no process) and prints its clock. No
workspace copy, no cgroups, no agent, model, store or gateway. So the fleet's wall time
over this one's is corral's own cost, and `boot_last_s` (when the last of them was up)
is how much of the ideal time the kernel alone already takes.
"""

from __future__ import annotations

import os
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

from corral.bench.machine import machine_busy_s, wait_for_sandbox_user
from corral.sandbox import seccomp
from corral.sandbox.base import SANDBOX_UID
from corral.sandbox.bwrap import MISSING_BWRAP, WORKDIR, bare_args, find_bwrap

_SECCOMP_FD = 6
# Starts "$@" (bwrap's argv) N times in the background, each reading the seccomp filter
# from a fresh fd, then waits for all of them.
_LAUNCH = (
    'n=$1 filter=$2; shift 2; for ((i = 0; i < n; i++)); do "$@" '
    f'{_SECCOMP_FD}<"$filter" & done; wait'
)


def run_floor(
    agents: int, steps: int, latency: float, *, timeout: float = 600.0,
    bwrap: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """N bare sandboxes x S waits of L seconds: when they came up and ended, and the
    machine's CPU meanwhile (`bwrap`: the binary, if not the one sandboxes use)."""
    bwrap = bwrap or find_bwrap()
    if bwrap is None:
        return _failed(agents, steps, MISSING_BWRAP)
    with tempfile.TemporaryDirectory(prefix="corral-floor-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        workspace = root / "ws"
        workspace.mkdir(mode=0o755)
        os.mkfifo(workspace / "wait")  # opened by all, written by none: `read -t` waits
        os.chmod(workspace / "wait", 0o666)
        flt = root / "seccomp.bpf"
        flt.write_bytes(seccomp.bpf_program())
        flt.chmod(0o644)
        # A wait that did not time out is a failure: the sandbox stops, with no E.
        wait = f"read -t {latency:g} -u 9; [ $? -gt 128 ] || exit 3; " if latency > 0 else ""
        inner = (
            f"echo B $EPOCHREALTIME; exec 9<>{WORKDIR}/wait; "
            f"for ((s = 0; s < {steps}; s++)); do {wait}echo S $EPOCHREALTIME; done; echo E"
        )
        argv = [bwrap, *bare_args(workspace), "--seccomp", str(_SECCOMP_FD), "--",
                "/bin/bash", "--noprofile", "--norc", "-c", inner]  # fmt: skip
        owner: dict[str, Any] = {}
        if os.geteuid() == 0:  # as corral runs bwrap: as the unprivileged sandbox uid
            owner = {"user": SANDBOX_UID, "group": SANDBOX_UID, "extra_groups": []}
        busy0 = machine_busy_s()
        t0 = time.time()
        proc = subprocess.Popen(
            ["/bin/bash", "-c", _LAUNCH, "floor", str(agents), str(flt), *argv],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, **owner,
        )  # fmt: skip
        try:
            out, err = proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return _failed(agents, steps, f"timed out after {timeout:g}s")
        wall = time.time() - t0
        busy = machine_busy_s() - busy0
    # The sandboxes' last processes are still going away: what runs next (the baseline)
    # should not pay for that.
    wait_for_sandbox_user(30.0)
    return _report(agents, steps, latency, t0, wall, out, err, busy)


def _failed(agents: int, steps: int, error: str) -> dict[str, Any]:
    return {"system": "bwrap floor", "agents": agents, "steps": steps, "wall_s": None,
            "failed": agents, "error": error}  # fmt: skip


def _report(
    agents: int, steps: int, latency: float, t0: float, wall: float, out: bytes, err: bytes,
    busy: float,
) -> dict[str, Any]:  # fmt: skip
    boots: list[float] = []
    finished = 0
    for line in out.decode(errors="replace").splitlines():
        kind, _, stamp = line.partition(" ")
        if kind == "B":
            boots.append(float(stamp) - t0)
        elif kind == "E":
            finished += 1
    boots.sort()
    first_error = next((ln for ln in err.decode(errors="replace").splitlines() if ln), None)
    ideal = steps * latency
    return {
        "system": "bwrap floor",
        "agents": agents,
        "steps": steps,
        "wall_s": round(wall, 3),
        "wall_over_ideal": round(wall / ideal, 3) if ideal else None,
        "boot_p50_s": round(boots[len(boots) // 2], 3) if boots else None,
        "boot_last_s": round(boots[-1], 3) if boots else None,
        "machine_busy_s": round(busy, 2),
        "failed": agents - finished,
        "error": first_error,
    }
