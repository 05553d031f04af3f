"""Load generation for `corral bench` and `bench/gateway_*.py`: many agents, one door.

`run_agents` drives any async call (the gateway, or LiteLLM's Router for comparison)
from N concurrent agents for a fixed window and counts what happened; `ratelimit_report`
and `budget_run` turn that into the numbers the benchmarks print.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from corral.domain import Completion, Message
from corral.domain.errors import BudgetExceeded
from corral.gateway.budget import GLOBAL, BudgetScope, from_nano
from corral.gateway.gateway import Gateway

__all__ = ["LoadResult", "budget_run", "prompt", "ratelimit_report", "run_agents"]

Call = Callable[[int, float], Awaitable[Completion]]  # (agent, deadline) -> completion


def prompt(agent: int, step: int, chars: int = 400) -> list[Message]:
    """A small agent-like conversation, different per agent and step."""
    return [
        Message(role="system", content="You fix bugs in Python repositories."),
        Message(role="user", content=f"agent {agent} step {step}: " + "x" * chars),
    ]


@dataclass
class LoadResult:
    agents: int
    duration_s: float
    completed: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    failed_agents: set[int] = field(default_factory=set)


async def run_agents(
    call: Call, agents: int, duration: float, *, grace: float = 30.0
) -> LoadResult:
    """Every agent calls back-to-back until the window closes; a call still waiting for
    capacity then is cancelled (unfinished, not failed). An agent whose call raised is a
    failed task. Each call's deadline is the window's end plus `grace`."""
    result = LoadResult(agents, duration)
    started = time.monotonic()
    end = started + duration

    async def agent(i: int) -> None:
        step = 0
        while time.monotonic() < end:
            try:
                completion = await call(i, end + grace)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                name = type(exc).__name__
                result.errors[name] = result.errors.get(name, 0) + 1
                result.failed_agents.add(i)
                return
            step += 1
            result.completed += 1
            result.input_tokens += completion.usage.input_tokens
            result.output_tokens += completion.usage.output_tokens

    tasks = [asyncio.create_task(agent(i)) for i in range(agents)]
    await asyncio.wait(tasks, timeout=max(0.0, end - time.monotonic()))
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    result.duration_s = time.monotonic() - started
    return result


def ratelimit_report(
    result: LoadResult, *, rpm: int, tpm: int | None, requests: int, rate_limited: int
) -> dict[str, Any]:
    """Utilization = achieved / allowed on the binding limit, where a provider whose
    buckets start full allows one minute's worth plus the refill over the window."""
    window = result.duration_s
    allowed_requests = rpm + rpm / 60.0 * window
    utilization = result.completed / allowed_requests
    if tpm:
        allowed_tokens = tpm + tpm / 60.0 * window
        tokens = result.input_tokens + result.output_tokens
        utilization = max(utilization, tokens / allowed_tokens)
    return {
        "agents": result.agents,
        "duration_s": round(window, 3),
        "requests": requests,
        "completed": result.completed,
        "rate_limited": rate_limited,
        "rate_limited_pct": round(100.0 * rate_limited / requests, 3) if requests else 0.0,
        "failed_tasks": len(result.failed_agents),
        "errors": dict(result.errors),
        "utilization": round(utilization, 4),
    }


async def budget_run(
    gateway: Gateway, deployment: str, *, agents: int, budget_usd: float, max_calls: int = 100
) -> dict[str, Any]:
    """N agents call until the global budget refuses them; reports spend and overshoot."""
    await gateway.ledger.set_limit(GLOBAL, budget_usd)
    rejected = 0

    async def agent(i: int) -> None:
        nonlocal rejected
        for step in range(max_calls):
            try:
                await gateway.complete(
                    deployment, prompt(i, step), scope=BudgetScope(task=f"t{i}", attempt=f"a{i}")
                )
            except BudgetExceeded:
                rejected += 1
                return

    await asyncio.gather(*(agent(i) for i in range(agents)))
    state = await gateway.ledger.state(GLOBAL)
    limit_nano = state.limit_nano or 0
    return {
        "agents": agents,
        "budget_usd": budget_usd,
        "spent_usd": round(state.spent_usd, 9),
        "overshoot_usd": from_nano(max(0, state.spent_nano - limit_nano)),
        "rejected_calls": rejected,
        "completed_calls": gateway.stats.completed,
        "reserved_usd_left": state.reserved_usd,
    }
