"""Resource limits for one sandbox: frozen config, so a run's limits can be recorded as-is."""

from __future__ import annotations

from pydantic import Field

from corral.domain import Frozen


class SandboxLimits(Frozen):
    """What one sandbox may use. Every command has a timeout: nothing runs forever."""

    memory_mb: int = Field(default=2048, ge=16)
    pids: int = Field(default=512, ge=8)
    output_bytes: int = Field(default=30_000, ge=256)  # cap for one observation
    default_timeout: float = Field(default=120.0, gt=0)
    max_timeout: float = Field(default=1800.0, gt=0)
    tmp_mb: int = Field(default=512, ge=1)  # size of each tmpfs (/tmp and HOME)
    max_file_bytes: int = Field(default=10_000_000, ge=1)  # read_file refuses bigger files
    workspace_mb: int = Field(default=2048, ge=8)  # disk cap of the workspace (as root)
    cpus: float = Field(default=2.0, gt=0)  # CPU share (docker; bwrap has no cpu cgroup yet)

    def boot_key(self) -> tuple[object, ...]:
        """What shapes a booted sandbox; the other fields only matter per command."""
        return (self.memory_mb, self.pids, self.tmp_mb, self.workspace_mb, self.cpus)

    def clamp_timeout(self, timeout: float | None) -> float:
        """A missing or non-positive timeout means the default; none may exceed the max."""
        if timeout is None or timeout <= 0:
            timeout = self.default_timeout
        return min(float(timeout), self.max_timeout)
