"""Security suite fixtures: every test runs against bwrap and Docker."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.sandbox import BaseSandbox, SandboxLimits, open_sandbox

from .docker_support import ensure_image, needs_docker, require_docker

LIMITS = SandboxLimits(memory_mb=256, pids=128, default_timeout=20, workspace_mb=64, tmp_mb=32)
CANARY = "corral-canary-7f3a9c"
KEY = "sk-canary-0123456789abcdef"
BACKENDS = ["bwrap", "docker"]


def pytest_collection_finish(session: pytest.Session) -> None:
    if needs_docker(session.items):
        ensure_image()


def make_repo(path: Path) -> Path:
    path.mkdir(parents=True)
    (path / "app.py").write_text("x = 1\n")
    env = {"PATH": os.environ["PATH"], "HOME": str(path), "GIT_CONFIG_NOSYSTEM": "1"}
    import subprocess

    for args in (["init", "-q"], ["add", "-A"],
                 ["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "init"]):  # fmt: skip
        subprocess.run(["git", *args], cwd=path, env=env, check=True)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


class Watched:
    """Every output a test saw, so teardown can assert no canary ever came out."""

    def __init__(self) -> None:
        self.outputs: list[str] = []


async def start_box(kind: str, repo: Path, watched: Watched | None = None) -> BaseSandbox:
    if kind == "docker":
        require_docker()
    box = open_sandbox(kind, repo, limits=LIMITS)
    await box.start()
    if watched is not None:
        exec_ = box.exec

        async def recording(command: str, timeout: float | None = None):  # type: ignore[no-untyped-def]
            result = await exec_(command, timeout)
            watched.outputs.append(result.output)
            return result

        box.exec = recording  # type: ignore[method-assign]
    return box


@pytest.fixture(params=BACKENDS)
async def box(
    request: pytest.FixtureRequest, repo: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[BaseSandbox]:
    monkeypatch.setenv("CORRAL_CANARY", CANARY)
    monkeypatch.setenv("OPENAI_API_KEY", KEY)
    watched = Watched()
    sb = await start_box(request.param, repo, watched)
    try:
        yield sb
    finally:
        await sb.close()
    for out in watched.outputs:
        assert CANARY not in out and KEY not in out
