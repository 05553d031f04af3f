"""`playbook:cve`: a deterministic "model" for plain pin bumps. No LLM, same loop.

It fits the Model protocol and reads the conversation so far to pick the next tool calls:
edit the manifests at the recorded places, install in a venv, run the repo's tests,
re-scan, then `finish`. Every call goes through the AgentLoop, so the sandbox, the tools
and the event log are exactly those of an LLM agent, and a replay is identical.

When verification fails it never claims success: with an escalation model
(`playbook:cve?then=openai/gpt-4o`) it hands the run, failure included, to that model and
re-verifies when the model says it is done; otherwise it calls `escalate`, which puts
the task in the review queue with the failing output.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from corral.domain import Completion, ConfigError, Message, ToolCall, ToolSpec
from corral.ports import Model
from corral.store import TaskRow
from corral.workflows.cve import depcheck
from corral.workflows.cve.osv import AdvisorySource
from corral.workflows.cve.sources import open_source
from corral.workflows.cve.tasks import CvePayload, parse_instructions
from corral.workflows.cve.verify import (
    apply_edits,
    install_command,
    rescan,
    rescan_command,
    test_command,
    test_verdict,
)
from corral.workflows.playbooks import exit_code, then_spec, unless_finished

PREFIX = "playbook:cve"
RESULT_MARK = "corral-cve-result: "
_TAIL = 3000
_SOURCES: dict[tuple[str, ...], AdvisorySource] = {}


@dataclass(frozen=True)
class _Call:
    round: int
    step: str
    call: ToolCall
    result: str | None


def _pb_id(rnd: int, step: str, i: int = 0) -> str:
    return f"pb-{rnd}-{step}-{i}"


class PlaybookModel:
    """Decides tool calls from the conversation; hands over to `then` when it must."""

    context_window = 200_000

    def __init__(
        self,
        payload: CvePayload,
        source: Callable[[], AdvisorySource],
        then: Callable[[], Model] | None = None,
    ) -> None:
        self.payload = payload
        self._source = source
        self._then_factory = then
        self._then: Model | None = None
        self.name = PREFIX

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        names = {t.name for t in tools}
        missing = {"bash", "editor", "finish", "escalate"} - names
        if missing:
            raise ConfigError(f"playbook:cve needs the tools {', '.join(sorted(missing))}")
        history = _history(messages)
        mine = [h for h in history if h.round >= 0]
        last_msg_calls = next(
            (m.tool_calls for m in reversed(messages) if m.role == "assistant"), ()
        )
        handed = any(h.step == "handoff" for h in mine)
        if handed and (mine[-1].step == "handoff" or not _all_mine(last_msg_calls)):
            return await self._delegate(messages, tools, mine)
        if not mine:
            return self._start(0)
        last = mine[-1]
        return await self._advance(last.round, last.step, mine)

    # -- the script ------------------------------------------------------------------

    def _start(self, rnd: int) -> Completion:
        p = self.payload
        if rnd == 0 and p.edits:
            calls = [
                ToolCall(
                    id=_pb_id(0, "edit", i),
                    name="editor",
                    arguments={
                        "command": "str_replace",
                        "path": e.file,
                        "old": e.old,
                        "new": e.new,
                    },
                )
                for i, e in enumerate(p.edits)
            ]
            ups = ", ".join(
                f"{u.package} {u.from_version} -> {u.to_version}" for u in p.plan.upgrades
            )
            return _turn(f"Applying the planned upgrades: {ups}.", calls)
        if rnd == 0 and not p.plan.upgrades:
            return self._decide_fail(0, "nothing to upgrade: no release fixes these advisories", "")
        return self._bash(rnd, "install", install_command(p), 600, "Installing the dependencies.")

    def _bash(self, rnd: int, step: str, command: str, timeout: float, say: str) -> Completion:
        args: dict[str, Any] = {"command": command, "timeout": timeout}
        return _turn(say, [ToolCall(id=_pb_id(rnd, step), name="bash", arguments=args)])

    async def _advance(self, rnd: int, step: str, mine: list[_Call]) -> Completion:
        p = self.payload
        here = [h for h in mine if h.round == rnd and h.step == step]
        out = "\n".join(h.result or "" for h in here)
        if step == "edit":
            bad = [h.result or "" for h in here if not (h.result or "").startswith("Edited")]
            if bad:
                return self._decide_fail(rnd, "an edit of the manifests failed", bad[0])
            return self._bash(rnd, "install", install_command(p), 600, "Installing.")
        if step == "install":
            if exit_code(out) != 0:
                mark = depcheck.MARK
                clash = next((x for x in out.splitlines() if x.startswith(mark)), "")
                what = (
                    f"the upgrade conflicts with another dependency: {clash.removeprefix(mark)}"
                    if clash
                    else "installing the upgraded dependencies failed"
                )
                return self._decide_fail(rnd, what, out)
            if p.tests.kind == "none":
                return self._rescan_step(rnd, mine)
            return self._bash(rnd, "tests", test_command(p), p.test_timeout_s,
                              f"Running the tests: {p.tests.command}")  # fmt: skip
        if step == "tests":
            if test_verdict(p, out) == "failed":
                failed = {"tests": "failed", "test_command": p.tests.command}
                return self._decide_fail(rnd, "the tests fail after the upgrade", out, failed)
            return self._rescan_step(rnd, mine)
        if step == "rescan":
            return await self._after_rescan(rnd, mine, out)
        raise ConfigError(f"playbook:cve: unexpected step {step!r} in the conversation")

    def _rescan_step(self, rnd: int, mine: list[_Call]) -> Completion:
        files = sorted({e.file for e in self.payload.edits})
        return self._bash(rnd, "rescan", rescan_command(self.payload, files), 120,
                          "Re-scanning what is installed and the edited manifests.")  # fmt: skip

    async def _after_rescan(self, rnd: int, mine: list[_Call], out: str) -> Completion:
        p = self.payload
        done = [int(h.call.id.rsplit("-", 1)[1]) for h in mine if h.step == "edit"]
        check = await rescan(
            p, self._source(), out, truncated="[output truncated" in out,
            fallback=apply_edits(p, done),
        )  # fmt: skip
        tests = self._verdict(rnd, mine)
        result = {
            "tests": tests,
            "test_command": p.tests.command,
            "fixed": sorted(t for t in p.targets if t not in check.remaining),
            "remaining": check.remaining,
            "added": check.added,
            "notes": check.notes,
            "by": "playbook+llm" if rnd else "playbook",
        }
        if not check.ok:
            why = []
            if check.remaining:
                why.append("still vulnerable: " + _pairs(check.remaining))
            if check.added:
                why.append("newly vulnerable: " + _pairs(check.added))
            return self._decide_fail(rnd, "the re-scan is not clean (" + "; ".join(why) + ")",
                                     out, result)  # fmt: skip
        if p.hash_problems:  # the rest verified; a human must still finish those pins
            return self._decide_fail(rnd, "", out, result)
        lines = [f"Upgraded {len(p.plan.upgrades)} package(s); cleared {_pairs(result['fixed'])}."]
        lines.append(
            f"Tests: {tests} ({p.tests.command})." if p.tests.command else "Tests: no tests found."
        )
        message = " ".join(lines) + "\n" + RESULT_MARK + json.dumps(result)
        call = ToolCall(id=_pb_id(rnd, "finish"), name="finish", arguments={"message": message})
        return _turn("Verified.", [call])

    def _verdict(self, rnd: int, mine: list[_Call]) -> str:
        out = "\n".join(h.result or "" for h in mine if h.round == rnd and h.step == "tests")
        return test_verdict(self.payload, out) if out else "no tests found"

    def _decide_fail(
        self, rnd: int, what: str, output: str, result: dict[str, Any] | None = None
    ) -> Completion:
        """Hand over to the LLM (once), or escalate to review with a one-line headline.

        Hashes we could not refresh always end in review: no model can fetch them from
        inside the sandbox, and the first line of the reason names the packages.
        """
        tail = output[-_TAIL:]
        gaps = self.payload.hash_problems
        result = result or {"tests": "not run", "test_command": self.payload.tests.command}
        if what:
            result["failure"] = what
        if rnd == 0 and self._then_factory is not None and not gaps:
            thought = (
                f"Verification failed: {what}. Handing over to an LLM agent to adapt the code. "
                f"Output:\n{tail}"
            )
            call = ToolCall(id=_pb_id(0, "handoff"), name="think", arguments={"thought": thought})
            return _turn(thought[:200], [call])
        head = f"Verification failed: {what}."
        if gaps:
            result["hash_problems"] = list(gaps)
            head = f"Hashes could not be refreshed: {'; '.join(gaps)}."
            head += f"\nVerification failed: {what}." if what else ""
        reason = f"{head}\n{tail}\n{RESULT_MARK}{json.dumps(result)}"
        call = ToolCall(id=_pb_id(rnd, "escalate"), name="escalate", arguments={"reason": reason})
        return _turn(head.split("\n")[0], [call])

    # -- the LLM takes over --------------------------------------------------------------

    async def _delegate(
        self, messages: Sequence[Message], tools: Sequence[ToolSpec], mine: list[_Call]
    ) -> Completion:
        if self._then is None:
            assert self._then_factory is not None
            self._then = self._then_factory()
        handoff = next(h for h in mine if h.step == "handoff")
        note = Message(
            role="user",
            content=(
                "The scripted dependency upgrade above was applied but did not verify:\n"
                f"{handoff.call.arguments.get('thought', '')}\n\nYou take over. Keep the "
                "upgraded versions (never downgrade a security fix); adapt the code or tests "
                "that the new versions broke. The venv is /tmp/corral-venv (export PATH="
                "/tmp/corral-venv/bin:$PATH). Call `finish` when done: the upgrade is then "
                "re-verified automatically. Call `escalate` if a human must decide."
            ),
        )
        view: list[Message] = []
        for m in messages:
            view.append(m)
            if m.role == "tool" and m.tool_call_id == handoff.call.id:
                view.append(note)
        done = await self._then.complete(view, tools)
        return unless_finished(done, lambda: self._start(1))  # then verified again

    async def aclose(self) -> None:
        close = getattr(self._then, "aclose", None)
        if close is not None:
            await close()


def _turn(content: str, calls: list[ToolCall]) -> Completion:
    return Completion(content=content, tool_calls=tuple(calls), model=PREFIX)


def _pairs(pairs: Sequence[Sequence[str]]) -> str:
    return ", ".join(f"{a} {b}" for a, b in pairs) or "nothing"


def _all_mine(calls: Sequence[ToolCall]) -> bool:
    return bool(calls) and all(c.id.startswith("pb-") for c in calls)


def _history(messages: Sequence[Message]) -> list[_Call]:
    """Every tool call made so far with its result; ours carry `pb-ROUND-STEP-N` ids."""
    results = {m.tool_call_id: m.content for m in messages if m.role == "tool"}
    out: list[_Call] = []
    for m in messages:
        if m.role != "assistant":
            continue
        for c in m.tool_calls:
            parts = c.id.split("-")
            if len(parts) == 4 and parts[0] == "pb" and parts[1].isdigit():
                out.append(_Call(int(parts[1]), parts[2], c, results.get(c.id)))
            else:
                out.append(_Call(-1, c.name, c, results.get(c.id)))
    return out


def parse_spec(spec: str) -> str | None:
    """`playbook:cve?then=openai/gpt-4o` -> the escalation model spec (or None)."""
    return then_spec(spec, PREFIX)


def source_for(db: Sequence[str]) -> AdvisorySource:
    key = tuple(db)
    if key not in _SOURCES:
        _SOURCES[key] = open_source(list(db))
    return _SOURCES[key]


def playbook_factory(
    build: Callable[[str, TaskRow, Mapping[str, str] | None], Model],
) -> Callable[[str, TaskRow, Mapping[str, str] | None], Model]:
    """The hook factory; `build` makes the escalation model (any registered spec)."""

    def factory(spec: str, task: TaskRow, env: Mapping[str, str] | None) -> Model:
        then = parse_spec(spec)
        payload = parse_instructions(task.spec.instructions)
        then_factory = (lambda: build(then, task, env)) if then else None
        return PlaybookModel(payload, lambda: source_for(payload.db), then_factory)

    return factory
