"""The loop against in-memory fakes: statuses, limits, stuck rules, condensation, events."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from corral.agent.config import AgentConfig, AgentLimits
from corral.agent.loop import AgentLoop
from corral.domain import (
    AttemptStarted,
    Completion,
    Condensed,
    Event,
    Message,
    Nudged,
    Observed,
    RunStatus,
    ScriptExhausted,
    ToolCall,
    ToolResult,
    ToolSpec,
    Usage,
)
from corral.ports import Sandbox


class ListModel:
    """Serves completions in order; remembers what it was shown."""

    def __init__(self, turns: Sequence[Completion], window: int = 100_000) -> None:
        self.turns = list(turns)
        self.name = "fake"
        self.context_window = window
        self.seen: list[list[Message]] = []

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        self.seen.append(list(messages))
        if not self.turns:
            raise ScriptExhausted("fake model ran out of turns")
        return self.turns.pop(0)


class EchoTools:
    """`echo` returns its text; `fail` errors; `finish` ends the run."""

    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(name=n, description=n, parameters={"type": "object"}) for n in ("echo",)]

    async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult:
        if call.name == "finish":
            return ToolResult(output="done", finish_message=str(call.arguments.get("message")))
        if call.name == "fail":
            return ToolResult(output="error: nope", is_error=True)
        return ToolResult(output=str(call.arguments.get("text", "")), exit_code=0)


class FakeSandbox:
    kind = "fake"
    workdir = "/workspace"
    workspace = Path("/nonexistent")


class ListSink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def append(self, event: Event) -> None:
        self.events.append(event)

    async def append_many(self, events: Sequence[Event]) -> None:
        for e in events:
            await self.append(e)


def turn(*calls: tuple[str, dict[str, Any]], text: str = "", cost: float = 0.0) -> Completion:
    return Completion(
        content=text,
        tool_calls=tuple(
            ToolCall(id=f"c{i}", name=n, arguments=a) for i, (n, a) in enumerate(calls)
        ),
        usage=Usage(input_tokens=10, output_tokens=5),
        cost_usd=cost,
    )


async def run(
    turns: Sequence[Completion], config: AgentConfig | None = None, window: int = 100_000
):
    sink = ListSink()
    model = ListModel(turns, window)
    loop = AgentLoop(
        attempt_id="att_x",
        model=model,
        sandbox=FakeSandbox(),  # type: ignore[arg-type]
        tools=EchoTools(),
        sink=sink,
        config=config,
    )
    outcome = await loop.run("do it", repo="/repo", repo_map="a.py: def f")
    return outcome, sink.events, model


async def test_finish_ends_the_run_and_every_event_is_in_order() -> None:
    outcome, events, model = await run(
        [turn(("echo", {"text": "hi"}), text="look"), turn(("finish", {"message": "ok"}))]
    )
    assert outcome.status is RunStatus.finished and outcome.reason == "ok"
    assert outcome.steps == 2
    assert [e.seq for e in events] == list(range(len(events)))
    assert isinstance(events[0], AttemptStarted) and "a.py: def f" in events[0].first_prompt
    kinds = [type(e).__name__ for e in events[1:]]
    assert kinds == ["ModelCalled", "ActionTaken", "Observed"] * 2
    obs = events[3]
    assert isinstance(obs, Observed) and obs.output == "hi" and obs.tool == "echo"
    # The second model call saw the first action's result as a tool message.
    assert any(m.role == "tool" and m.content == "hi" for m in model.seen[1])


async def test_step_limit() -> None:
    turns = [turn(("echo", {"text": str(i)})) for i in range(10)]
    outcome, _, _ = await run(turns, AgentConfig(limits=AgentLimits(max_steps=3)))
    assert outcome.status is RunStatus.limit and "step limit" in outcome.reason
    assert outcome.steps == 3


async def test_cost_limit() -> None:
    turns = [turn(("echo", {"text": str(i)}), cost=0.4) for i in range(10)]
    outcome, _, _ = await run(turns, AgentConfig(limits=AgentLimits(max_cost_usd=1.0)))
    assert outcome.status is RunStatus.limit and "cost limit" in outcome.reason
    assert outcome.steps == 3 and outcome.cost_usd == pytest.approx(1.2)


async def test_wall_time_limit() -> None:
    class Slow(ListModel):
        async def complete(
            self, messages: Sequence[Message], tools: Sequence[ToolSpec]
        ) -> Completion:
            import asyncio

            await asyncio.sleep(5)
            return turn(("echo", {"text": "x"}))

    sink = ListSink()
    loop = AgentLoop(
        attempt_id="att_x",
        model=Slow([]),
        sandbox=FakeSandbox(),  # type: ignore[arg-type]
        tools=EchoTools(),
        sink=sink,
        config=AgentConfig(limits=AgentLimits(max_wall_s=0.3)),
    )
    outcome = await loop.run("t", repo="/r")
    assert outcome.status is RunStatus.limit and "wall time" in outcome.reason


async def test_model_running_out_is_a_failed_run_not_a_crash() -> None:
    outcome, _, _ = await run([turn(("echo", {"text": "a"}))])
    assert outcome.status is RunStatus.failed and "ran out" in outcome.reason


async def test_same_action_same_observation_four_times_is_stuck() -> None:
    outcome, _, _ = await run([turn(("echo", {"text": "same"})) for _ in range(10)])
    assert outcome.status is RunStatus.stuck and "same result 4 times" in outcome.reason
    assert outcome.steps == 4


async def test_repeated_error_nudges_once_then_stuck() -> None:
    outcome, events, model = await run([turn(("fail", {"x": 1})) for _ in range(10)])
    nudges = [e for e in events if isinstance(e, Nudged)]
    assert len(nudges) == 1 and nudges[0].reason == "repeated_error"
    assert outcome.status is RunStatus.stuck and "failed" in outcome.reason
    assert outcome.steps == 4  # nudged after 3, stuck on the 4th
    assert any(m.role == "user" and "failed 3 times" in m.content for m in model.seen[3])


async def test_alternation_is_stuck() -> None:
    turns = [turn(("echo", {"text": "a" if i % 2 else "b"})) for i in range(10)]
    outcome, _, _ = await run(turns)
    assert outcome.status is RunStatus.stuck and "alternating" in outcome.reason
    assert outcome.steps == 6


async def test_three_turns_without_action_is_stuck_after_nudges() -> None:
    outcome, events, _ = await run([turn(text="thinking...") for _ in range(5)])
    assert outcome.status is RunStatus.stuck and "without an action" in outcome.reason
    assert sum(isinstance(e, Nudged) for e in events) == 2


async def test_progress_resets_the_no_action_count() -> None:
    turns = [turn(text="hmm"), turn(text="hmm"), turn(("echo", {"text": "x"}))]
    turns += [turn(text="hmm"), turn(text="hmm"), turn(("finish", {"message": "ok"}))]
    outcome, _, _ = await run(turns)
    assert outcome.status is RunStatus.finished


async def test_long_history_is_condensed_but_the_log_keeps_everything() -> None:
    big = "x" * 4000
    turns = [turn(("echo", {"text": f"{i}{big}"})) for i in range(12)]
    turns.append(turn(("finish", {"message": "ok"})))
    cfg = AgentConfig(keep_recent_turns=3, condense_at=0.5)
    outcome, events, model = await run(turns, cfg, window=8000)
    assert outcome.status is RunStatus.finished
    condensed = [e for e in events if isinstance(e, Condensed)]
    assert condensed, "the context should have been condensed"
    assert "echo" in condensed[0].summary
    # Every observation is still in the log even though the model no longer sees them all.
    assert sum(isinstance(e, Observed) for e in events) == 13
    last_prompt = model.seen[-1]
    assert any("condensed" in m.content for m in last_prompt if m.role == "user")
    assert sum(1 for m in last_prompt if m.role == "assistant") <= 4
    # tool results stay paired with the assistant message that asked for them
    ids = {c.id for m in last_prompt if m.role == "assistant" for c in m.tool_calls}
    assert all(m.tool_call_id in ids for m in last_prompt if m.role == "tool")


async def test_events_are_persisted_before_the_action_runs() -> None:
    order: list[str] = []

    class Sink(ListSink):
        async def append(self, event: Event) -> None:
            order.append(type(event).__name__)
            await super().append(event)

    class Tools(EchoTools):
        async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult:
            order.append("ran")
            return await super().run(sandbox, call)

    loop = AgentLoop(
        attempt_id="att_x",
        model=ListModel([turn(("finish", {"message": "m"}))]),
        sandbox=FakeSandbox(),  # type: ignore[arg-type]
        tools=Tools(),
        sink=Sink(),
    )
    await loop.run("t", repo="/r")
    assert order.index("ActionTaken") < order.index("ran") < order.index("Observed")


async def test_escalate_ends_the_run_for_a_human() -> None:
    class Tools(EchoTools):
        async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult:
            if call.name == "escalate":
                return ToolResult(output="escalated", escalation=str(call.arguments["reason"]))
            return await super().run(sandbox, call)

    loop = AgentLoop(
        attempt_id="att_x",
        model=ListModel([turn(("escalate", {"reason": "the API changed"}))]),
        sandbox=FakeSandbox(),  # type: ignore[arg-type]
        tools=Tools(),
        sink=ListSink(),
    )
    outcome = await loop.run("t", repo="/r")
    assert outcome.status is RunStatus.escalated and outcome.reason == "the API changed"
