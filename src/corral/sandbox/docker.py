"""The Docker backend: a hardened container per sandbox, driven over FIFOs, never `exec`.

Why this shape:
- The container's main process (under `--init`) is our supervisor shell, which opens
  three FIFOs in the control dir; the host writes commands and reads output and records
  through them directly. No `docker exec` per command and no daemon in the data path, so
  a round trip costs about what it does in bwrap.
- The host watches the container's init through a pidfd and kills it (and so the whole
  container) with one signal; `docker rm` only cleans up.
- Hardening: no capabilities, no-new-privileges, our seccomp profile (seccomp.py), a
  read-only root with tmpfs /tmp and home, memory/CPU/pids limits, no network, uid 1000,
  labels (`corral=1`, owner process, workspace, attempt) so `reap` finds orphans.
- The workspace is bind-mounted `rslave`, so read-only `.git` binds the host adds when
  a pooled container is claimed show up inside it.
- Egress, when the task's profile allows hosts, is wired exactly as in bwrap (see
  egress/bind.py): the network stays `none`; the proxy's Unix socket and the relay are
  bound read-only, the relay starts before the shell, `http(s)_proxy` point at it. Such
  a container is booted fresh (a pooled one was created without those binds).
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

from corral.domain import SandboxError
from corral.sandbox import docker_engine as engine
from corral.sandbox import seccomp
from corral.sandbox.base import SANDBOX_USER, BaseSandbox, clean_env
from corral.sandbox.egress import bind as egress_bind
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.procs import Cgroups, NamespaceScope, owner_token
from corral.sandbox.shell import ForeignProcess, ShellDriver
from corral.sandbox.workspace import Workspace

if TYPE_CHECKING:
    from corral.sandbox.egress import EgressChannel

log = logging.getLogger(__name__)

WORKDIR = "/workspace"
HOME = f"/home/{SANDBOX_USER}"
_CTL, _STATE = "/run/corral/ctl", "/run/corral/state"
_CHECKED: set[str] = set()  # images known present, engine known up, orphans reaped


class DockerSandbox(BaseSandbox):
    """A hardened Docker container over a private copy of `repo`."""

    kind = "docker"
    workdir = WORKDIR

    def __init__(
        self,
        repo: Path,
        *,
        limits: SandboxLimits | None = None,
        attempt_id: str | None = None,
        image: str = engine.IMAGE,
        egress: EgressChannel | None = None,
    ) -> None:
        super().__init__(repo, limits=limits, attempt_id=attempt_id)
        self.image = image
        self.egress = egress  # None: no network at all (only the container's loopback)
        self._uid = 1000 if os.geteuid() == 0 else os.getuid()
        self._owner = (1000, 1000) if os.geteuid() == 0 else None
        self.container_id: str | None = None
        # Named up front: a boot cancelled during `docker run` can still remove it.
        self.name = f"corral-{uuid.uuid4().hex[:16]}"
        self._spawned = False
        self._proc: ForeignProcess | None = None

    def _check_available(self) -> None:
        if engine.docker_cli() is None:
            raise SandboxError(engine.MISSING_DOCKER)

    async def _ensure_engine(self) -> None:
        """Once per process: the engine answers, the image exists, orphans are reaped."""
        if self.image in _CHECKED:
            return
        if not await engine.engine_ready():
            raise SandboxError(engine.MISSING_DOCKER)
        if not await engine.image_exists(self.image):
            raise SandboxError(
                f"sandbox image {self.image} is missing: run `corral sandbox prepare docker`"
            )
        reaped = await engine.reap()
        if reaped:
            log.info("removed %d orphaned sandbox containers", len(reaped))
        _CHECKED.add(self.image)

    def _run_args(self, ws: Workspace) -> list[str]:
        lim = self.limits
        tmpfs = f"rw,nosuid,nodev,size={lim.tmp_mb}m"
        profile = ws.root / "ctl" / "seccomp.json"
        profile.write_text(seccomp.docker_profile())
        args = [
            "run", "-d", "--name", self.name, "--init", "--user", f"{self._uid}:{self._uid}",
            "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
            "--security-opt", f"seccomp={profile}",
            "--read-only", "--tmpfs", f"/tmp:{tmpfs}",
            "--tmpfs", f"{HOME}:{tmpfs},uid={self._uid},gid={self._uid},mode=0755",
            "--memory", f"{lim.memory_mb}m", "--memory-swap", f"{lim.memory_mb}m",
            "--cpus", f"{lim.cpus:g}", "--pids-limit", str(lim.pids),
            "--network", "none", "--hostname", "corral", "--workdir", WORKDIR,
            "--ipc", "private", "--log-driver", "none",
            "-v", f"{ws.path}:{WORKDIR}:rslave",
            "-v", f"{ws.root / 'ctl'}:{_CTL}:ro", "-v", f"{ws.root / 'state'}:{_STATE}",
            "--label", f"{engine.LABEL}=1", "--label", f"corral.owner={owner_token()}",
            "--label", f"corral.root={ws.root}",
            "--label", f"corral.attempt={self.attempt_id or ''}",
        ]  # fmt: skip
        env = clean_env(home=HOME)
        if self.egress is not None:
            args += egress_bind.docker_args(self.egress.socket_path)
            env |= egress_bind.proxy_env()
        for key, value in env.items():
            args += ["-e", f"{key}={value}"]
        return args

    async def _spawn(self, ws: Workspace) -> None:
        await self._ensure_engine()
        driver = ShellDriver(limits=self.limits, ctl=ws.root / "ctl", ctl_inner=_CTL,
                             state_inner=_STATE, fifo=True, fifo_owner=self._owner)  # fmt: skip
        self._driver = driver
        argv = driver.argv()
        if self.egress is not None:
            argv = egress_bind.wrap_argv(argv)
        self._spawned = True
        out = await engine.docker(*self._run_args(ws), self.image, *argv, timeout=60)
        self.container_id = out.strip().splitlines()[-1]
        pid_text = await engine.docker(
            "inspect", "--format", "{{.State.Pid}}", self.container_id, timeout=30
        )
        try:
            pid = int(pid_text.strip())
            if pid <= 0:
                raise ValueError("container is not running")
            self._proc = ForeignProcess(pid)
            ns = os.readlink(f"/proc/{pid}/ns/pid")
        except (OSError, ValueError) as exc:
            raise SandboxError(f"docker container did not start: {exc}") from None
        self._cgroups = Cgroups.of_pid(pid)
        driver.protected_inner = {1}  # docker-init
        if self._cgroups is not None:
            driver.after_command = self._check_limits
        procs = self._cgroups.procs_file if self._cgroups else None
        scope = NamespaceScope(ns, procs)
        await driver.attach(self._proc, scope)
        if self.egress is not None:
            driver.protected_inner |= egress_bind.relay_pids(scope)

    async def _kill(self) -> None:
        if self._proc is not None:
            self._proc.kill()  # init dies; the kernel kills the rest of the container
        if self._driver is not None:
            await self._driver.sweep(everything=True)
        if self._spawned:  # by name: the id is unknown if `docker run` was cut short
            with contextlib.suppress(SandboxError):
                await engine.docker("rm", "-f", "-v", self.container_id or self.name, timeout=60)
