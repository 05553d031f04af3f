"""The default backend: bubblewrap namespaces, cgroup limits, a persistent shell inside.

Nothing of the host passes in: bwrap is spawned with a clean environment (so even
/proc/1/environ is clean), as an unprivileged host uid when we are root, with no network
(only a private loopback), a read-only system and a minimal /etc of our own.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

from corral.domain import SandboxError
from corral.sandbox import seccomp
from corral.sandbox.base import SANDBOX_UID, SANDBOX_USER, BaseSandbox, clean_env
from corral.sandbox.egress import bind as egress_bind
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.procs import Cgroups, NamespaceScope
from corral.sandbox.shell import ShellDriver
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
_CTL, _STATE = "/run/corral/ctl", "/run/corral/state"
# Host /etc entries a sandbox may see: loader, certificates, time zone. No secrets.
_ETC = (
    "ld.so.cache", "ld.so.conf", "ld.so.conf.d", "alternatives", "ssl", "ca-certificates",
    "ca-certificates.conf", "localtime", "timezone", "nsswitch.conf", "mime.types",
    "os-release", "debian_version", "terminfo", "magic", "magic.mime", "python3",
    "python3.11", "python3.12", "protocols", "services", "inputrc",
)  # fmt: skip
_PASSWD = f"""root:x:0:0:root:/root:/usr/sbin/nologin
{SANDBOX_USER}:x:{SANDBOX_UID}:{SANDBOX_UID}:corral sandbox:{HOME}:/bin/bash
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
"""
_GROUP = f"root:x:0:\n{SANDBOX_USER}:x:{SANDBOX_UID}:\nnogroup:x:65534:\n"
_HOSTS = "127.0.0.1 localhost corral\n::1 localhost ip6-localhost ip6-loopback\n"


class BwrapSandbox(BaseSandbox):
    """A bubblewrap sandbox over a private copy of `repo`."""

    kind = "bwrap"
    workdir = WORKDIR

    def __init__(
        self, repo: Path, *, limits: SandboxLimits | None = None, attempt_id: str | None = None,
        egress: EgressChannel | None = None,
    ) -> None:  # fmt: skip
        super().__init__(repo, limits=limits, attempt_id=attempt_id)
        self.egress = egress  # None: no network at all (only a private loopback)
        # As root, run bwrap as an unprivileged host uid: an escape lands nowhere useful.
        self._owner = (SANDBOX_UID, SANDBOX_UID) if os.geteuid() == 0 else None
        self._bwrap = shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin")
        self._proc: asyncio.subprocess.Process | None = None

    @property
    def egress_socket(self) -> Path | None:
        """The host side of this sandbox's egress socket (the browse tool uses it)."""
        return self.egress.socket_path if self.egress is not None else None

    async def start(self) -> None:
        if self.egress is None or self._ws is not None:
            return await super().start()
        await self.boot()  # pooled sandboxes lack the proxy binds: boot a fresh one
        try:
            await self.load()
        except BaseException:
            await self.close()
            raise

    def _check_available(self) -> None:
        if self._bwrap is None:
            raise SandboxError(MISSING_BWRAP)
        if not seccomp.supported():
            raise SandboxError(
                f"no seccomp syscall table for {seccomp.machine()}: bwrap sandboxes need "
                "x86_64 or aarch64 (use --sandbox docker)"
            )

    def _args(self, ws: Workspace) -> list[str]:
        size = str(self.limits.tmp_mb * 1024 * 1024)
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
        etc = ws.root / "etc"
        etc.mkdir(exist_ok=True)
        for name, text in (("passwd", _PASSWD), ("group", _GROUP), ("hosts", _HOSTS)):
            (etc / name).write_text(text)
            args += ["--ro-bind", str(etc / name), f"/etc/{name}"]
        for name in _ETC:
            if os.path.lexists(f"/etc/{name}"):
                args += ["--ro-bind-try", f"/etc/{name}", f"/etc/{name}"]
        args += [
            "--proc", "/proc", "--dev", "/dev",
            "--size", size, "--tmpfs", "/tmp", "--size", size, "--tmpfs", HOME,
            "--symlink", "/tmp", "/var/tmp",
            "--bind", str(ws.path), WORKDIR,
            "--ro-bind", str(ws.root / "ctl"), _CTL,
            "--bind", str(ws.root / "state"), _STATE,
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

    async def _spawn(self, ws: Workspace) -> None:
        assert self._bwrap is not None
        self._cgroups = Cgroups.create(self.limits.memory_mb, self.limits.pids)
        prelude = ""
        if self._cgroups is None:
            log.debug("no writable cgroup: falling back to ulimit -v/-u for sandbox limits")
            prelude = f"ulimit -v {self.limits.memory_mb * 1024} -u {self.limits.pids} 2>/dev/null"
        driver = ShellDriver(limits=self.limits, ctl=ws.root / "ctl", ctl_inner=_CTL,
                             state_inner=_STATE)  # fmt: skip
        self._driver = driver
        argv = driver.argv(prelude)
        if self.egress is not None:
            argv = egress_bind.wrap_argv(argv)
        info_r, info_w = os.pipe()
        block_r, block_w = os.pipe()
        filter_fd = _seccomp_fd()
        kwargs = driver.spawn_kwargs()
        kwargs["pass_fds"] = (*kwargs["pass_fds"], info_w, block_r, filter_fd)
        if self._owner is not None:
            kwargs.update(user=self._owner[0], group=self._owner[1], extra_groups=[])
        try:
            cmd = [self._bwrap, *self._args(ws), "--info-fd", str(info_w),
                   "--block-fd", str(block_r), "--seccomp", str(filter_fd),
                   "--", *argv]  # fmt: skip
            self._proc = await asyncio.create_subprocess_exec(
                *cmd, env=clean_env(home=HOME), cwd="/", **kwargs
            )
            os.close(info_w)
            os.close(block_r)
            info_w = block_r = -1
            info = await _read_info(info_r)
            child = int(str(info["child-pid"]))
            ns = os.readlink(f"/proc/{child}/ns/pid")
            if self._cgroups is not None:
                self._cgroups.add(child)  # before the sandbox forks anything
            os.write(block_w, b"go")
        except (OSError, ValueError, KeyError) as exc:
            driver.close_child_ends()
            raise SandboxError(f"bubblewrap failed to start: {exc}{driver.stray_note()}") from None
        finally:
            for fd in (info_r, info_w, block_r, block_w, filter_fd):
                if fd >= 0:
                    with contextlib.suppress(OSError):
                        os.close(fd)
        driver.protected_inner = {1}
        if self._cgroups is not None:
            driver.after_command = self._check_limits
        procs = self._cgroups.procs_file if self._cgroups else None
        scope = NamespaceScope(ns, procs)
        await driver.attach(self._proc, scope)
        if self.egress is not None:
            driver.protected_inner |= egress_bind.relay_pids(scope)

    async def _kill(self) -> None:
        if self._proc is not None and self._proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self._proc.kill()  # bwrap's init dies with it, and the namespace with that
        if self._driver is not None:
            await self._driver.sweep(everything=True)
        if self._cgroups is not None:
            for _ in range(100):
                if self._cgroups.remove():
                    break
                await asyncio.sleep(0.01)
            else:
                log.warning("could not remove cgroups %s", self._cgroups.dirs)


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
        await asyncio.wait_for(done, 10)
    finally:
        loop.remove_reader(fd)
    if not data.strip():
        raise ValueError("no info from bwrap (see its error output)")
    result: dict[str, object] = json.loads(data)
    return result
