"""Real sandboxes over a small git repo (no mocks: bwrap and git run for real)."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from tests.security.docker_support import ensure_image, needs_docker

from corral.sandbox import BaseSandbox, SandboxLimits, open_sandbox

LIMITS = SandboxLimits(memory_mb=256, pids=128, default_timeout=20, workspace_mb=128)


def pytest_collection_finish(session: pytest.Session) -> None:
    """Build the Docker image once, before any test's timeout starts (cached by tag)."""
    if needs_docker(session.items):
        ensure_image()


def make_repo(path: Path, *, git: bool = True) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    (path / "app.py").write_text("x = 1\n")
    (path / "README.md").write_text("# demo\n")
    if git:
        env = {"PATH": os.environ["PATH"], "HOME": str(path), "GIT_CONFIG_NOSYSTEM": "1"}
        for args in (
            ["init", "-q"], ["add", "-A"],
            ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"],
        ):  # fmt: skip
            subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture(params=["bwrap", "local"])
async def sandbox(request: pytest.FixtureRequest, repo: Path) -> AsyncIterator[BaseSandbox]:
    sb = open_sandbox(request.param, repo, limits=LIMITS, unsafe_local=True)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.close()


def dead_workspace(size_mb: int = 16) -> Path:
    """A workspace (a mounted tmpfs where we can mount) whose process is gone: made by a
    child process that then exited without removing it, as a kill -9 leaves one."""
    made = subprocess.run(
        [sys.executable, "-c", "from corral.sandbox.workspace import create\n"
         f"print(create(size_mb={size_mb}).root)"],
        capture_output=True, text=True, check=True, timeout=60,
    )  # fmt: skip
    return Path(made.stdout.strip())
