"""The default tool set and the `Toolbox` that dispatches a model's tool call.

The Toolbox is the one place where a bad tool call (unknown name, unparseable or invented
arguments, a refused path, a broken sandbox operation) becomes an error observation the
model reads; it never raises for one, so a confused model cannot crash the loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable

from corral.domain import SandboxCrashed, SandboxError, ToolCall, ToolError, ToolResult, ToolSpec
from corral.ports import Sandbox, Tool
from corral.tools.base import error_result
from corral.tools.bash import BashTool
from corral.tools.browse import BrowseTool
from corral.tools.control import EscalateTool, FinishTool, ThinkTool
from corral.tools.editor import EditorTool
from corral.tools.search import SearchTool

log = logging.getLogger(__name__)

# A last guard on what reaches the model; each tool caps its own output well below this.
MAX_OUTPUT_CHARS = 50_000


def default_tools(*, bash_timeout: float = 120.0) -> list[Tool]:
    """Fresh instances of bash, editor, search, think, finish, escalate and browse (one
    set per attempt: the editor keeps its undo history in its instance)."""
    return [
        BashTool(default_timeout=bash_timeout),
        EditorTool(),
        SearchTool(),
        ThinkTool(),
        FinishTool(),
        EscalateTool(),
        BrowseTool(),
    ]


class Toolbox:
    """Tools by name: `specs()` for the model, `run(sandbox, call)` for the loop."""

    def __init__(self, tools: Iterable[Tool]) -> None:
        self._tools: dict[str, Tool] = {}
        for tool in tools:
            if tool.spec.name in self._tools:
                raise ValueError(f"two tools are named {tool.spec.name!r}")
            self._tools[tool.spec.name] = tool

    @classmethod
    def default(cls, *, bash_timeout: float = 120.0) -> Toolbox:
        return cls(default_tools(bash_timeout=bash_timeout))

    @property
    def names(self) -> list[str]:
        return list(self._tools)

    def specs(self) -> list[ToolSpec]:
        return [t.spec for t in self._tools.values()]

    def get(self, name: str) -> Tool | None:
        return self._tools.get(name)

    async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult:
        """Run one tool call; every failure of the call becomes an error result."""
        tool = self._tools.get(call.name)
        if tool is None:
            return error_result(
                f"unknown tool {call.name!r}; available tools: {', '.join(self._tools)}"
            )
        if call.parse_error is not None:
            return error_result(
                f"{call.name}: the arguments are not a valid JSON object ({call.parse_error}); "
                "send them again as a JSON object"
            )
        try:
            result = await tool.run(sandbox, call.arguments)
        except ToolError as exc:
            return error_result(str(exc))
        except SandboxCrashed:
            raise  # the sandbox is gone: the attempt ends (and is retried), not the tool call
        except SandboxError as exc:
            return error_result(f"{call.name}: the sandbox refused or failed: {exc}")
        except Exception as exc:  # a bug in a tool must not end the attempt silently
            log.exception("tool %s crashed", call.name)
            return error_result(f"{call.name}: internal error ({type(exc).__name__}: {exc})")
        if len(result.output) > MAX_OUTPUT_CHARS:
            half = MAX_OUTPUT_CHARS // 2
            cut = len(result.output) - 2 * half
            marker = f"\n[... {cut} characters cut ...]\n"
            text = result.output[:half] + marker + result.output[-half:]
            result = result.model_copy(update={"output": text, "truncated": True})
        return result
