"""The event log is the truth: every step of an attempt is one of these, appended in order.

Each event has a `type` discriminator so the union round-trips through JSON; the LLM
context is a projection of these events (see `corral.agent.context`).
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, Field, TypeAdapter

from corral.domain.messages import Completion, Frozen, Message


def utcnow() -> datetime:
    return datetime.now(UTC)


class RunStatus(StrEnum):
    """How one attempt ended (or that it has not yet)."""

    running = "running"
    finished = "finished"  # the agent called finish
    failed = "failed"  # an error ended the run
    stuck = "stuck"  # the loop detected no progress
    limit = "limit"  # a step, cost or time limit was reached
    escalated = "escalated"  # the agent asked a human to decide (it goes to review)


class _Event(Frozen):
    attempt_id: str
    seq: int = Field(ge=0)
    ts: AwareDatetime = Field(default_factory=utcnow)


class AttemptStarted(_Event):
    type: Literal["attempt_started"] = "attempt_started"
    task: str
    repo: str
    model: str
    sandbox: str
    limits: dict[str, Any] = Field(default_factory=dict)
    system_prompt: str = ""
    first_prompt: str = ""


class ModelCalled(_Event):
    """A model turn; the whole completion is kept so the attempt can be replayed."""

    type: Literal["model_called"] = "model_called"
    model: str
    completion: Completion
    input_messages: int = 0


class ActionTaken(_Event):
    type: Literal["action"] = "action"
    call_id: str
    tool: str
    args: dict[str, Any] = Field(default_factory=dict)


class Observed(_Event):
    type: Literal["observation"] = "observation"
    call_id: str
    tool: str
    output: str
    exit_code: int | None = None
    is_error: bool = False
    truncated: bool = False
    timed_out: bool = False


class Nudged(_Event):
    """A message the loop itself sent the model (a warning that it is repeating itself)."""

    type: Literal["nudge"] = "nudge"
    message: str
    reason: str


class Condensed(_Event):
    """Older turns summarised to fit the context window; the log still holds them all."""

    type: Literal["condensed"] = "condensed"
    summary: str
    through_seq: int
    kept_messages: tuple[Message, ...] = ()


class RouteDecided(_Event):
    """Which agent profile and models the gateway's routing rules chose for this attempt."""

    type: Literal["route_decided"] = "route_decided"
    rule: str
    profile: str
    models: tuple[str, ...]
    attempt: int
    reason: str = ""


class AttemptEnded(_Event):
    type: Literal["attempt_ended"] = "attempt_ended"
    status: RunStatus
    reason: str = ""
    steps: int = 0
    cost_usd: float = 0.0
    diff: str = ""


Event = Annotated[
    AttemptStarted
    | ModelCalled
    | ActionTaken
    | Observed
    | Nudged
    | Condensed
    | RouteDecided
    | AttemptEnded,
    Field(discriminator="type"),
]
EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)


def event_from_json(data: str | bytes) -> Event:
    return EVENT_ADAPTER.validate_json(data)


def event_to_json(event: Event) -> str:
    return EVENT_ADAPTER.dump_json(event).decode()
