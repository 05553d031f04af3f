"""Plain records the store hands back (reads), separate from the frozen domain specs."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from corral.domain import TaskSpec, TaskState

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")


@dataclass(frozen=True)
class CampaignRow:
    id: str
    name: str
    team: str
    concurrency: int | None
    weight: float
    budget_usd: float | None
    deadline_at: datetime | None
    state: str
    spec: str
    created_at: datetime
    ended_at: datetime | None


@dataclass(frozen=True)
class TaskRow:
    id: str
    campaign_id: str
    key: str
    team: str
    kind: str
    priority: int
    spec: TaskSpec
    depends_on: tuple[str, ...]
    state: TaskState
    attempts: int
    max_attempts: int
    ready_at: datetime | None
    lease_token: int
    cancel_requested: bool
    cost_usd: float
    result: dict[str, Any] | None
    created_at: datetime
    updated_at: datetime


@dataclass(frozen=True)
class Lease:
    """The right to run one attempt of one task; every write under it carries the token."""

    task_id: str
    attempt_id: str
    token: int
    number: int
    owner: str


@dataclass(frozen=True)
class ReviewRow:
    id: str
    task_id: str
    attempt_id: str
    reason: str
    diff: str
    state: str
    comment: str | None
    decided_by: str | None
    created_at: datetime
    decided_at: datetime | None


def aware(value: datetime | None) -> datetime | None:
    """SQLite hands back naive datetimes; everything stored is UTC."""
    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def from_row(cls: type[R], m: Any, **parsed: Any) -> R:
    """A record from a result row: every field by name, datetimes made UTC-aware; the
    fields that need parsing (JSON, enums) come in `parsed`."""
    values = {f.name: m[f.name] for f in dataclasses.fields(cls) if f.name not in parsed}
    values = {k: aware(v) if isinstance(v, datetime) else v for k, v in values.items()}
    return cls(**values, **parsed)


def task_row(m: Any) -> TaskRow:
    return from_row(
        TaskRow,
        m,
        spec=TaskSpec.model_validate_json(m["spec"]),
        depends_on=tuple(json.loads(m["depends_on"])),
        state=TaskState(m["state"]),
        cancel_requested=bool(m["cancel_requested"]),
        result=json.loads(m["result"]) if m["result"] else None,
    )


def campaign_row(m: Any) -> CampaignRow:
    return from_row(CampaignRow, m)


def review_row(m: Any) -> ReviewRow:
    return from_row(ReviewRow, m)
