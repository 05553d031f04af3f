"""Campaigns and tasks: what a user asks for, and the states a task moves through.

pending ─► ready ─► running ─► succeeded
   │         ▲        │ ├───► failed        (final error, or out of attempts)
   │         └────────┘ ├───► needs_review ─► approved ─► succeeded
   │        (retry)     │                  └► rejected
   └─► skipped          └───► cancelled     (any unfinished state can be cancelled)
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Literal

from pydantic import Field, field_validator

from corral.domain.messages import Frozen


class TaskState(StrEnum):
    pending = "pending"  # waiting for its dependencies
    ready = "ready"  # may be admitted (possibly after a retry backoff)
    running = "running"
    needs_review = "needs_review"
    approved = "approved"
    succeeded = "succeeded"
    failed = "failed"
    rejected = "rejected"
    cancelled = "cancelled"
    skipped = "skipped"  # a dependency failed and the policy says skip


TERMINAL = frozenset(
    {
        TaskState.succeeded,
        TaskState.failed,
        TaskState.rejected,
        TaskState.cancelled,
        TaskState.skipped,
    }
)

_T = TaskState
ALLOWED: dict[TaskState, frozenset[TaskState]] = {
    _T.pending: frozenset({_T.ready, _T.failed, _T.skipped, _T.cancelled}),
    _T.ready: frozenset({_T.running, _T.cancelled, _T.failed}),
    _T.running: frozenset({_T.succeeded, _T.failed, _T.needs_review, _T.ready, _T.cancelled}),
    _T.needs_review: frozenset({_T.approved, _T.rejected, _T.cancelled}),
    _T.approved: frozenset({_T.succeeded, _T.failed, _T.ready}),  # ready: resume it
    _T.succeeded: frozenset(),
    # `corral retry` re-opens the last four (pending: it waits for its dependencies).
    _T.failed: frozenset({_T.ready, _T.pending}),
    _T.rejected: frozenset({_T.ready, _T.pending}),
    _T.cancelled: frozenset({_T.ready, _T.pending}),
    _T.skipped: frozenset({_T.pending}),
}


def can_move(src: TaskState, dst: TaskState) -> bool:
    return dst in ALLOWED[src]


class ErrorKind(StrEnum):
    """Why an attempt ended badly decides whether the task is retried."""

    retryable = "retryable"  # sandbox crash, lost lease, zombie, provider outage, infra
    final = "final"  # the agent gave up, a policy violation, budget exhausted


class PolicyFile(Frozen):
    """A campaign's or task's policy file as read when the campaign was created. Its text
    is what applies: editing the file later changes nothing, and a resumed task runs
    under the same rules."""

    path: str
    sha256: str
    text: str


class TaskSpec(Frozen):
    """One task as written in a campaign file."""

    id: str = Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.\-]+$")
    repo: str
    instructions: str = Field(min_length=1)
    model: str | None = None
    kind: str = "default"
    labels: tuple[str, ...] = ()
    priority: int = 0
    depends_on: tuple[str, ...] = ()
    max_attempts: int = Field(default=3, ge=1, le=50)
    max_steps: int = Field(default=50, ge=1)
    timeout_s: float = Field(default=1800, gt=0)
    command_timeout_s: float = Field(default=120, gt=0)
    sandbox: Literal["bwrap", "local", "docker"] = "bwrap"
    profile: str = "default"
    require_approval: bool = False
    on_parent_failure: Literal["fail", "skip"] = "skip"
    unique_key: str | None = None
    policy: str | None = None  # a policy file (relative to the campaign file): adds rules
    policy_files: tuple[PolicyFile, ...] = ()  # filled in by corral: campaign's, then task's


class CampaignSpec(Frozen):
    """A campaign file: many tasks, run together under shared caps."""

    name: str = Field(min_length=1)
    team: str = "default"
    concurrency: int | None = Field(default=None, ge=1)
    weight: float = Field(default=1.0, gt=0)
    budget_usd: float | None = Field(default=None, ge=0)
    timeout_s: float | None = Field(default=None, gt=0)
    model: str | None = None  # default for tasks that name none
    unsafe_local: bool = False
    policy: str | None = None  # a policy file for every task (adds rules; see policy/layers)
    tasks: tuple[TaskSpec, ...] = Field(min_length=1)

    @field_validator("tasks")
    @classmethod
    def _unique_ids(cls, tasks: tuple[TaskSpec, ...]) -> tuple[TaskSpec, ...]:
        seen: set[str] = set()
        for t in tasks:
            if t.id in seen:
                raise ValueError(f"task id {t.id!r} is used twice")
            seen.add(t.id)
        return tasks


def dag_problem(tasks: Sequence[TaskSpec]) -> tuple[int, str] | None:
    """The first unknown dependency (its task's index, a message) or cycle (-1, a
    message), or None. Iterative: a refactor's chain of parts can be thousands long."""
    ids = {t.id for t in tasks}
    for i, t in enumerate(tasks):
        for dep in t.depends_on:
            if dep not in ids:
                return i, f"tasks[{i}].depends_on: unknown task id {dep!r}"
    deps = {t.id: t.depends_on for t in tasks}
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    for root in deps:
        if root in state:
            continue
        state[root] = 1
        trail, stack = [root], [iter(deps[root])]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                state[trail.pop()] = 2
                stack.pop()
            elif state.get(nxt) == 1:
                cycle = [*trail[trail.index(nxt) :], nxt]
                return -1, f"depends_on forms a cycle: {' -> '.join(cycle)}"
            elif nxt not in state:
                state[nxt] = 1
                trail.append(nxt)
                stack.append(iter(deps[nxt]))
    return None
