"""Host scripts through the launcher: output, exit status, errors and cancellation."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.domain import SandboxError
from corral.sandbox.hostrun import run_sh

ENV = {"PATH": "/usr/bin:/bin"}


async def test_stdout_and_positional_args_come_back() -> None:
    out = await run_sh('printf "%s|" "$@"\necho "$X"', ["a b", "c"], ENV | {"X": "x"}, name="t")
    assert out == "a b|c|x\n"


async def test_a_failing_line_stops_the_script_and_names_its_last_error_line() -> None:
    with pytest.raises(SandboxError) as err:
        await run_sh("echo one >&2\necho two >&2; false\necho never", [], ENV, name="git")
    assert str(err.value) == "git failed: two"


async def test_large_output_is_read_whole() -> None:
    out = await run_sh("head -c 3000000 /dev/zero | tr '\\0' a", [], ENV, name="t")
    assert len(out) == 3_000_000


async def test_cancelled_script_is_killed_with_what_it_started(tmp_path: Path) -> None:
    marker = tmp_path / "pid"
    script = f"sleep 30 &\necho $! > {marker}\nwait"  # the sleep is a grandchild
    task = asyncio.ensure_future(run_sh(script, [], ENV, name="t"))
    for _ in range(500):
        if marker.exists() and marker.read_text().strip():
            break
        await asyncio.sleep(0.01)
    pid = int(marker.read_text())
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    for _ in range(500):
        if not _running(pid):
            break
        await asyncio.sleep(0.01)
    else:
        raise AssertionError("the cancelled script's sleep is still running")


def _running(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")
