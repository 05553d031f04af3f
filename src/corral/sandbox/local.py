"""No isolation at all: the same shell and limits on the host, for machines without bwrap.

Never the default; `open_sandbox("local", ...)` insists on `unsafe_local=True`. The env
is still scrubbed and the workspace is still a private copy, but commands can read and
write anything the host user can, and a process that calls setsid and reparents itself
away can outlive the sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from pathlib import Path

from corral.domain import SandboxError
from corral.sandbox.base import BaseSandbox, clean_env
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.procs import SessionScope
from corral.sandbox.shell import ShellDriver
from corral.sandbox.workspace import Workspace


class LocalSandbox(BaseSandbox):
    """A persistent shell in a new session on the host, in a private copy of `repo`."""

    kind = "local"

    def __init__(
        self, repo: Path, *, limits: SandboxLimits | None = None, attempt_id: str | None = None
    ) -> None:
        super().__init__(repo, limits=limits, attempt_id=attempt_id)
        self._proc: asyncio.subprocess.Process | None = None
        self.workdir = ""

    async def _spawn(self, ws: Workspace) -> None:
        self.workdir = str(ws.path)
        ctl, state = ws.root / "ctl", ws.root / "state"
        driver = ShellDriver(
            limits=self.limits, ctl=ctl, ctl_inner=str(ctl), state_inner=str(state)
        )
        self._driver = driver
        prelude = f"ulimit -v {self.limits.memory_mb * 1024} 2>/dev/null"
        argv = driver.argv(prelude)
        path = os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin")
        try:
            self._proc = await asyncio.create_subprocess_exec(
                *argv, env=clean_env(home=str(ws.root / "home"), path=path),
                cwd=ws.path, start_new_session=True, **driver.spawn_kwargs(),
            )  # fmt: skip
        except OSError as exc:
            driver.close_child_ends()
            raise SandboxError(f"cannot start a local shell: {exc}") from None
        await driver.attach(self._proc, SessionScope(self._proc.pid))

    async def _kill(self) -> None:
        if self._proc is None:
            return
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self._proc.pid, signal.SIGKILL)
        if self._driver is not None:
            await self._driver.sweep(everything=True)
