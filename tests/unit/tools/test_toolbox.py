"""The Toolbox turns every bad tool call into an error result, never an exception."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from corral.domain import SandboxError, ToolCall, ToolResult, ToolSpec
from corral.ports import Sandbox, Tool
from corral.tools import Toolbox, default_tools


def call(name: str, args: dict[str, Any] | None = None, parse_error: str | None = None) -> ToolCall:
    return ToolCall(id="c1", name=name, arguments=args or {}, parse_error=parse_error)


async def test_default_tools_fit_the_protocol_and_have_specs() -> None:
    tools = default_tools(bash_timeout=5)
    assert all(isinstance(t, Tool) for t in tools)
    specs = Toolbox(tools).specs()
    assert [s.name for s in specs] == [
        "bash",
        "editor",
        "search",
        "think",
        "finish",
        "escalate",
        "browse",
    ]
    editor = specs[1].parameters
    assert editor["required"] == ["command", "path"]
    assert editor["properties"]["command"]["enum"][0] == "view"
    assert editor["additionalProperties"] is False
    assert "title" not in str(editor) and "anyOf" not in str(editor)


def test_attempts_share_spec_objects_so_the_gateway_encodes_a_tool_set_once() -> None:
    from corral.gateway.wire import tools_json

    first, second = Toolbox.default(bash_timeout=5), Toolbox.default(bash_timeout=5)
    assert all(a is b for a, b in zip(first.specs(), second.specs(), strict=True))
    assert tools_json(first.specs()) is tools_json(second.specs())
    other = Toolbox.default(bash_timeout=7).specs()[0]  # its description says 7 s
    assert other is not first.specs()[0] and "default 7)" in other.description


async def test_unknown_tool_lists_the_available_ones(sandbox: Sandbox) -> None:
    res = await Toolbox.default().run(sandbox, call("python", {"code": "1"}))
    assert res.is_error
    assert "unknown tool 'python'" in res.output and "bash, editor, search" in res.output


async def test_invented_arguments_become_an_error_result(sandbox: Sandbox) -> None:
    res = await Toolbox.default().run(sandbox, call("bash", {"command": "ls", "sudo": True}))
    assert res.is_error and "unknown argument 'sudo'" in res.output


async def test_unparseable_arguments_become_an_error_result(sandbox: Sandbox) -> None:
    res = await Toolbox.default().run(sandbox, call("bash", parse_error="Expecting value"))
    assert res.is_error and "not a valid JSON object" in res.output


async def test_refused_path_becomes_an_error_result(sandbox: Sandbox) -> None:
    res = await Toolbox.default().run(
        sandbox, call("editor", {"command": "view", "path": "../../etc/passwd"})
    )
    assert res.is_error and "outside the workspace" in res.output


class Broken:
    """A tool whose sandbox operation fails, and one with a bug."""

    def __init__(self, exc: Exception) -> None:
        self.exc = exc
        self.spec = ToolSpec(name="broken", description="", parameters={})

    async def run(self, sandbox: Sandbox, args: Mapping[str, Any]) -> ToolResult:
        raise self.exc


async def test_sandbox_errors_and_tool_bugs_become_error_results(sandbox: Sandbox) -> None:
    res = await Toolbox([Broken(SandboxError("shell died"))]).run(sandbox, call("broken"))
    assert res.is_error and "shell died" in res.output
    res = await Toolbox([Broken(KeyError("x"))]).run(sandbox, call("broken"))
    assert res.is_error and "internal error" in res.output


async def test_finish_through_the_toolbox(sandbox: Sandbox) -> None:
    res = await Toolbox.default().run(sandbox, call("finish", {"message": "done"}))
    assert res.finish_message == "done" and not res.is_error


async def test_undo_history_is_per_toolbox(sandbox: Sandbox) -> None:
    (sandbox.workspace / "f.txt").write_text("a\n")
    box = Toolbox.default()
    await box.run(
        sandbox, call("editor", {"command": "str_replace", "path": "f.txt", "old": "a", "new": "b"})
    )
    fresh = await Toolbox.default().run(
        sandbox, call("editor", {"command": "undo", "path": "f.txt"})
    )
    assert fresh.is_error and "no edit" in fresh.output
    res = await box.run(sandbox, call("editor", {"command": "undo", "path": "f.txt"}))
    assert not res.is_error and (sandbox.workspace / "f.txt").read_text() == "a\n"
