"""Perceive → Reason → Act → Observe, until `finish`, a limit, or stuck.

Every event is handed to the sink (persisted) before the loop acts on it, so the log is
always at least as far along as the agent.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from corral.agent.config import AgentConfig
from corral.agent.context import Context
from corral.agent.prompts import FIRST_PROMPT, SYSTEM_PROMPT
from corral.agent.signals import Escalated, Finished, LimitExceeded, RunEnded, Stuck
from corral.agent.stuck import StuckDetector
from corral.domain import (
    ActionTaken,
    AttemptStarted,
    Completion,
    Condensed,
    CorralError,
    Event,
    ModelCalled,
    ModelError,
    Nudged,
    Observed,
    RunStatus,
    ToolCall,
    ToolResult,
    ToolSpec,
)
from corral.ports import EventSink, Model, Sandbox


class ToolRunner(Protocol):
    """What the loop needs from a toolbox: schemas, and a call that never raises."""

    def specs(self) -> list[ToolSpec]: ...

    async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult: ...


@dataclass(frozen=True)
class RunOutcome:
    status: RunStatus
    reason: str
    steps: int
    cost_usd: float
    next_seq: int
    # The error that ended a failed run, so the orchestrator can tell retryable from final.
    error: CorralError | None = None


class AgentLoop:
    """One attempt of one agent. Holds run state; the definition is the frozen config."""

    def __init__(
        self,
        *,
        attempt_id: str,
        model: Model,
        sandbox: Sandbox,
        tools: ToolRunner,
        sink: EventSink,
        config: AgentConfig | None = None,
        start_seq: int = 0,
    ) -> None:
        self.attempt_id = attempt_id
        self.model = model
        self.sandbox = sandbox
        self.tools = tools
        self.sink = sink
        self.config = config or AgentConfig()
        self.seq = start_seq
        self.steps = 0
        self.cost_usd = 0.0
        self.stuck = StuckDetector(self.config.stuck)
        self._deadline = 0.0

    async def _emit(self, event: Event) -> None:
        await self.sink.append(event)
        self.seq += 1

    async def _emit_turn(self, completion: Completion, n_messages: int) -> list[ActionTaken]:
        """The model turn and every action it asks for, persisted in one write."""
        base = self.seq
        called = ModelCalled(
            attempt_id=self.attempt_id,
            seq=base,
            model=completion.model or self.model.name,
            completion=completion,
            input_messages=n_messages,
        )
        actions = [
            ActionTaken(
                attempt_id=self.attempt_id, seq=base + 1 + i, call_id=c.id, tool=c.name,
                args=c.arguments,
            )
            for i, c in enumerate(completion.tool_calls)
        ]  # fmt: skip
        await self.sink.append_many([called, *actions])
        self.seq += 1 + len(actions)
        return actions

    def _base(self) -> dict[str, Any]:
        return {"attempt_id": self.attempt_id, "seq": self.seq}

    async def run(self, task: str, *, repo: str, repo_map: str = "") -> RunOutcome:
        cfg = self.config
        specs = tuple(self.tools.specs())
        system = (cfg.system_prompt or SYSTEM_PROMPT).replace("{workdir}", self.sandbox.workdir)
        first = FIRST_PROMPT.format(
            task=task, workdir=self.sandbox.workdir, repo_map=repo_map or "(empty)"
        )
        ctx = Context(
            system=system,
            first_user=first,
            window=self.model.context_window,
            condense_at=cfg.condense_at,
            keep_recent=cfg.keep_recent_turns,
            tools=specs,
        )
        await self._emit(
            AttemptStarted(
                **self._base(),
                task=task,
                repo=repo,
                model=self.model.name,
                sandbox=self.sandbox.kind,
                limits=cfg.limits.model_dump(),
                system_prompt=system,
                first_prompt=first,
            )
        )
        self._deadline = time.monotonic() + cfg.limits.max_wall_s
        try:
            while True:
                await self._step(ctx, specs)
        except Finished as e:
            return self._outcome(RunStatus.finished, e.reason)
        except LimitExceeded as e:
            return self._outcome(RunStatus.limit, e.reason)
        except Stuck as e:
            return self._outcome(RunStatus.stuck, e.reason)
        except Escalated as e:
            return self._outcome(RunStatus.escalated, e.reason)
        except ModelError as e:
            return self._outcome(RunStatus.failed, f"model error: {e}", e)

    def _outcome(
        self, status: RunStatus, reason: str, error: CorralError | None = None
    ) -> RunOutcome:
        return RunOutcome(status, reason, self.steps, round(self.cost_usd, 8), self.seq, error)

    def _remaining(self) -> float:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise LimitExceeded(f"wall time limit of {self.config.limits.max_wall_s:g}s reached")
        return left

    async def _step(self, ctx: Context, specs: tuple[ToolSpec, ...]) -> None:
        limits = self.config.limits
        if self.steps >= limits.max_steps:
            raise LimitExceeded(f"step limit of {limits.max_steps} reached")
        if ctx.needs_condensing():
            summary, through = ctx.condense()
            await self._emit(Condensed(**self._base(), summary=summary, through_seq=through))
        completion = await self._call_model(ctx, specs)
        self.steps += 1
        self.cost_usd += completion.cost_usd
        n_messages = len(ctx.messages())
        ctx.add_completion(self.seq, completion)
        actions = await self._emit_turn(completion, n_messages)
        if not completion.tool_calls:
            verdict = self.stuck.on_no_action()
            if verdict.stuck:
                raise Stuck(verdict.stuck)
            await self._nudge(ctx, verdict.nudge or "", "no_action")
        for call, action in zip(completion.tool_calls, actions, strict=True):
            await self._act(ctx, call, action)
        if limits.max_cost_usd is not None and self.cost_usd >= limits.max_cost_usd:
            raise LimitExceeded(f"cost limit of ${limits.max_cost_usd:g} reached")

    async def _call_model(self, ctx: Context, specs: tuple[ToolSpec, ...]) -> Completion:
        remaining = self._remaining()
        timeout = min(self.config.limits.model_timeout_s, remaining)
        try:
            async with asyncio.timeout(timeout):
                return await self.model.complete(ctx.messages(), specs)
        except TimeoutError:
            if timeout >= remaining:
                raise LimitExceeded(
                    f"wall time limit of {self.config.limits.max_wall_s:g}s reached"
                ) from None
            raise ModelError(f"model call timed out after {timeout:g}s") from None

    async def _act(self, ctx: Context, call: ToolCall, action: ActionTaken) -> None:
        remaining = self._remaining()
        try:
            # The sandbox enforces each command's own timeout; this only bounds the run.
            async with asyncio.timeout(remaining + 5.0):
                result = await self.tools.run(self.sandbox, call)
        except TimeoutError:
            raise LimitExceeded(
                f"wall time limit of {self.config.limits.max_wall_s:g}s reached"
            ) from None
        seq = self.seq
        await self._emit(
            Observed(
                **self._base(),
                call_id=action.call_id,
                tool=call.name,
                output=result.output,
                exit_code=result.exit_code,
                is_error=result.is_error,
                truncated=result.truncated,
                timed_out=result.timed_out,
            )
        )
        ctx.add_tool_result(seq, call.id, call.name, result.output)
        if result.finish_message is not None:
            raise Finished(result.finish_message)
        if result.escalation is not None:
            raise Escalated(result.escalation)
        verdict = self.stuck.on_step(call.name, call.arguments, result.output, result.is_error)
        if verdict.stuck:
            raise Stuck(verdict.stuck)
        if verdict.nudge:
            await self._nudge(ctx, verdict.nudge, "repeated_error")

    async def _nudge(self, ctx: Context, message: str, reason: str) -> None:
        seq = self.seq
        await self._emit(Nudged(**self._base(), message=message, reason=reason))
        ctx.add_user(seq, message)


def completions_of(events: Sequence[Event]) -> list[Completion]:
    """The recorded model turns of an attempt, in order (what a replay serves)."""
    return [e.completion for e in events if isinstance(e, ModelCalled)]


__all__ = ["AgentLoop", "RunEnded", "RunOutcome", "ToolRunner", "completions_of"]
