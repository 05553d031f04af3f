"""The `bash` tool: one shell command in the sandbox's persistent shell."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from corral.domain import ToolError, ToolResult
from corral.ports import Sandbox
from corral.tools.base import Args, parse_args, tool_spec


class BashArgs(Args):
    command: str = Field(description="The shell command to run.")
    timeout: float | None = Field(
        default=None, gt=0, description="Seconds before the command is killed (optional)."
    )


class BashTool:
    """Runs a command; the observation says plainly if it failed, timed out or was cut."""

    name = "bash"

    def __init__(self, *, default_timeout: float = 120.0, max_timeout: float = 1800.0) -> None:
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout
        self.spec = tool_spec(
            self.name,
            (
                "Run a bash command in the repository's sandbox (working directory: the "
                "workspace; `cd` and exported variables persist between calls). No network, "
                "no interactive programs: pass flags such as -y, and avoid editors and pagers. "
                f"Commands are killed after `timeout` seconds (default {default_timeout:g}). "
                "Long output is cut in the middle; filter it (grep, head, tail). "
                "Returns the combined stdout+stderr and notes a non-zero exit code."
            ),
            BashArgs,
        )

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        a = parse_args(self.name, BashArgs, args)
        if not a.command.strip():
            raise ToolError("bash: argument 'command' must not be empty")
        timeout = min(a.timeout or self.default_timeout, self.max_timeout)
        res = await sandbox.exec(a.command, timeout)
        notes: list[str] = []
        if res.timed_out:
            notes.append(f"[command timed out after {timeout:g} s and was killed]")
        elif res.exit_code not in (0, None):
            notes.append(f"[exit code {res.exit_code}]")
        if res.truncated:
            notes.append(
                "[output truncated: only the start and end are shown; "
                "redirect to a file and grep/head/tail it to see the rest]"
            )
        body = res.output if res.output.strip() else "(no output)"
        text = body.rstrip("\n") + ("\n" + "\n".join(notes) if notes else "")
        return ToolResult(
            output=text,
            exit_code=res.exit_code,
            timed_out=res.timed_out,
            truncated=res.truncated,
        )
