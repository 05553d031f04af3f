"""Routing: which agent profile and which models (cheap first) a task gets, and when a
deployment is too unhealthy to try.

`route` is a pure function of the config and the task, and returns a `RouteDecision`
value the caller records as an event, so a run can say why it used the model it did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pydantic import Field

from corral.domain import ConfigError, Frozen
from corral.gateway.config import RouteMatch, RouteRule

__all__ = ["Health", "RouteDecision", "TaskInfo", "route"]


class TaskInfo(Frozen):
    """What routing may look at."""

    kind: str = ""
    labels: tuple[str, ...] = ()
    attempt: int = Field(default=1, ge=1)
    repo_files: int | None = Field(default=None, ge=0)


class RouteDecision(Frozen):
    """The outcome of routing one attempt: record it as an event, then pass it to
    `Gateway.model(...)`, which tries `models` in order."""

    rule: str
    profile: str
    models: tuple[str, ...]
    attempt: int
    reason: str


def _matches(match: RouteMatch, task: TaskInfo) -> bool:
    if match.kind is not None and match.kind != task.kind:
        return False
    if any(label not in task.labels for label in match.labels):
        return False
    if task.attempt < match.min_attempt:
        return False
    if match.max_attempt is not None and task.attempt > match.max_attempt:
        return False
    if match.min_repo_files is not None or match.max_repo_files is not None:
        if task.repo_files is None:
            return False
        if match.min_repo_files is not None and task.repo_files < match.min_repo_files:
            return False
        if match.max_repo_files is not None and task.repo_files > match.max_repo_files:
            return False
    return True


def route(rules: Sequence[RouteRule], task: TaskInfo) -> RouteDecision:
    """The first rule that matches wins. With `escalate`, attempt n starts at the n-th
    model (stronger on each retry) and keeps the cheaper ones as last-resort fallbacks."""
    for rule in rules:
        if not _matches(rule.match, task):
            continue
        models = rule.models
        start = min(task.attempt - 1, len(models) - 1) if rule.escalate else 0
        ordered = models[start:] + tuple(reversed(models[:start]))
        why = f"rule {rule.name!r} matched (kind={task.kind!r}, attempt {task.attempt})"
        if start:
            why += f"; escalated to {models[start]!r}"
        return RouteDecision(
            rule=rule.name,
            profile=rule.profile,
            models=ordered,
            attempt=task.attempt,
            reason=why,
        )
    raise ConfigError(
        f"no route matches task kind={task.kind!r} labels={list(task.labels)} "
        f"attempt={task.attempt}; add a catch-all rule (match: {{}})"
    )


@dataclass
class Health:
    """Consecutive failures of one deployment; enough of them cool it down."""

    failures: int = 0
    cooling_until: float = 0.0
    cooldowns: int = 0

    def failed(self, now: float, threshold: int, cooldown_s: float) -> None:
        self.failures += 1
        if self.failures >= threshold:
            self.cooling_until = now + cooldown_s
            self.failures = 0
            self.cooldowns += 1

    def succeeded(self) -> None:
        self.failures = 0

    def cooling(self, now: float) -> bool:
        return now < self.cooling_until
