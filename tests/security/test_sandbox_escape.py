"""From inside a bwrap sandbox: no way out, no secrets in, limits hold, the host survives."""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.sandbox import BwrapSandbox, SandboxLimits

LIMITS = SandboxLimits(memory_mb=256, pids=128, default_timeout=20)
CANARY = "corral-canary-7f3a9c"
KEY = "sk-canary-0123456789abcdef"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = tmp_path / "repo"
    path.mkdir()
    (path / "app.py").write_text("x = 1\n")
    return path


@pytest.fixture
async def sb(repo: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[BwrapSandbox]:
    monkeypatch.setenv("CORRAL_CANARY", CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    box = BwrapSandbox(repo, limits=LIMITS)
    await box.start()
    try:
        yield box
    finally:
        await box.close()


def _exists(path: str | Path) -> bool:
    return Path(path).exists()


def _sleepers() -> list[str]:
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as fh:
                if fh.read() == b"sleep\x001000\x00":
                    left.append(pid)
        except OSError:
            pass
    return left


def _host_alive() -> None:
    assert subprocess.run(["true"], timeout=10).returncode == 0


async def test_no_host_environment_inside(sb: BwrapSandbox) -> None:
    for cmd in ("env", "cat /proc/self/environ", "cat /proc/1/environ", "cat /proc/*/environ"):
        result = await sb.exec(cmd, timeout=5)
        assert "PATH=" in result.output or cmd == "cat /proc/*/environ"
        assert CANARY not in result.output and KEY not in result.output
        assert "OPENAI_API_KEY" not in result.output


async def test_runs_as_unprivileged_user_without_capabilities(sb: BwrapSandbox) -> None:
    result = await sb.exec("id -u; grep CapEff /proc/self/status", timeout=5)
    uid, caps = result.output.split("\n")[:2]
    assert uid == "1000"
    assert caps.split()[-1] == "0000000000000000"


async def test_writing_outside_workspace_fails(sb: BwrapSandbox, tmp_path: Path) -> None:
    marker = tmp_path / "host-marker"
    targets = ["/etc/evil", "/usr/evil", "/evil", str(marker), "/root/evil", "/run/corral/ctl/x"]
    script = "; ".join(f"echo pwned > {t} 2>/dev/null && echo WROTE {t}" for t in targets)
    result = await sb.exec(script + "; true", timeout=5)
    assert "WROTE" not in result.output
    assert not marker.exists()
    assert not _exists("/etc/evil") and not _exists("/usr/evil")
    ok = await sb.exec("echo fine > /workspace/inside.txt && echo fine > /tmp/t && cat /tmp/t")
    assert ok.output == "fine\n"


async def test_host_secrets_are_not_visible(sb: BwrapSandbox) -> None:
    result = await sb.exec("cat /etc/shadow; ls /root; ls /home; echo rc=$?", timeout=5)
    assert "root:" not in result.output
    assert "No such file" in result.output
    assert _exists("/etc/shadow")  # it exists on the host, just not inside


async def test_no_network(sb: BwrapSandbox) -> None:
    bash = await sb.exec("exec 3<>/dev/tcp/127.0.0.1/5432 && echo CONNECTED", timeout=10)
    assert "CONNECTED" not in bash.output and bash.exit_code != 0
    py = await sb.exec(
        'python3 -c \'import socket; socket.create_connection(("127.0.0.1", 5432), 3);'
        ' print("CONNECTED")\'',
        timeout=10,
    )
    assert "CONNECTED" not in py.output and py.exit_code != 0
    dns = await sb.exec("python3 -c 'import socket; socket.getaddrinfo(\"pypi.org\", 443)'")
    assert dns.exit_code != 0


async def test_fork_bomb_ends_inside(sb: BwrapSandbox) -> None:
    result = await sb.exec(
        "bomb() { bomb | bomb & }; bomb; SECONDS=0; while ((SECONDS < 2)); do :; done; echo x",
        timeout=15,
    )
    assert "process limit" in result.output
    after = await sb.exec("python3 -c 'print(6 * 7)'", timeout=10)
    assert after.output == "42\n"
    _host_alive()


async def test_fork_bomb_timeout_is_cleaned_up(sb: BwrapSandbox) -> None:
    result = await sb.exec("bomb() { bomb | bomb; }; bomb", timeout=2)
    assert result.timed_out or result.exit_code != 0
    after = await sb.exec("ls / >/dev/null && echo survived", timeout=10)
    assert after.output.startswith("survived")
    _host_alive()


async def test_python_memory_bomb_is_killed(sb: BwrapSandbox) -> None:
    result = await sb.exec(
        "python3 -c 'a = []\nwhile True: a.append(b\"x\" * 50_000_000)'", timeout=30
    )
    assert result.exit_code not in (0, None)
    after = await sb.exec("echo alive", timeout=5)
    assert after.output == "alive\n"
    _host_alive()


async def test_bash_memory_bomb_kills_only_the_shell(sb: BwrapSandbox) -> None:
    await sb.exec("cd /tmp && export KEEP=1", timeout=5)
    began = time.monotonic()
    result = await sb.exec("s=x; while :; do s=$s$s; done", timeout=30)
    assert time.monotonic() - began < 30
    assert result.exit_code not in (0, None) or result.timed_out
    after = await sb.exec("echo $KEEP; pwd", timeout=5)
    assert after.output == "1\n/tmp\n"
    _host_alive()


async def test_timeout_kills_whole_tree(sb: BwrapSandbox) -> None:
    result = await sb.exec("(sleep 1000 &) ; sleep 1000", timeout=2)
    assert result.timed_out
    assert _sleepers() == []


async def test_planted_symlink_cannot_leak_host_files(sb: BwrapSandbox) -> None:
    await sb.exec("ln -s /etc/shadow shadow; ln -s / rootfs", timeout=5)
    from corral.domain import SandboxError

    for path in ("shadow", "rootfs/etc/shadow", "../../etc/shadow", "/etc/shadow"):
        with pytest.raises(SandboxError):
            await sb.read_file(path)
    with pytest.raises(SandboxError):
        await sb.write_file("rootfs/tmp/corral-pwned", b"x")
    assert not _exists("/tmp/corral-pwned")
