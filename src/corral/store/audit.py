"""The audit log's store operations: append and read. Nothing else, on purpose.

Append-only is a property of this API: there is no update and no delete, so code that
holds a store cannot rewrite what was recorded. Rows name the attempt (and the task,
looked up from the attempt when the writer does not know it), who acted, what kind of
record it is and a JSON detail.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from corral.domain.events import utcnow
from corral.store.retry import with_retry
from corral.store.rows import aware
from corral.store.schema import attempts, audit

AuditKind = Literal["action", "egress", "approval", "policy"]
KINDS: tuple[str, ...] = ("action", "egress", "approval", "policy")


@dataclass(frozen=True)
class AuditEntry:
    kind: AuditKind
    who: str
    detail: dict[str, Any]
    attempt_id: str | None = None
    task_id: str | None = None
    at: datetime = field(default_factory=utcnow)
    id: int | None = None

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "at": self.at.isoformat(), "attempt_id": self.attempt_id,
                "task_id": self.task_id, "who": self.who, "kind": self.kind,
                "detail": self.detail}  # fmt: skip


class AuditStore:
    """Audit operations over a store's engine (any object with an async `engine`)."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self.engine: AsyncEngine = store.engine

    async def append(self, entries: Sequence[AuditEntry]) -> None:
        """Insert entries in one transaction; a missing task id is taken from the attempt."""
        if not entries:
            return
        for e in entries:
            if e.kind not in KINDS:
                raise ValueError(f"unknown audit kind {e.kind!r}")

        def go(conn: sa.Connection) -> None:
            conn.execute(audit.insert(), [_row(conn, e) for e in entries])

        writer = getattr(self.store, "writer", None)
        if writer is not None:  # the store's one writer thread, like every other write
            await writer.run(go)
            return

        async def fallback() -> None:
            async with self.engine.begin() as conn:
                await conn.run_sync(go)

        await with_retry(fallback, "audit append")

    async def entries(
        self,
        *,
        since: datetime | None = None,
        attempt_id: str | None = None,
        kind: str | None = None,
        page: int = 1000,
    ) -> AsyncIterator[AuditEntry]:
        """Entries in the order they were written, fetched a page at a time."""
        last = 0
        if since is not None and since.tzinfo is not None:
            since = since.astimezone(UTC)
        while True:
            q = audit.select().where(audit.c.id > last)
            if since is not None:
                q = q.where(audit.c.at >= since)
            if attempt_id is not None:
                q = q.where(audit.c.attempt_id == attempt_id)
            if kind is not None:
                q = q.where(audit.c.kind == kind)
            q = q.order_by(audit.c.id).limit(page)

            async def fetch(q: Any = q) -> list[Any]:
                async with self.engine.connect() as conn:
                    return list((await conn.execute(q)).all())

            rows = await with_retry(fetch, "audit read")
            for r in rows:
                m = r._mapping
                yield AuditEntry(
                    kind=m["kind"], who=m["who"], detail=json.loads(m["detail"]),
                    attempt_id=m["attempt_id"], task_id=m["task_id"], at=aware(m["at"]) or utcnow(),
                    id=m["id"],
                )  # fmt: skip
                last = m["id"]
            if len(rows) < page:
                return


def _row(conn: sa.Connection, e: AuditEntry) -> dict[str, Any]:
    task_id = e.task_id
    if task_id is None and e.attempt_id is not None:
        task_id = conn.scalar(sa.select(attempts.c.task_id).where(attempts.c.id == e.attempt_id))
    detail = json.dumps(e.detail, default=str, sort_keys=True)
    return {"at": e.at, "attempt_id": e.attempt_id, "task_id": task_id, "who": e.who[:200],
            "kind": e.kind, "detail": detail}  # fmt: skip
