"""Which failures are worth another attempt, and how long to wait before it."""

from __future__ import annotations

import random

from pydantic import Field

from corral.agent.loop import RunOutcome
from corral.domain import (
    ConfigError,
    ErrorKind,
    Frozen,
    ModelError,
    RunStatus,
    SandboxError,
    ScriptExhausted,
    StoreError,
)
from corral.domain.errors import BudgetExceeded


class RetryPolicy(Frozen):
    """Exponential backoff with full jitter: wait uniform(0, min(cap, base * 2**n))."""

    base_s: float = Field(default=1.0, ge=0)
    cap_s: float = Field(default=60.0, ge=0)

    def delay(self, failed_attempts: int, rng: random.Random | None = None) -> float:
        ceiling = min(self.cap_s, self.base_s * 2 ** max(failed_attempts - 1, 0))
        return (rng or random).uniform(0, ceiling)


def classify(outcome: RunOutcome) -> ErrorKind | None:
    """None when the run finished; otherwise retryable (infra) or final (the agent's own)."""
    if outcome.status in (RunStatus.finished, RunStatus.escalated):
        return None  # escalated: a human decides, nothing to retry
    if outcome.status in (RunStatus.stuck, RunStatus.limit):
        return ErrorKind.final  # the agent gave up or ran out: another go repeats it
    err = outcome.error
    if isinstance(err, ScriptExhausted | ConfigError | BudgetExceeded):
        return ErrorKind.final
    if isinstance(err, ModelError | SandboxError | StoreError):
        return ErrorKind.retryable  # provider outage, sandbox crash, infra
    return ErrorKind.final
