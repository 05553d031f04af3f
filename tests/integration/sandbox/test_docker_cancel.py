"""A Docker boot cancelled while `docker run` is under way (a pool closing, an attempt
cancelled) leaves no container behind: the engine finishes a request it got, so the
sandbox waits for the CLI and removes the container by the name it gave it."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.security.docker_support import require_docker

from corral.sandbox import DockerSandbox, docker_engine

from .conftest import LIMITS


async def _created(name: str) -> bool:
    out = await docker_engine.docker("ps", "-aq", "--filter", f"name=^{name}$", timeout=20)
    return bool(out.strip())


async def test_docker_boot_cancelled_during_run_leaves_no_container(repo: Path) -> None:
    require_docker()
    sb = DockerSandbox(repo, limits=LIMITS)
    boot = asyncio.ensure_future(sb.boot())
    # Cancel once the engine has the container but `docker run` has not returned its id.
    for _ in range(3000):
        if boot.done() or await _created(sb.name):
            break
        await asyncio.sleep(0.01)
    assert not boot.done() and sb.container_id is None, "too late: the boot finished"
    boot.cancel()
    await asyncio.gather(boot, return_exceptions=True)
    assert boot.cancelled()
    assert not await _created(sb.name)
