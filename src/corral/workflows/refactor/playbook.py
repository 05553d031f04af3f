"""`playbook:refactor[?then=MODEL]`: a deterministic "model" for a refactor's parts.

It reads the part from the task (the JSON block the plan puts in the instructions) and
drives the ordinary agent loop, so the sandbox, tools, event log and replay are those of
an LLM agent:

1. with a mechanical `replace`: rewrite the part's files in the sandbox, check that no
   site is left, run the test command, finish;
2. when that fails, or there is no `replace`, hand the run to `then` (an LLM) if there is
   one, else `escalate` with the output - never a claimed success;
3. when the LLM calls `finish`, verify it instead of believing it: no site left in the
   part's files, the tests pass; otherwise `escalate`. (That no other file changed is
   checked on the host, from the diff, by the delivery.)
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.domain import Completion, ConfigError, Message, ToolCall, ToolSpec
from corral.orchestrator.hooks import build_model
from corral.ports import Model
from corral.store import TaskRow
from corral.workflows.playbooks import EXIT_TAIL, exit_code, then_spec, unless_finished

PREFIX = "playbook:refactor"
PAYLOAD_FENCE = "```json corral-refactor"
_TAIL = 3000
_ID = "rf"  # our calls' ids: rf-ROUND-STEP (round 1: checking an LLM's work)

# Runs in the sandbox with its python3: rewrite (when asked), then count what is left.
# Files are read and written byte for byte (line ends kept, undecodable bytes kept).
_SCRIPT = r"""
import json, re, sys
job = json.loads(sys.argv[1])
pattern = re.compile(job["find"], re.MULTILINE)
io = {"encoding": "utf-8", "errors": "surrogateescape", "newline": ""}
bad = 0
for path in job["files"]:
    try:
        with open(path, **io) as f:
            text = f.read()
    except FileNotFoundError:
        print(f"{path}: missing")
        bad += 1
        continue
    if job.get("replace") is not None:
        new, n = pattern.subn(job["replace"], text)
        if new != text:
            with open(path, "w", **io) as f:
                f.write(new)
        text = new
        print(f"{path}: {n} rewritten")
    left = len(pattern.findall(text))
    bad += left
    print(f"{path}: {left} sites left")
sys.exit(1 if bad else 0)
"""


def payload_block(data: Mapping[str, Any]) -> str:
    """The part as data, after the prose: what the playbook and the delivery read."""
    return f"{PAYLOAD_FENCE}\n{json.dumps(data, indent=1)}\n```\n"


def parse_payload(instructions: str) -> dict[str, Any]:
    """The last block: the goal and the sites before it are text from the repo."""
    start = instructions.rfind(PAYLOAD_FENCE)
    end = instructions.find("\n```", start + len(PAYLOAD_FENCE))
    if start < 0 or end < 0:
        raise ConfigError(f"{PREFIX} needs a task made by `corral refactor plan --campaign`")
    try:
        data: dict[str, Any] = json.loads(instructions[start + len(PAYLOAD_FENCE) : end])
    except ValueError:
        raise ConfigError(f"{PREFIX}: the task's refactor block is not valid JSON") from None
    return data


@dataclass(frozen=True)
class _Done:
    round: int
    step: str
    output: str


class RefactorPlaybook:
    """The steps of the module docstring, each decided from the conversation so far."""

    name = PREFIX
    context_window = 200_000

    def __init__(self, payload: Mapping[str, Any], then: Callable[[], Model] | None = None):
        self.payload = payload
        self._then_factory = then
        self._then: Model | None = None

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        mine = _history(messages)
        last_calls = next((m.tool_calls for m in reversed(messages) if m.role == "assistant"), ())
        handed = any(d.step == "handoff" for d in mine)
        ours_last = bool(last_calls) and all(c.id.startswith(f"{_ID}-") for c in last_calls)
        if handed and (mine[-1].step == "handoff" or not ours_last):
            return await self._delegate(messages, tools)
        if not mine:
            if self.payload.get("replace") is None:
                return self._fail(0, "this refactor has no mechanical `replace`", "")
            return self._script(0, "rewrite", rewrite=True)
        last = mine[-1]
        code = exit_code(last.output)
        if last.step in ("rewrite", "check"):
            if code != 0:
                what = "sites are left" if last.step == "rewrite" else "the check failed"
                return self._fail(last.round, what, last.output)
            return self._test_or_finish(last.round)
        if last.step == "test":
            if code != 0:
                return self._fail(last.round, "the tests failed", last.output)
            return self._finish(last.round)
        return self._fail(last.round, f"unexpected step {last.step}", last.output)

    def _script(self, rnd: int, step: str, *, rewrite: bool) -> Completion:
        p = self.payload
        job = {"files": p["files"], "find": p["find"], "replace": p["replace"] if rewrite else None}
        command = f"python3 -c {shlex.quote(_SCRIPT)} {shlex.quote(json.dumps(job))}"
        say = "Rewriting the part's files." if rewrite else "Checking the part's files."
        return _call(rnd, step, "bash", say, command=command + EXIT_TAIL)

    def _test_or_finish(self, rnd: int) -> Completion:
        test = self.payload.get("test")
        if not test:
            return self._finish(rnd)
        return _call(rnd, "test", "bash", "Running the tests.",
                     command=test + EXIT_TAIL, timeout=1800)  # fmt: skip

    def _finish(self, rnd: int) -> Completion:
        p = self.payload
        by = "an LLM, checked" if rnd else "rewritten"
        tested = f"`{p['test']}` passed" if p.get("test") else "no test command"
        return _call(rnd, "finish", "finish", "Done.",
                     message=f"{len(p['files'])} files {by}; no site left; {tested}")  # fmt: skip

    def _fail(self, rnd: int, what: str, output: str) -> Completion:
        tail = output[-_TAIL:]
        if rnd == 0 and self._then_factory is not None:
            thought = f"{what}: handing over to an LLM agent.\n{tail}".strip()
            return _call(0, "handoff", "think", thought[:200], thought=thought)
        return _call(rnd, "escalate", "escalate", what, reason=f"{what}\n{tail}".strip())

    async def _delegate(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        if self._then is None:
            assert self._then_factory is not None
            self._then = self._then_factory()
        note = Message(role="user", content=(
            "You take over this part of the refactor (the task above says which files and "
            "what to do). Change only those files. Call `finish` when done: the part is then "
            "checked automatically (no site left, the tests pass; a change to any other file "
            "is refused). "
            "Call `escalate` if a human must decide."
        ))  # fmt: skip
        view: list[Message] = []
        for m in messages:
            view.append(m)
            if m.role == "tool" and (m.tool_call_id or "").endswith("-handoff"):
                view.append(note)
        done = await self._then.complete(view, tools)
        return unless_finished(done, lambda: self._script(1, "check", rewrite=False))

    async def aclose(self) -> None:
        close = getattr(self._then, "aclose", None)
        if close is not None:
            await close()


def _history(messages: Sequence[Message]) -> list[_Done]:
    results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    out: list[_Done] = []
    for m in messages:
        for c in m.tool_calls if m.role == "assistant" else ():
            parts = c.id.split("-", 2)
            if len(parts) == 3 and parts[0] == _ID and parts[1].isdigit():
                out.append(_Done(int(parts[1]), parts[2], results.get(c.id, "")))
    return out


def _call(rnd: int, step: str, tool: str, say: str, **args: Any) -> Completion:
    call = ToolCall(id=f"{_ID}-{rnd}-{step}", name=tool, arguments=args)
    return Completion(content=say, tool_calls=(call,), model=PREFIX)


def factory(spec: str, task: TaskRow, env: Mapping[str, str] | None) -> Model:
    then = then_spec(spec, PREFIX)
    payload = parse_payload(task.spec.instructions)
    return RefactorPlaybook(payload, (lambda: build_model(then, task, env)) if then else None)
