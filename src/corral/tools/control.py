"""Tools that touch nothing: `think` (a scratchpad), `finish` (ends the run) and
`escalate` (ends the run and asks a human to decide)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import Field

from corral.domain import ToolError, ToolResult
from corral.ports import Sandbox
from corral.tools.base import Args, parse_args, tool_spec


class ThinkArgs(Args):
    thought: str = Field(description="Your reasoning, plan or notes.")


class FinishArgs(Args):
    message: str = Field(description="What you changed and how you verified it.")


class EscalateArgs(Args):
    reason: str = Field(description="What you need a human to decide, and what you found.")


class ThinkTool:
    """Lets the model reason in the log without acting; the thought is kept in the
    action event, so the observation is only an acknowledgement."""

    name = "think"

    def __init__(self) -> None:
        self.spec = tool_spec(
            self.name,
            (
                "Write down a thought: a plan, a hypothesis, what you learned. It changes "
                "nothing and runs nothing; use it to reason before acting."
            ),
            ThinkArgs,
        )

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        parse_args(self.name, ThinkArgs, args)
        return ToolResult(output="Thought recorded.")


class FinishTool:
    """Ends the run; the loop sees `finish_message` and stops."""

    name = "finish"

    def __init__(self) -> None:
        self.spec = tool_spec(
            self.name,
            (
                "Call when the task is done (or cannot be done): the run ends and your "
                "changes in the workspace are kept as the result. `message` summarises what "
                "you changed and how you checked it. Verify (e.g. run the tests) before."
            ),
            FinishArgs,
        )

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        a = parse_args(self.name, FinishArgs, args)
        if not a.message.strip():
            raise ToolError("finish: argument 'message' must not be empty; say what you did")
        return ToolResult(output=f"Finished: {a.message}", finish_message=a.message)


class EscalateTool:
    """Ends the run in the human review queue: knowing when to stop is part of the job."""

    name = "escalate"

    def __init__(self) -> None:
        self.spec = tool_spec(
            self.name,
            (
                "Call when you cannot finish safely on your own: the change needs a decision "
                "(an API changed, tests fail for reasons outside the task, the fix is risky). "
                "The run ends, your workspace changes are kept, and a human reviews `reason`."
            ),
            EscalateArgs,
        )

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        a = parse_args(self.name, EscalateArgs, args)
        if not a.reason.strip():
            raise ToolError("escalate: `reason` must say what a human should decide")
        return ToolResult(output=f"Escalated to a human: {a.reason}", escalation=a.reason)
