"""Results of sandbox commands and tool runs."""

from __future__ import annotations

from corral.domain.messages import Frozen


class ExecResult(Frozen):
    """What one command in a sandbox produced."""

    output: str
    exit_code: int | None
    timed_out: bool = False
    truncated: bool = False
    duration_s: float = 0.0


class ToolResult(Frozen):
    """What a tool call returns to the loop; `output` is what the model will read."""

    output: str
    exit_code: int | None = None
    is_error: bool = False
    truncated: bool = False
    timed_out: bool = False
    # Set by the finish tool: the run ends with this message.
    finish_message: str | None = None
    # Set by the escalate tool: the run ends and a human decides (the review queue).
    escalation: str | None = None
