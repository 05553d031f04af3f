"""What both backends share: workspace lifecycle, file access and the shell driver."""

from __future__ import annotations

import asyncio
import contextlib
import os
from pathlib import Path
from types import TracebackType

from corral.domain import ExecResult, SandboxError
from corral.sandbox import paths
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.shell import ShellDriver
from corral.sandbox.workspace import Workspace, prepare

SANDBOX_USER = "user"
SANDBOX_UID = 1000


def clean_env(*, home: str, path: str = "/usr/local/bin:/usr/bin:/bin") -> dict[str, str]:
    """The whole environment a sandbox gets: built from nothing, so no secret leaks in."""
    return {
        "PATH": path,
        "HOME": home,
        "USER": SANDBOX_USER,
        "LOGNAME": SANDBOX_USER,
        "SHELL": "/bin/bash",
        "LANG": "C.UTF-8",
        "LC_ALL": "C.UTF-8",
        "TERM": "dumb",
        "PAGER": "cat",
        "GIT_PAGER": "cat",
        "GIT_TERMINAL_PROMPT": "0",
        "PIP_NO_INPUT": "1",
        "DEBIAN_FRONTEND": "noninteractive",
        "TMPDIR": "/tmp",
        "PYTHONDONTWRITEBYTECODE": "1",
    }


class BaseSandbox:
    """Common lifecycle; subclasses spawn the shell in `_spawn` and kill it in `_kill`."""

    kind: str = ""
    workdir: str = ""

    def __init__(self, repo: Path, *, limits: SandboxLimits | None = None) -> None:
        self.repo = Path(repo)
        self.limits = limits or SandboxLimits()
        self._ws: Workspace | None = None
        self._driver: ShellDriver | None = None
        self._owner: tuple[int, int] | None = None
        self._closed = False

    @property
    def workspace(self) -> Path:
        if self._ws is None:
            raise SandboxError("sandbox is not started")
        return self._ws.path

    async def start(self) -> None:
        if self._ws is not None:
            return
        self._check_available()
        self._ws = await prepare(self.repo, owner=self._owner)
        try:
            for name in ("ctl", "state", "home"):
                (self._ws.root / name).mkdir(mode=0o755)
            if self._owner is not None:
                for name in ("state", "home"):
                    os.chown(self._ws.root / name, *self._owner)
            # The baseline snapshot runs meanwhile; exec/write_file wait for it.
            await self._spawn(self._ws)
        except BaseException:
            await self.close()
            raise

    def _check_available(self) -> None:
        """Raise SandboxError with a one-line fix if the backend cannot run here."""

    async def _spawn(self, ws: Workspace) -> None:
        raise NotImplementedError

    async def _kill(self) -> None:
        """Kill every process of the sandbox."""

    def _shell(self) -> ShellDriver:
        if self._driver is None or self._closed:
            raise SandboxError("sandbox is closed" if self._closed else "sandbox is not started")
        return self._driver

    async def _ready(self) -> ShellDriver:
        """The shell, once the baseline is taken (nothing may change before that)."""
        driver = self._shell()
        assert self._ws is not None
        await self._ws.baseline()
        return driver

    async def exec(self, command: str, timeout: float | None = None) -> ExecResult:
        return await (await self._ready()).exec(command, timeout)

    async def read_file(self, path: str) -> bytes:
        self._shell()
        return await asyncio.to_thread(
            paths.read_bytes, self.workspace, self.workdir, path,
            max_bytes=self.limits.max_file_bytes,
        )  # fmt: skip

    async def write_file(self, path: str, data: bytes) -> None:
        await self._ready()
        await asyncio.to_thread(
            paths.write_bytes, self.workspace, self.workdir, path, data, owner=self._owner
        )

    async def diff(self) -> str:
        """Every change the agent made to the workspace, as a unified diff."""
        if self._ws is None:
            raise SandboxError("sandbox is not started")
        return await self._ws.diff()

    async def close(self) -> None:
        """Kill everything the agent started, then remove the workspace copy."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            await self._kill()
        if self._driver is not None:
            await self._driver.shutdown()
        if self._ws is not None:
            await asyncio.to_thread(self._ws.remove)

    async def __aenter__(self) -> BaseSandbox:
        await self.start()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()
