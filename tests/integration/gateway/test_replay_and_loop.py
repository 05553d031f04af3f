"""Recording and replay, and the unchanged agent loop running through the gateway."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import pytest

from corral.agent.loop import AgentLoop
from corral.domain import (
    Event,
    ModelCalled,
    ProviderError,
    RunStatus,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from corral.gateway import BudgetScope, Gateway
from corral.ports import Model, Sandbox
from corral.testing import FakeProvider

from .conftest import ask, config, deployment

SCRIPT = [
    {"thought": "look", "tool_calls": [{"tool": "echo", "args": {"text": "hi"}}]},
    {"thought": "done", "tool_calls": [{"tool": "finish", "args": {"message": "ok"}}]},
]


class EchoTools:
    def specs(self) -> list[ToolSpec]:
        return [ToolSpec(name="echo", description="echo", parameters={"type": "object"})]

    async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult:
        if call.name == "finish":
            return ToolResult(output="done", finish_message=str(call.arguments["message"]))
        return ToolResult(output=str(call.arguments.get("text", "")), exit_code=0)


class Box:
    kind = "fake"
    workdir = "/workspace"
    workspace = Path("/nonexistent")


class Sink:
    def __init__(self) -> None:
        self.events: list[Event] = []

    async def append(self, event: Event) -> None:
        self.events.append(event)

    async def append_many(self, events: Sequence[Event]) -> None:
        self.events.extend(events)


async def _run(model: Model) -> list[Event]:
    sink = Sink()
    loop = AgentLoop(
        attempt_id="att_gw",
        model=model,
        sandbox=Box(),  # type: ignore[arg-type]
        tools=EchoTools(),
        sink=sink,
    )
    outcome = await loop.run("say hi", repo="/repo")
    assert outcome.status is RunStatus.finished and outcome.reason == "ok"
    return sink.events


async def test_the_agent_loop_runs_unchanged_through_the_gateway_and_replays(
    tmp_path: Path,
) -> None:
    records = tmp_path / "records.jsonl"
    async with FakeProvider(script=SCRIPT) as fp:
        cfg = config(deployment("d", fp))
        gw = Gateway(cfg, env={}, record_to=records)
        async with gw:
            model = gw.model("d", scope=BudgetScope(attempt="att_gw", task="t"))
            assert isinstance(model, Model)
            events = await _run(model)
        assert fp.stats.completed == 2
    calls = [e for e in events if isinstance(e, ModelCalled)]
    assert [c.completion.content for c in calls] == ["look", "done"]
    assert all(c.completion.cost_usd > 0 for c in calls)
    lines = [json.loads(line) for line in records.read_text().splitlines()]
    assert len(lines) == 2 and lines[0]["scope"] == ["global", "task:t", "attempt:att_gw"]

    # The provider is gone and no key is needed: replay serves the recorded answers.
    replayer = Gateway(cfg, env={}, replay_from=records)
    async with replayer:
        again = await _run(replayer.model("d", scope=BudgetScope(attempt="att_gw")))
    replayed = [e for e in again if isinstance(e, ModelCalled)]
    assert [c.completion for c in replayed] == [c.completion for c in calls]
    spent = (await replayer.ledger.state("attempt:att_gw")).spent_usd
    assert spent == pytest.approx(sum(c.completion.cost_usd for c in calls))


async def test_replay_of_a_request_never_recorded_is_a_clear_error(tmp_path: Path) -> None:
    records = tmp_path / "r.jsonl"
    records.write_text("")
    async with FakeProvider() as fp:
        gw = Gateway(config(deployment("d", fp)), env={}, replay_from=records)
    async with gw:
        with pytest.raises(ProviderError, match="no recorded answer"):
            await gw.complete("d", ask())
