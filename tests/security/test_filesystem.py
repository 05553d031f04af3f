"""No way out through the filesystem, and no host secret in (bwrap and Docker alike)."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest

from corral.domain import SandboxError
from corral.sandbox import BaseSandbox

from .conftest import CANARY, KEY, make_repo, start_box
from .helpers import exists, py


async def test_no_host_environment_inside(box: BaseSandbox) -> None:
    for cmd in ("env", "cat /proc/self/environ", "cat /proc/1/environ", "cat /proc/*/environ"):
        result = await box.exec(cmd, timeout=5)
        assert "PATH=" in result.output or cmd == "cat /proc/*/environ"
        assert CANARY not in result.output and KEY not in result.output
        assert "OPENAI_API_KEY" not in result.output


async def test_other_host_process_environ_is_unreachable(box: BaseSandbox) -> None:
    """A host process holding the canary in its environment: its pid is not even visible."""
    env = {"PATH": "/usr/bin:/bin", "HOLDER_SECRET": CANARY}
    holder = await asyncio.create_subprocess_exec("sleep", "60", env=env)
    try:
        result = await box.exec(f"cat /proc/{holder.pid}/environ; ls /proc | head -50", 5)
        assert CANARY not in result.output
        assert str(holder.pid) not in result.output.split()
    finally:
        holder.kill()
        await holder.wait()


async def test_runs_unprivileged_with_seccomp(box: BaseSandbox) -> None:
    result = await box.exec("id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status", 5)
    lines = result.output.split("\n")
    assert lines[0] == "1000"
    status = dict(line.split(":\t") for line in lines[1:] if line)
    assert status == {"CapEff": "0000000000000000", "NoNewPrivs": "1", "Seccomp": "2"}


async def test_writing_outside_workspace_fails(box: BaseSandbox, tmp_path: Path) -> None:
    marker = tmp_path / "host-marker"
    targets = ["/etc/evil", "/usr/evil", "/evil", str(marker), "/root/evil",
               "/run/corral/ctl/x", "/run/corral/ctl/cmd.sh"]  # fmt: skip
    script = "; ".join(f"echo pwned > {t} 2>/dev/null && echo WROTE {t}" for t in targets)
    result = await box.exec(script + "; true", timeout=5)
    assert "WROTE" not in result.output
    assert not marker.exists() and not exists("/etc/evil")
    ok = await box.exec("echo fine > /workspace/in.txt && echo fine > /tmp/t && cat /tmp/t", 5)
    assert ok.output == "fine\n"


async def test_host_secrets_are_not_visible(box: BaseSandbox, tmp_path: Path) -> None:
    secret = tmp_path / "host-secret.txt"
    secret.write_text(CANARY)
    result = await box.exec(
        f"cat {secret}; cat /etc/shadow; ls -a /root/.ssh; cat ~/.ssh/id_rsa; "
        # "[y]": the pattern must not match the command text (cmd.sh) itself
        f"grep -r '{CANARY.replace('y', '[y]', 1)}' /home /root /tmp /run 2>/dev/null; true",
        timeout=20,
    )
    assert CANARY not in result.output and "root:" not in result.output
    assert exists("/etc/shadow")  # it exists on the host, just not inside


async def test_another_sandbox_workspace_is_invisible(box: BaseSandbox, tmp_path: Path) -> None:
    other = await start_box("bwrap", make_repo(tmp_path / "other"))
    try:
        await other.write_file("secret.txt", CANARY.encode())
        theirs = other.workspace / "secret.txt"
        result = await box.exec(
            f"cat {theirs} 2>/dev/null; ls {other.workspace.parent} 2>/dev/null; "
            f"find / -xdev -name secret.txt 2>/dev/null; true",
            timeout=20,
        )
        assert result.output == ""
        assert (await other.read_file("secret.txt")) == CANARY.encode()  # it is there
    finally:
        await other.close()


async def test_symlink_escapes_through_file_api(box: BaseSandbox, tmp_path: Path) -> None:
    target = tmp_path / "host-target"
    target.write_text("host data\n")
    await box.exec(f"ln -s /etc/shadow shadow; ln -s / rootfs; ln -s {target} tgt", timeout=5)
    for path in ("shadow", "rootfs/etc/shadow", "../../etc/shadow", "/etc/shadow", "tgt"):
        with pytest.raises(SandboxError):
            await box.read_file(path)
    for path in ("rootfs/tmp/corral-pwned", "tgt", "../escape"):
        with pytest.raises(SandboxError):
            await box.write_file(path, b"pwned")
    assert target.read_text() == "host data\n"
    assert not exists("/tmp/corral-pwned")


async def test_hardlink_escapes(box: BaseSandbox) -> None:
    """The workspace is its own filesystem: no hard link to a host file can be made."""
    result = await box.exec("ln /etc/hostname hl 2>&1; ln /usr/bin/env hl2 2>&1; ls", timeout=5)
    assert "hl" not in result.output.split()
    assert "Invalid cross-device link" in result.output or "denied" in result.output
    # A hard link inside the workspace is fine and reads as what it is.
    await box.exec("echo mine > a.txt && ln a.txt b.txt", timeout=5)
    assert await box.read_file("b.txt") == b"mine\n"


async def test_git_hooks_and_config_are_read_only(box: BaseSandbox, tmp_path: Path) -> None:
    flag = tmp_path / "hook-ran"
    os.chmod(tmp_path, 0o777)  # so that a hook run by anyone could leave the flag
    result = await box.exec(
        f"printf '#!/bin/sh\\ntouch {flag}\\n' > .git/hooks/pre-commit && echo HOOK; "
        f"git config core.hooksPath /tmp && echo CONFIG; "
        f"printf '[core]\\n\\tfsmonitor = touch {flag}\\n' >> .git/config && echo APPEND; true",
        timeout=10,
    )
    for word in ("HOOK", "CONFIG", "APPEND"):
        assert word not in result.output.split()
    # Even a repo rebuilt under a new .git cannot make the host run anything.
    await box.exec(
        f"mv .git .git-old && cp -r .git-old .git && chmod -R u+w .git; "
        f"printf '[core]\\n\\tfsmonitor = touch {flag}\\n' >> .git/config; "
        f"mkdir -p .git/hooks && printf '#!/bin/sh\\ntouch {flag}\\n' > .git/hooks/pre-commit; "
        f"chmod +x .git/hooks/*; echo 'x = 2' > app.py; true",
        timeout=10,
    )
    patch = await box.diff()
    assert "+x = 2" in patch
    assert not flag.exists()


async def test_disk_fill_stops_at_the_workspace(box: BaseSandbox) -> None:
    vfs = os.statvfs("/")
    result = await box.exec("dd if=/dev/zero of=fill bs=1M count=4096 2>&1; df -m .", 60)
    assert "No space left" in result.output or "memory limit" in result.output
    assert os.statvfs("/").f_bavail >= vfs.f_bavail - (1 << 30) // vfs.f_frsize  # host disk kept
    after = await box.exec("rm -f fill && echo ok", timeout=10)
    assert after.output == "ok\n"
    tmp = await box.exec("dd if=/dev/zero of=/tmp/fill bs=1M count=4096 2>&1", 60)
    assert "No space left" in tmp.output or "memory limit" in tmp.output
    assert (await box.exec(py("print(6 * 7)"), timeout=10)).output == "42\n"
