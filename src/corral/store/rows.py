"""Plain records the store hands back (reads), separate from the frozen domain specs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from corral.domain import TaskSpec, TaskState


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
    from datetime import UTC

    if value is None or value.tzinfo is not None:
        return value
    return value.replace(tzinfo=UTC)


def task_row(m: Any) -> TaskRow:
    return TaskRow(
        id=m["id"],
        campaign_id=m["campaign_id"],
        key=m["key"],
        team=m["team"],
        kind=m["kind"],
        priority=m["priority"],
        spec=TaskSpec.model_validate_json(m["spec"]),
        depends_on=tuple(json.loads(m["depends_on"])),
        state=TaskState(m["state"]),
        attempts=m["attempts"],
        max_attempts=m["max_attempts"],
        ready_at=aware(m["ready_at"]),
        lease_token=m["lease_token"],
        cancel_requested=bool(m["cancel_requested"]),
        cost_usd=m["cost_usd"],
        result=json.loads(m["result"]) if m["result"] else None,
        created_at=aware(m["created_at"]) or m["created_at"],
        updated_at=aware(m["updated_at"]) or m["updated_at"],
    )


def campaign_row(m: Any) -> CampaignRow:
    return CampaignRow(
        id=m["id"],
        name=m["name"],
        team=m["team"],
        concurrency=m["concurrency"],
        weight=m["weight"],
        budget_usd=m["budget_usd"],
        deadline_at=aware(m["deadline_at"]),
        state=m["state"],
        spec=m["spec"],
        created_at=aware(m["created_at"]) or m["created_at"],
        ended_at=aware(m["ended_at"]),
    )


def review_row(m: Any) -> ReviewRow:
    return ReviewRow(
        id=m["id"],
        task_id=m["task_id"],
        attempt_id=m["attempt_id"],
        reason=m["reason"],
        diff=m["diff"],
        state=m["state"],
        comment=m["comment"],
        decided_by=m["decided_by"],
        created_at=aware(m["created_at"]) or m["created_at"],
        decided_at=aware(m["decided_at"]),
    )
