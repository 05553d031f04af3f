"""What both backends share: workspace lifecycle, file access and the shell driver."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import weakref
from collections.abc import Coroutine
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from corral.domain import ExecResult, SandboxError
from corral.sandbox import paths
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.procs import Cgroups, reap_orphan_cgroups, reap_orphan_sandboxes
from corral.sandbox.shell import ShellDriver
from corral.sandbox.workspace import Workspace, create, reap_orphans

if TYPE_CHECKING:
    from corral.sandbox.egress import EgressChannel

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


async def _together(*steps: Coroutine[Any, Any, None]) -> None:
    """Run steps concurrently; if one fails, cancel the others before raising."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


# A thousand attempts admitted at once must not boot a thousand sandboxes at once: the
# boots then contend in the kernel (a thousand bwrap starts at once took 3x the system
# CPU) or outlast their timeouts. A backend's `boots_per_core` boot at a time per loop;
# the rest wait their turn (a queue, not a failure). More cores do not lift the cap:
# mounts, which every boot makes, are serialised by one kernel lock.
_MAX_BOOTS = 128
_BOOTS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, dict[str, asyncio.Semaphore]] = (
    weakref.WeakKeyDictionary()
)


_REAPER: list[asyncio.Future[list[str]]] = []


def _reap_once() -> None:
    """Once per process, in the background: workspaces that dead processes left behind."""
    if not _REAPER:
        _REAPER.append(asyncio.ensure_future(asyncio.to_thread(reap_leftovers)))
        _REAPER[0].add_done_callback(lambda t: t.cancelled() or t.exception())


def reap_leftovers() -> list[str]:
    """What dead workers left behind, removed: sandbox processes, workspaces, cgroups.
    One line per thing removed (`corral sandbox gc` prints them)."""
    gone = []
    if os.geteuid() == 0:  # only then do sandboxes run as a uid of their own
        base = Path(tempfile.gettempdir())
        gone += [f"sandbox process {p}" for p in reap_orphan_sandboxes(SANDBOX_UID, base)]
    gone += [f"workspace {p}" for p in reap_orphans()]  # mounted (capped) or not
    gone += [f"cgroup {p}" for p in reap_orphan_cgroups()]
    return gone


def boots_at_once(per_core: int) -> int:
    """How many sandboxes of a backend boot at a time in one event loop."""
    return max(4, min(per_core * (os.cpu_count() or 1), _MAX_BOOTS))


def _boot_slot(kind: str, per_core: int) -> asyncio.Semaphore:
    slots = _BOOTS.setdefault(asyncio.get_running_loop(), {})
    sem = slots.get(kind)
    if sem is None:
        sem = slots[kind] = asyncio.Semaphore(boots_at_once(per_core))
    return sem


class BaseSandbox:
    """Common lifecycle; subclasses spawn the shell in `_spawn` and kill it in `_kill`."""

    kind: str = ""
    workdir: str = ""
    # Boots in flight per core (see `_boot_slot`): many overlap the waits of each (the
    # launcher, threads) with the others' work, too many contend in the kernel.
    boots_per_core = 2

    def __init__(
        self, repo: Path, *, limits: SandboxLimits | None = None, attempt_id: str | None = None
    ) -> None:
        self.repo = Path(repo)
        self.attempt_id = attempt_id
        self.limits = limits or SandboxLimits()
        self._ws: Workspace | None = None
        self._driver: ShellDriver | None = None
        self._owner: tuple[int, int] | None = None
        self._closed = False
        self._cgroups: Cgroups | None = None
        self._pids_seen = 0
        self._ooms_seen = 0

    @property
    def workspace(self) -> Path:
        if self._ws is None:
            raise SandboxError("sandbox is not started")
        return self._ws.path

    # A network profile's channel, for the backends that can open one (bwrap, docker).
    egress: EgressChannel | None = None

    @property
    def egress_socket(self) -> Path | None:
        """The host side of this sandbox's egress socket (the browse tool uses it)."""
        return self.egress.socket_path if self.egress is not None else None

    async def start(self) -> None:
        """Boot (or take a booted sandbox from an active pool), then load the repo."""
        if self._ws is not None:
            return
        if self.egress is not None:  # pooled sandboxes lack the proxy's binds: boot fresh
            await self.boot()
            try:
                await self.load()
            except BaseException:
                await self.close()
                raise
            return
        from corral.sandbox.pool import take_booted

        booted, pool = take_booted(self)
        try:
            if booted is not None:
                self._adopt(booted)
                await self.load()
            else:
                self._check_available()
                _reap_once()
                async with _boot_slot(self.kind, self.boots_per_core):
                    self._starting()
                    ws = await self._prepare()
                    # The copy runs while the sandbox boots; the shell only needs the dir.
                    await _together(self._spawn(ws), self.load())
        except BaseException:
            await self.close()
            raise
        finally:
            if pool is not None:
                pool.refill()

    async def boot(self) -> None:
        """Start the sandbox over an empty workspace (for a pool); `load` fills it later."""
        self._check_available()
        _reap_once()
        try:
            async with _boot_slot(self.kind, self.boots_per_core):
                self._starting()
                await self._spawn(await self._prepare())
        except BaseException:
            await self.close()
            raise

    async def _prepare(self) -> Workspace:
        """The workspace and the backend's host side (`_prepare_host`), made in a thread:
        mkdir, mount and cgroupfs calls wait on kernel locks, and on the event loop they
        stalled every agent of the worker (~5 ms a sandbox). Cancelled, it still waits
        for the thread, so `close` finds everything it made."""
        work = asyncio.ensure_future(asyncio.to_thread(self._prepare_host))
        try:
            await asyncio.shield(work)
        except asyncio.CancelledError:
            with contextlib.suppress(Exception):
                await work
            raise
        if self._closed:  # closed from another task meanwhile: it found nothing to undo
            await asyncio.to_thread(self._release_host)
            raise SandboxError("the sandbox was closed while it started")
        assert self._ws is not None
        return self._ws

    def _prepare_host(self) -> None:
        """In a thread, before the sandbox starts: the workspace (a backend adds its own)."""
        self._ws = create(owner=self._owner, size_mb=self.limits.workspace_mb)

    def _release_host(self) -> None:
        """In a thread, once every process is gone: what `_prepare_host` made."""
        if self._cgroups is not None:
            self._cgroups.close()  # a view of a container's cgroups is never removed
        if self._ws is not None:
            self._ws.remove()

    async def load(self) -> None:
        """Copy the repo in; the baseline snapshot runs meanwhile (exec waits for it)."""
        assert self._ws is not None
        if self.attempt_id:
            (self._ws.root / "attempt").write_text(self.attempt_id)
        try:
            await self._ws.load(self.repo)
        finally:
            self._loaded()

    def _loaded(self) -> None:
        """The repo is in (or failed to load): the workspace will not change shape again."""

    def _adopt(self, booted: BaseSandbox) -> None:
        """Take over a booted sandbox of the same kind: its processes, dirs and driver.

        Our limits stay ours: a pool hands out sandboxes whose boot limits match, and the
        rest (timeouts, output cap) are read per command.
        """
        keep = {"repo": self.repo, "attempt_id": self.attempt_id, "limits": self.limits}
        self.__dict__.update(booted.__dict__)
        self.__dict__.update(keep)
        if self._driver is not None:
            self._driver.limits = self.limits
        booted._closed = True  # the husk must never kill what we now own

    def _check_available(self) -> None:
        """Raise SandboxError with a one-line fix if the backend cannot run here."""

    def _starting(self) -> None:
        """Right before the workspace is made: begin work that does not need it."""

    async def _spawn(self, ws: Workspace) -> None:
        raise NotImplementedError

    async def _kill(self) -> None:
        """Kill every process of the sandbox."""

    async def _check_limits(self) -> str:
        """Say when a limit was hit; a fork bomb's leftovers are killed right away."""
        assert self._cgroups is not None and self._driver is not None
        notes = ""
        hits = self._cgroups.pids_hits()
        if hits > self._pids_seen:
            self._pids_seen = hits
            killed = await self._driver.sweep()
            self._pids_seen = self._cgroups.pids_hits()  # hits during the sweep are its own
            notes += (
                f"\n[sandbox: the process limit ({self.limits.pids}) was reached; "
                f"{killed} background processes were killed]"
            )
        ooms = self._cgroups.oom_kills()
        if ooms > self._ooms_seen:
            self._ooms_seen = ooms
            notes += (
                f"\n[sandbox: the memory limit ({self.limits.memory_mb} MB) was reached; "
                "a process was killed]"
            )
        return notes

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
        if self._ws is not None or self._cgroups is not None:
            await asyncio.to_thread(self._release_host)

    async def __aenter__(self) -> BaseSandbox:
        await self.start()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()
