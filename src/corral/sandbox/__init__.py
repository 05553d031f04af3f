"""Sandboxes: where an agent's commands run. `bwrap` by default; `local` only on request.

async with open_sandbox("bwrap", repo) as sb:
    result = await sb.exec("pytest -q", timeout=60)
    patch = await sb.diff()
"""

from __future__ import annotations

from pathlib import Path

from corral.domain import ConfigError
from corral.sandbox.base import BaseSandbox
from corral.sandbox.bwrap import BwrapSandbox
from corral.sandbox.docker import DockerSandbox
from corral.sandbox.egress import EgressChannel
from corral.sandbox.limits import SandboxLimits
from corral.sandbox.local import LocalSandbox
from corral.sandbox.pool import SandboxPool, WarmPools
from corral.sandbox.workspace import diff

KINDS = ("bwrap", "docker", "local")

__all__ = ["KINDS", "BaseSandbox", "BwrapSandbox", "DockerSandbox", "LocalSandbox",
           "SandboxLimits", "SandboxPool", "WarmPools", "diff", "open_sandbox"]  # fmt: skip


def open_sandbox(
    kind: str,
    repo: Path,
    *,
    limits: SandboxLimits | None = None,
    unsafe_local: bool = False,
    attempt_id: str | None = None,
    egress: EgressChannel | None = None,
) -> BaseSandbox:
    """A sandbox of `kind` over a private copy of `repo`, not yet started.

    Starting it takes a booted one from an open `SandboxPool` (or `WarmPools`) of the same
    kind and boot limits, if any.
    """
    if egress is not None and kind == "local":
        raise ConfigError("network profiles need an isolated sandbox (bwrap or docker), not local")
    if kind == "bwrap":
        return BwrapSandbox(repo, limits=limits, attempt_id=attempt_id, egress=egress)
    if kind == "docker":
        return DockerSandbox(repo, limits=limits, attempt_id=attempt_id, egress=egress)
    if kind == "local":
        if not unsafe_local:
            raise ConfigError(
                "the local sandbox has no isolation: pass --unsafe-local to use it anyway"
            )
        return LocalSandbox(repo, limits=limits, attempt_id=attempt_id)
    raise ConfigError(f"unknown sandbox kind {kind!r}: valid kinds are {', '.join(KINDS)}")
