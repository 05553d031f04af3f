"""Resource abuse ends inside the sandbox; the host and the next command survive."""

from __future__ import annotations

import time
import uuid

from corral.sandbox import BaseSandbox

from .helpers import cmdline_pids, host_alive, py


async def test_fork_bomb_ends_inside(box: BaseSandbox) -> None:
    result = await box.exec(
        "bomb() { bomb | bomb & }; bomb; SECONDS=0; while ((SECONDS < 2)); do :; done; echo x",
        timeout=20,
    )
    assert "process limit" in result.output
    after = await box.exec(py("print(6 * 7)"), timeout=15)
    assert after.output == "42\n"
    host_alive()


async def test_fork_bomb_past_timeout_is_cleaned_up(box: BaseSandbox) -> None:
    result = await box.exec("bomb() { bomb | bomb; }; bomb", timeout=2)
    assert result.timed_out or result.exit_code != 0
    after = await box.exec("ls / >/dev/null && echo survived", timeout=15)
    assert after.output.startswith("survived")
    host_alive()


async def test_memory_bomb_is_killed(box: BaseSandbox) -> None:
    result = await box.exec(py('a = []\nwhile True: a.append(b"x" * 50_000_000)'), timeout=30)
    assert result.exit_code not in (0, None)
    after = await box.exec("echo alive", timeout=10)
    assert after.output == "alive\n"
    host_alive()


async def test_bash_memory_bomb_keeps_the_shell_state(box: BaseSandbox) -> None:
    await box.exec("cd /tmp && export KEEP=1", timeout=5)
    began = time.monotonic()
    result = await box.exec("s=x; while :; do s=$s$s; done", timeout=30)
    assert time.monotonic() - began < 30
    assert result.exit_code not in (0, None) or result.timed_out
    after = await box.exec("echo $KEEP; pwd", timeout=10)
    assert after.output == "1\n/tmp\n"


async def test_cpu_spin_past_timeout_leaves_no_orphan(box: BaseSandbox) -> None:
    tag = f"spin{uuid.uuid4().hex[:8]}"
    spin = py(f"import sys\nwhile True: pass  # {tag}")
    result = await box.exec(f"({spin} &) ; (setsid {spin} &) ; {spin}", timeout=2)
    assert result.timed_out
    assert cmdline_pids(tag.encode()) == []
    after = await box.exec("echo ok", timeout=10)
    assert after.output == "ok\n"


async def test_close_leaves_nothing(box: BaseSandbox) -> None:
    tag = f"bg{uuid.uuid4().hex[:8]}"
    secs = str(300 + uuid.uuid4().int % 100_000)  # no other process on the machine has it
    await box.exec(
        f"(setsid sleep {secs} &) ; nohup sh -c 'sleep 301 # {tag}' >/dev/null 2>&1 &", 5
    )
    workspace = box.workspace
    await box.close()
    assert cmdline_pids(tag.encode()) == [] and cmdline_pids(f"sleep\x00{secs}".encode()) == []
    assert not workspace.exists()
