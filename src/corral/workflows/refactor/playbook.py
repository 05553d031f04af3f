"""`playbook:refactor`: a deterministic "model" for refactors with a mechanical `replace`.

No LLM: it reads the subtask from the task (the JSON block the plan puts in the
instructions), rewrites its files in the sandbox with the refactor's regex, checks that
no site is left in them, runs the test command, and finishes; any failure is an
`escalate` with the output, never a claimed success. Its calls go through the ordinary
agent loop, so the sandbox, tools, event log and replay are those of an LLM agent.
"""

from __future__ import annotations

import json
import re
import shlex
from collections.abc import Mapping, Sequence
from typing import Any

from corral.domain import Completion, ConfigError, Message, ToolCall, ToolSpec
from corral.ports import Model
from corral.store import TaskRow

PREFIX = "playbook:refactor"
PAYLOAD_FENCE = "```json corral-refactor"
EXIT_MARK = "corral-exit="
_TAIL = 3000

# Runs in the sandbox with its python3: rewrite each file, then count what is left.
_REWRITE = r"""
import json, re, sys
job = json.loads(sys.argv[1])
pattern = re.compile(job["find"], re.MULTILINE)
left = 0
for path in job["files"]:
    with open(path, encoding="utf-8") as f:
        text = f.read()
    new, n = pattern.subn(job["replace"], text)
    if new != text:
        with open(path, "w", encoding="utf-8") as f:
            f.write(new)
    rest = len(pattern.findall(new))
    left += rest
    print(f"{path}: {n} rewritten, {rest} left")
sys.exit(1 if left else 0)
"""


def payload_block(data: Mapping[str, Any]) -> str:
    """The part as data, after the prose: what the playbook and the delivery read."""
    return f"{PAYLOAD_FENCE}\n{json.dumps(data, indent=1)}\n```\n"


def parse_payload(instructions: str) -> dict[str, Any]:
    start = instructions.find(PAYLOAD_FENCE)
    end = instructions.find("\n```", start + len(PAYLOAD_FENCE))
    if start < 0 or end < 0:
        raise ConfigError(f"{PREFIX} needs a task made by `corral refactor plan --campaign`")
    try:
        data: dict[str, Any] = json.loads(instructions[start + len(PAYLOAD_FENCE) : end])
    except ValueError:
        raise ConfigError(f"{PREFIX}: the task's refactor block is not valid JSON") from None
    return data


def exit_code(output: str) -> int | None:
    found = re.findall(rf"{EXIT_MARK}(\d+)", output)
    return int(found[-1]) if found else None


class RefactorPlaybook:
    """rewrite -> test -> finish, reading each result from the conversation."""

    name = PREFIX
    context_window = 200_000

    def __init__(self, payload: Mapping[str, Any]) -> None:
        self.payload = payload

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
        p = self.payload
        if p.get("replace") is None:
            return _call("escalate", reason=(
                "this refactor has no mechanical `replace`: run it with an LLM model (--model)"
            ))  # fmt: skip
        if "rewrite" not in results:
            job = json.dumps({"files": p["files"], "find": p["find"], "replace": p["replace"]})
            command = f"python3 -c {shlex.quote(_REWRITE)} {shlex.quote(job)}"
            return _call("bash", "rewrite", command=f'{command}; echo "{EXIT_MARK}$?"')
        if exit_code(results["rewrite"]) != 0:
            return _call("escalate", reason=_failed("the rewrite left sites", results["rewrite"]))
        if p.get("test") and "test" not in results:
            return _call("bash", "test", command=f'{p["test"]}; echo "{EXIT_MARK}$?"')
        if p.get("test") and exit_code(results["test"]) != 0:
            return _call("escalate", reason=_failed("the tests failed", results["test"]))
        tested = f"; `{p['test']}` passed" if p.get("test") else "; no test command"
        return _call("finish", message=f"rewrote {len(p['files'])} files{tested}")


def _failed(what: str, output: str) -> str:
    return f"{what}:\n{output[-_TAIL:]}"


def _call(tool: str, call_id: str | None = None, **args: Any) -> Completion:
    return Completion(tool_calls=(ToolCall(id=call_id or tool, name=tool, arguments=args),))


def factory(spec: str, task: TaskRow, env: Mapping[str, str] | None) -> Model:
    if spec != PREFIX:
        raise ConfigError(f"unknown model spec {spec!r}: did you mean {PREFIX!r}?")
    return RefactorPlaybook(parse_payload(task.spec.instructions))
