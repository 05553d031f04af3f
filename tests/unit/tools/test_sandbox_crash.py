"""A crashed sandbox ends the attempt; a refused operation is only an error observation."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.domain import ExecResult, SandboxCrashed, SandboxError, ToolCall
from corral.tools import Toolbox, default_tools


class DyingSandbox:
    kind = "fake"
    workdir = "/workspace"
    workspace = Path("/nonexistent")

    def __init__(self, error: Exception) -> None:
        self.error = error

    async def exec(self, command: str, timeout: float | None = None) -> ExecResult:
        raise self.error


async def test_crash_propagates() -> None:
    box = Toolbox(default_tools())
    call = ToolCall(id="c", name="bash", arguments={"command": "ls"})
    with pytest.raises(SandboxCrashed):
        await box.run(DyingSandbox(SandboxCrashed("shell is gone")), call)  # type: ignore[arg-type]


async def test_refusal_is_an_observation() -> None:
    box = Toolbox(default_tools())
    call = ToolCall(id="c", name="bash", arguments={"command": "ls"})
    result = await box.run(DyingSandbox(SandboxError("nope")), call)  # type: ignore[arg-type]
    assert result.is_error and "nope" in result.output
