"""The default backend: bubblewrap namespaces, cgroup limits, a persistent shell inside.

Nothing of the host passes in: bwrap is spawned with a clean environment (so even
/proc/1/environ is clean), as an unprivileged host uid when we are root, with no network
(only a private loopback), a read-only system and a minimal /etc of our own.

Start-up cost is kept down because it is paid per attempt: bwrap is started by the
launcher (no fork of this process), every bind costs a pass over the host's mount table
so there are few of them (one for all of /etc, none for control files: the shell script
is an argument and commands arrive on a pipe), and the wait a cgroup join can have
(an RCU grace period, `Cgroups.warm_up`) is started before bwrap and overlaps the
shell's start: the sandbox's processes (only our idle shell so far) join their cgroups
once it is ready, before any command of the agent's runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import logging
import os
import shutil
import signal
import time
from pathlib import Path
from typing import TYPE_CHECKING

from corral.domain import SandboxError
from corral.sandbox import etc, seccomp, spawnroom
from corral.sandbox.base import SANDBOX_UID, SANDBOX_USER, BaseSandbox, clean_env
from corral.sandbox.egress import bind as egress_bind
from corral.sandbox.launcher import launcher
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.procs import Cgroups, NamespaceScope, descendants
from corral.sandbox.shell import LAUNCH_MARK_FD, ForeignProcess, ShellDriver
from corral.sandbox.workspace import Workspace

if TYPE_CHECKING:
    from corral.sandbox.egress import EgressChannel

log = logging.getLogger(__name__)

MISSING_BWRAP = (
    "bubblewrap is not installed: apt-get install bubblewrap "
    "(or run with --sandbox local --unsafe-local)"
)
WORKDIR = "/workspace"
HOME = f"/home/{SANDBOX_USER}"
_STATE = "/run/corral/state"
# fd numbers inside bwrap for what the launcher hands over (0-3 are the shell's).
_INFO_FD, _BLOCK_FD, _SECCOMP_FD = 4, 5, 6
# A cgroup lock warmed this recently is still warm (a grace period is ~5-15 ms here).
_STILL_WARM_S = 0.004


class BwrapSandbox(BaseSandbox):
    """A bubblewrap sandbox over a private copy of `repo`."""

    kind = "bwrap"
    workdir = WORKDIR
    # 1,000 agents on 2 cores: 4 at a time 26 s, 16: 21.5 s, 64: 19.7 s, 128: 19.3 s,
    # all at once 38 s (docs/benchmarks-notes.md, session 4).
    boots_per_core = 32

    def __init__(
        self, repo: Path, *, limits: SandboxLimits | None = None, attempt_id: str | None = None,
        egress: EgressChannel | None = None,
    ) -> None:  # fmt: skip
        super().__init__(repo, limits=limits, attempt_id=attempt_id)
        self.egress = egress  # None: no network at all (only a private loopback)
        # As root, run bwrap as an unprivileged host uid: an escape lands nowhere useful.
        self._owner = (SANDBOX_UID, SANDBOX_UID) if os.geteuid() == 0 else None
        self._bwrap = find_bwrap()
        self._proc: ForeignProcess | None = None
        self._warm: asyncio.Future[float | None] | None = None
        self._spot: Path | None = None  # the workspace's bind in the spawn room, if any
        self._spot_holds: set[str] = set()
        self._withdrawing: asyncio.Future[None] | None = None
        self._init: int | None = None  # a pidfd of the sandbox's init (pid 1 inside)

    def _check_available(self) -> None:
        if self._bwrap is None:
            raise SandboxError(MISSING_BWRAP)
        if not seccomp.supported():
            raise SandboxError(
                f"no seccomp syscall table for {seccomp.machine()}: bwrap sandboxes need "
                "x86_64 or aarch64 (use --sandbox docker)"
            )

    def _args(self, workspace: Path) -> list[str]:
        size = str(self.limits.tmp_mb * 1024 * 1024)
        args = [
            *_system_args(),
            "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", HOME,
            "--symlink", "/tmp", "/var/tmp",
            "--bind", str(workspace), WORKDIR,
            "--size", size, "--tmpfs", _STATE,
            "--remount-ro", "/",
            "--chdir", WORKDIR, "--clearenv",
        ]  # fmt: skip
        env = clean_env(home=HOME)
        if self.egress is not None:  # the proxy's socket and the relay, before the remount
            at = args.index("--remount-ro")
            args[at:at] = egress_bind.bwrap_args(self.egress.socket_path)
            env |= egress_bind.proxy_env()
        for key, value in env.items():
            args += ["--setenv", key, value]
        return args

    async def start(self) -> None:
        await super().start()
        if self._withdrawing is not None:  # the room holds no one once we are up
            with contextlib.suppress(Exception):
                await self._withdrawing

    def _starting(self) -> None:
        self._spot_holds = {"launch", "load"}

    def _prepare_host(self) -> None:
        """The cgroups, and the workspace in the spawn room: bwrap starts in the launcher's
        small mount namespace and finds the workspace there (see `sandbox.spawnroom`). The
        room bind stays until the repo is loaded: the read-only `.git` binds made then
        reach the sandbox through it."""
        super()._prepare_host()
        assert self._ws is not None
        self._cgroups = Cgroups.create(self.limits.memory_mb, self.limits.pids)
        if self._owner is not None:
            self._spot = spawnroom.expose(self._ws.path, self._ws.root.name)

    async def _spawn(self, ws: Workspace) -> None:
        if self._cgroups is not None:
            # Warm the cgroup lock now: the grace period it may wait for (see
            # `Cgroups.warm_up`) then runs while bwrap starts.
            with contextlib.suppress(OSError):  # `_launch` says why
                helper = launcher(self._owner).helper_pid  # a process of ours in our cgroups
                self._warm = asyncio.ensure_future(
                    asyncio.to_thread(_warm_up, self._cgroups, helper)
                )
                self._warm.add_done_callback(lambda t: t.cancelled() or t.exception())
        try:
            await self._launch(self._spot or ws.path)
        finally:
            self._release_spot("launch")

    def _loaded(self) -> None:
        self._release_spot("load")

    def _release_spot(self, holder: str) -> None:
        """Withdraw the room bind once bwrap has bound it and the repo is in (both run
        at once)."""
        self._spot_holds.discard(holder)
        if not self._spot_holds:
            self._withdraw_spot()

    def _withdraw_spot(self) -> None:
        """Undo the room bind in a thread (a mount call waits on the kernel's mount lock,
        which a fleet's bwrap starts keep busy); `_kill` waits for it."""
        if self._spot is not None:
            spot, self._spot = self._spot, None
            self._withdrawing = asyncio.ensure_future(asyncio.to_thread(spawnroom.withdraw, spot))

    async def _launch(self, workspace: Path) -> None:
        assert self._bwrap is not None
        cgroups, warm = self._cgroups, self._warm
        prelude = ""
        if cgroups is None:
            log.debug("no writable cgroup: falling back to ulimit -v/-u for sandbox limits")
            prelude = f"ulimit -v {self.limits.memory_mb * 1024} -u {self.limits.pids} 2>/dev/null"
        driver = ShellDriver(limits=self.limits, state_inner=_STATE)
        self._driver = driver
        argv = driver.argv(prelude, mark_fd=LAUNCH_MARK_FD)
        if self.egress is not None:
            argv = egress_bind.wrap_argv(argv)
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        filter_fd = _seccomp_fd()
        fds = driver.child_fds() | {_INFO_FD: info_w, _BLOCK_FD: block_r, _SECCOMP_FD: filter_fd}
        cmd = [self._bwrap, *self._args(workspace), "--info-fd", str(_INFO_FD), "--block-fd",
               str(_BLOCK_FD), "--seccomp", str(_SECCOMP_FD), "--", *argv]  # fmt: skip
        try:
            try:
                started = await launcher(self._owner).spawn(cmd, clean_env(home=HOME), fds)
            finally:
                driver.close_child_ends()
                for fd in (info_w, block_r, filter_fd):
                    os.close(fd)
            self._proc = ForeignProcess(started.pid, started.pidfd)
            info = await _read_info(info_r)
            child = int(str(info["child-pid"]))
            ns = os.readlink(f"/proc/{child}/ns/pid")
            self._init = os.pidfd_open(child)
            if self._closed:  # closed from another task while bwrap started: undo it here
                await self._kill()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._proc.wait(), 5)  # closes its pidfd
                raise SandboxError("the sandbox was closed while it started")
            os.write(block_w, b"go")
        except (OSError, ValueError, KeyError) as exc:
            raise SandboxError(f"bubblewrap failed to start: {exc}{driver.stray_note()}") from None
        finally:
            for fd in (info_r, block_w):
                with contextlib.suppress(OSError):
                    os.close(fd)
        driver.protected_inner = {1}
        scope = NamespaceScope(ns, cgroups.procs_file if cgroups else None)
        await driver.attach(self._proc, scope)
        if cgroups is not None:
            # Only our shell runs until now (idle, waiting for a command): every process
            # joins the cgroups before the agent's first command.
            warmed = await warm if warm is not None else None
            if warmed is not None and time.monotonic() - warmed < _STILL_WARM_S:
                _join_all(cgroups, child, ns)  # a fraction of a ms: no thread hop
            else:
                await asyncio.to_thread(_join_all, cgroups, child, ns)
            driver.after_command = self._check_limits
        if self.egress is not None:
            driver.protected_inner |= egress_bind.relay_pids(scope)

    async def _kill(self) -> None:
        self._withdraw_spot()
        if self._proc is not None:
            self._proc.kill()  # bwrap's init dies with it, and the namespace with that
        if self._init is not None:
            # Its death takes every process of the namespace along; sent directly it does
            # not wait for bwrap's own exit, so the sweep below mostly finds nothing.
            with contextlib.suppress(OSError):
                signal.pidfd_send_signal(self._init, signal.SIGKILL)
            await _exited(self._init, timeout=2.0)  # after every other process is gone
            os.close(self._init)
            self._init = None
        if self._driver is not None:
            await self._driver.sweep(everything=True)
        if self._withdrawing is not None:
            with contextlib.suppress(Exception):
                await self._withdrawing

    def _release_host(self) -> None:
        # A bind made while another task closed us (its `_kill` found none to withdraw).
        spot, self._spot = self._spot, None
        if spot is not None:
            spawnroom.withdraw(spot)
        if self._cgroups is not None:
            for _ in range(100):  # its last processes may still be exiting
                if self._cgroups.remove():
                    break
                time.sleep(0.01)
            else:
                log.warning("could not remove cgroups %s", self._cgroups.dirs)
        super()._release_host()


def find_bwrap() -> str | None:
    """The bwrap binary, from the system's own dirs only (None: not installed)."""
    return shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")


def bare_args(workspace: Path, limits: SandboxLimits | None = None) -> list[str]:
    """bwrap's arguments for a sandbox over `workspace`, as `BwrapSandbox` starts one
    (without egress), up to the command: the fleet benchmark's floor starts bare sandboxes
    with exactly these."""
    return BwrapSandbox(workspace, limits=limits)._args(workspace)


@functools.cache
def _system_args() -> tuple[str, ...]:
    """Namespaces, a read-only /usr (and its merged links), our /etc, /proc and /dev."""
    args = [
        "--unshare-all", "--unshare-user", "--disable-userns",
        "--uid", str(SANDBOX_UID), "--gid", str(SANDBOX_UID), "--hostname", "corral",
        "--die-with-parent", "--new-session", "--cap-drop", "ALL",
        "--ro-bind", "/usr", "/usr",
    ]  # fmt: skip
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):
        host = Path("/") / name
        if host.is_symlink():
            args += ["--symlink", os.readlink(host), f"/{name}"]
        elif host.is_dir():
            args += ["--ro-bind", str(host), f"/{name}"]
    own = etc.own_files(SANDBOX_USER, SANDBOX_UID, HOME)
    args += ["--ro-bind", str(etc.template(own)), "/etc", "--proc", "/proc", "--dev", "/dev"]
    return tuple(args)


def _warm_up(cgroups: Cgroups, pid: int) -> float | None:
    """When the cgroup lock was made warm (None: it could not be)."""
    return time.monotonic() if cgroups.warm_up(pid) else None


def _join_all(cgroups: Cgroups, init: int, ns: str) -> None:
    """Move the sandbox's init and everything under it into its cgroups."""
    joined: set[int] = set()
    for _ in range(20):
        found = descendants(init)
        if found is None:  # no /proc/PID/task/TID/children here: ask the namespace
            found = [host for host, _inner in NamespaceScope(ns).members()]
        new = [pid for pid in found if pid not in joined]
        if not new:
            return
        for pid in new:
            with contextlib.suppress(ProcessLookupError):
                cgroups.add(pid)
        joined.update(new)
    raise SandboxError("the sandbox kept starting processes while it joined its cgroups")


_FILTER: bytes | None = None


def _seccomp_fd() -> int:
    """A fresh fd holding the compiled seccomp filter (bwrap reads it to EOF)."""
    global _FILTER
    if _FILTER is None:
        _FILTER = seccomp.bpf_program()
    fd = os.memfd_create("corral-seccomp", os.MFD_CLOEXEC)
    os.write(fd, _FILTER)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


async def _exited(pidfd: int, *, timeout: float) -> None:
    """Wait until the process exits (a pid namespace's init exits last of its namespace)."""
    loop = asyncio.get_running_loop()
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        if not done.done():
            done.set_result(None)

    loop.add_reader(pidfd, readable)
    try:
        async with asyncio.timeout(timeout):
            await done
    except TimeoutError:
        log.warning("a sandbox's init did not exit within %gs of SIGKILL", timeout)
    finally:
        loop.remove_reader(pidfd)


async def _read_info(fd: int) -> dict[str, object]:
    """bwrap's --info-fd JSON (it holds the host pid of the sandbox's init)."""
    loop = asyncio.get_running_loop()
    os.set_blocking(fd, False)
    data = b""
    done: asyncio.Future[None] = loop.create_future()

    def readable() -> None:
        nonlocal data
        try:
            chunk = os.read(fd, 4096)
        except BlockingIOError:
            return
        data += chunk
        if not chunk or data.rstrip().endswith(b"}"):
            if not done.done():
                done.set_result(None)

    loop.add_reader(fd, readable)
    try:
        async with asyncio.timeout(10):
            await done
    finally:
        loop.remove_reader(fd)
    if not data.strip():
        raise ValueError("no info from bwrap (see its error output)")
    result: dict[str, object] = json.loads(data)
    return result
