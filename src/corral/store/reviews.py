"""Named operations for the human review queue and for idempotent side effects."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from corral.domain import ConfigError, TaskState
from corral.domain.events import utcnow
from corral.store.fleet import FleetOps
from corral.store.retry import retry_public_ops
from corral.store.rows import ReviewRow, review_row
from corral.store.schema import reviews, side_effects, tasks

T = TaskState


@retry_public_ops
class ReviewOps(FleetOps):
    # -- reviews -----------------------------------------------------------------------

    async def reviews(self, state: str | None = "pending") -> list[ReviewRow]:
        q = reviews.select().order_by(reviews.c.created_at)
        if state:
            q = q.where(reviews.c.state == state)
        async with self.engine.connect() as conn:
            return [review_row(r._mapping) for r in await conn.execute(q)]

    async def get_review(self, ref: str) -> ReviewRow:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(reviews.select().where(reviews.c.id.startswith(ref)).limit(2))
            ).all()
        if len(rows) != 1:
            raise ConfigError(f"no review {ref!r}" if not rows else f"review {ref!r} is ambiguous")
        return review_row(rows[0]._mapping)

    async def decide_review(
        self, review_id: str, *, approve: bool, comment: str | None, by: str
    ) -> bool:
        def go(conn: sa.Connection) -> bool:
            now = utcnow()
            res = conn.execute(
                reviews.update()
                .where(reviews.c.id == review_id, reviews.c.state == "pending")
                .values(
                    state="approved" if approve else "rejected", comment=comment,
                    decided_by=by, decided_at=now,
                )
            )  # fmt: skip
            if not res.rowcount:
                return False
            task_id = conn.scalar(sa.select(reviews.c.task_id).where(reviews.c.id == review_id))
            conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.state == T.needs_review.value)
                .values(state=(T.approved if approve else T.rejected).value, updated_at=now)
            )
            return True

        decided: bool = await self._tx("decide review", go)
        return decided

    # -- side effects ------------------------------------------------------------------

    async def side_effect(self, key: str) -> dict[str, Any] | None:
        # Through the writer's connection: every attempt reads this once, and a read on
        # the async engine cost ~0.7 ms of the event loop's CPU (pool checkout, a thread
        # hop, the reset on return); the writer's transaction only hands its result out
        # once committed.
        query = sa.select(side_effects.c.result).where(side_effects.c.key == key)
        raw = await self.writer.run(lambda conn: conn.scalar(query))
        return json.loads(raw) if raw else None

    async def record_side_effect(
        self, key: str, *, kind: str, attempt_id: str | None, result: dict[str, Any]
    ) -> dict[str, Any]:
        """Record a done side effect once; a second recorder gets the first's result."""

        def go(conn: sa.Connection) -> None:
            conn.execute(
                side_effects.insert().values(
                    key=key, kind=kind, attempt_id=attempt_id, result=json.dumps(result),
                    created_at=utcnow(),
                )
            )  # fmt: skip

        try:
            await self._tx("record side effect", go)
        except IntegrityError:
            existing = await self.side_effect(key)
            return existing or result
        return result

    async def count_side_effects(self, prefix: str = "") -> dict[str, int]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(side_effects.c.key).where(side_effects.c.key.startswith(prefix))
            )
            keys = [str(r[0]) for r in rows]
        return {k: keys.count(k) for k in keys}
