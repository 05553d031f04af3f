"""A test-only fake sandbox: a host temp dir, `bash -c` in it, the Sandbox path rules.

It follows the protocol's contract (workspace-relative or absolute-under-workdir paths,
SandboxError on any escape) so the tools can be tested without a real backend; the same
scenarios run against the real backends in tests/integration/tools.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from pathlib import Path

import pytest

from corral.domain import ExecResult, SandboxError


class FakeSandbox:
    kind = "fake"

    def __init__(self, workspace: Path, *, max_output: int = 20_000) -> None:
        self.workspace = workspace.resolve()
        self.workdir = str(self.workspace)
        self.max_output = max_output
        self.commands: list[str] = []

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def exec(self, command: str, timeout: float) -> ExecResult:
        self.commands.append(command)
        t0 = time.monotonic()
        proc = await asyncio.create_subprocess_exec(
            "bash",
            "-c",
            command,
            cwd=self.workdir,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            out, _ = await asyncio.wait_for(proc.communicate(), timeout)
            timed_out = False
        except TimeoutError:
            os.killpg(proc.pid, signal.SIGKILL)
            out, _ = await proc.communicate()
            timed_out = True
        text = out.decode("utf-8", "replace")
        truncated = len(text) > self.max_output
        if truncated:
            half = self.max_output // 2
            text = text[:half] + "\n[... cut ...]\n" + text[-half:]
        return ExecResult(
            output=text,
            exit_code=None if timed_out else proc.returncode,
            timed_out=timed_out,
            truncated=truncated,
            duration_s=time.monotonic() - t0,
        )

    def _resolve(self, path: str) -> Path:
        p = Path(path)
        if ".." in p.parts:
            raise SandboxError(f"path {path!r} contains '..'")
        full = p if p.is_absolute() else self.workspace / p
        real = full.resolve()
        if real != self.workspace and self.workspace not in real.parents:
            raise SandboxError(f"path {path!r} resolves outside the workspace")
        return real

    async def read_file(self, path: str) -> bytes:
        return self._resolve(path).read_bytes()

    async def write_file(self, path: str, data: bytes) -> None:
        self._resolve(path).write_bytes(data)


@pytest.fixture
def sandbox(tmp_path: Path) -> FakeSandbox:
    ws = tmp_path / "ws"
    ws.mkdir()
    return FakeSandbox(ws)
