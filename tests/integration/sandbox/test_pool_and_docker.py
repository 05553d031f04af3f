"""Warm pools (bwrap and Docker), Docker labels, `corral sandbox ls/gc`, missing engine."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import Result
from tests.security.docker_support import require_docker
from typer.testing import CliRunner

from corral.cli.main import app
from corral.domain import SandboxError
from corral.sandbox import DockerSandbox, SandboxPool, docker_engine, mounts, open_sandbox
from corral.sandbox.workspace import remove_root

from .conftest import LIMITS, dead_workspace


async def _cli(*args: str) -> Result:
    """The CLI runs its own event loop: call it from a thread."""
    return await asyncio.to_thread(CliRunner().invoke, app, list(args))


@pytest.mark.parametrize("kind", ["bwrap", "docker"])
async def test_pool_claim_gives_a_loaded_sandbox(kind: str, repo: Path) -> None:
    if kind == "docker":
        require_docker()
    async with SandboxPool(kind, size=1, limits=LIMITS) as pool:
        await pool.wait_full(120)
        sb = await pool.claim(repo, attempt_id="att-pool-1")
        try:
            assert (await sb.exec("cat app.py; export K=v", 10)).output == "x = 1\n"
            assert (await sb.exec("echo $K", 10)).output == "v\n"
            await sb.exec("echo 'x = 3' > app.py", 10)
            assert "+x = 3" in await sb.diff()
            # open_sandbox().start() takes from the open pool too
            await pool.wait_full(120)
            other = open_sandbox(kind, repo, limits=LIMITS)
            await other.start()
            assert (await other.exec("cat app.py", 10)).output == "x = 1\n"
            await other.close()
        finally:
            await sb.close()


@pytest.mark.parametrize("kind", ["bwrap", "docker"])
async def test_the_tools_an_agent_reaches_for_are_there(kind: str, repo: Path) -> None:
    """The same commands work whichever sandbox a task names (the docker image was built
    without curl, so a task's `curl` through its egress profile failed only there)."""
    if kind == "docker":
        require_docker()
    sb = open_sandbox(kind, repo, limits=LIMITS)
    await sb.start()
    try:
        found = await sb.exec(
            "for t in git python3 curl; do command -v $t >/dev/null || echo $t; done", 10
        )
        assert found.exit_code == 0 and found.output == "", f"missing in {kind}: {found.output}"
    finally:
        await sb.close()


async def test_docker_labels_ls_and_gc(repo: Path) -> None:
    require_docker()
    sb = DockerSandbox(repo, limits=LIMITS, attempt_id="att-ls-1")
    await sb.start()
    try:
        found = {c.id: c for c in await docker_engine.list_containers()}
        assert sb.container_id in found
        assert found[sb.container_id].attempt == "att-ls-1"
        assert not found[sb.container_id].orphaned
        out = (await _cli("sandbox", "ls")).output
        assert "att-ls-1" in out
        # An orphan: a labelled container whose owner process is gone.
        args = ["run", "-d", "--network", "none", "--label", "corral=1"]
        args += ["--label", "corral.owner=999999999:1", docker_engine.IMAGE, "sleep", "300"]
        orphan = (await docker_engine.docker(*args)).strip()
        result = await _cli("sandbox", "gc")
        assert result.exit_code == 0, result.output
        left = {c.id for c in await docker_engine.list_containers()}
        assert orphan not in left and sb.container_id in left
    finally:
        await sb.close()
    assert sb.container_id not in {c.id for c in await docker_engine.list_containers()}


async def test_a_new_image_replaces_the_old_ones() -> None:
    require_docker()
    await docker_engine.prepare_image()
    old = "corral-sandbox:bookworm-0"
    await docker_engine.docker("tag", docker_engine.IMAGE, old)  # as an earlier version left it
    newer = f"corral-sandbox:bookworm-{docker_engine.IMAGE_VERSION + 1}"  # a newer worker's
    await docker_engine.docker("tag", docker_engine.IMAGE, newer)
    try:
        assert await docker_engine.drop_old_images(docker_engine.IMAGE) == [old]
        assert not await docker_engine.image_exists(old)
        assert await docker_engine.image_exists(docker_engine.IMAGE)
        assert await docker_engine.image_exists(newer)  # never the newer version's
    finally:
        await docker_engine.docker("rmi", newer)


def test_prepare_docker_is_cached() -> None:
    require_docker()
    result = CliRunner().invoke(app, ["sandbox", "prepare", "docker"])
    assert result.exit_code == 0 and "cached" in result.output


async def test_missing_docker_cli_one_line(repo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(docker_engine, "docker_cli", lambda: None)
    with pytest.raises(SandboxError) as err:
        await DockerSandbox(repo, limits=LIMITS).start()
    assert str(err.value) == docker_engine.MISSING_DOCKER and "\n" not in str(err.value)


def test_gc_removes_orphan_workspaces_mounted_or_not() -> None:
    """`corral sandbox gc`: workspaces whose owner died go, capped (a tmpfs) or plain."""
    capped = dead_workspace()
    # As a non-root run leaves them (no tmpfs), of a process long gone.
    plain = Path(tempfile.mkdtemp(prefix="corral-999999999-1-"))
    try:
        assert capped in mounts.mounted_under(capped.parent)
        result = CliRunner().invoke(app, ["sandbox", "gc"])
        assert result.exit_code == 0, result.output
        for root in (capped, plain):
            assert f"workspace {root}" in result.output and not root.exists()
    finally:
        if capped.exists():
            remove_root(capped, capped=True)
        shutil.rmtree(plain, ignore_errors=True)
