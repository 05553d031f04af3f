"""The launcher helper starts programs for us: fds mapped, clean signals, errors, restart."""

from __future__ import annotations

import asyncio
import os
import select
import signal

import pytest

from corral.sandbox import launcher as launching
from corral.sandbox.base import SANDBOX_UID

OWNER = (SANDBOX_UID, SANDBOX_UID) if os.geteuid() == 0 else None


def _read_all(fd: int) -> bytes:
    out = b""
    while chunk := os.read(fd, 65536):
        out += chunk
    return out


async def test_runs_a_program_with_our_fds_and_reports_its_end() -> None:
    helper = launching.launcher(OWNER)
    out_r, out_w = os.pipe()
    extra_r, extra_w = os.pipe()
    try:
        script = "id -u; grep -E '^Sig(Ign|Blk)' /proc/self/status; echo side >&5"
        started = await helper.spawn(["/bin/sh", "-c", script], {"PATH": "/usr/bin:/bin"},
                                     {1: out_w, 2: out_w, 5: extra_w})  # fmt: skip
    finally:
        os.close(out_w)
        os.close(extra_w)
    try:
        lines = _read_all(out_r).decode().splitlines()
        assert lines[0] == str(OWNER[0] if OWNER else os.getuid())
        # Python's ignored SIGPIPE/SIGXFSZ and any blocked signal stay with the helper
        # (glibc's posix_spawn leaves its own internal signals 32 and 33 ignored).
        masks = dict(line.split(":\t") for line in lines[1:])
        assert int(masks["SigBlk"], 16) == 0 and int(masks["SigIgn"], 16) & 0x7FFFFFFF == 0
        assert _read_all(extra_r) == b"side\n"
        readable, _, _ = await asyncio.to_thread(select.select, [started.pidfd], [], [], 10)
        assert readable  # the pidfd says the program ended
    finally:
        for fd in (out_r, extra_r, started.pidfd):
            os.close(fd)


async def test_a_missing_program_is_a_one_line_error() -> None:
    with pytest.raises(launching.LaunchError, match="No such file") as err:
        await launching.launcher(OWNER).spawn(["/nonexistent/prog"], {}, {})
    assert "\n" not in str(err.value)


async def test_a_dead_helper_is_replaced() -> None:
    helper = launching.launcher(OWNER)
    os.kill(helper.helper_pid, signal.SIGKILL)
    for _ in range(200):
        if not helper.alive:
            break
        await asyncio.sleep(0.01)
    with pytest.raises(launching.LaunchError):
        await helper.spawn(["/bin/true"], {}, {})
    again = launching.launcher(OWNER)
    assert again is not helper and again.alive
    started = await again.spawn(["/bin/true"], {}, {})
    os.close(started.pidfd)


async def test_a_started_program_gets_only_the_fds_it_was_given() -> None:
    """The helper's own socket must not reach what it starts (a sandbox could otherwise
    read other sandboxes' launch requests, fds included, off it)."""
    helper = launching.launcher(OWNER)
    out_r, out_w = os.pipe()
    try:
        started = await helper.spawn(["/bin/ls", "/proc/self/fd"], {}, {1: out_w})
    finally:
        os.close(out_w)
    try:
        listed = sorted(int(fd) for fd in _read_all(out_r).split())
        assert listed == [0, 1, 2, 3]  # the helper's /dev/null, stdout, the dir ls reads
    finally:
        os.close(out_r)
        os.close(started.pidfd)
