"""The reads and bulk moves a scheduler tick needs."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from corral.domain import TERMINAL, TaskState
from corral.store.fleet import FleetOps
from corral.store.retry import retry_public_ops
from corral.store.rows import CampaignRow, TaskRow, campaign_row, task_row
from corral.store.schema import campaigns, tasks

T = TaskState


@retry_public_ops
class SchedulingOps(FleetOps):
    """The reads and bulk moves a scheduler tick needs."""

    async def promote_pending(self, campaign_id: str | None = None) -> int:
        """pending → ready once every dependency succeeded; skipped or failed if one did not."""
        pending = await self.tasks(campaign_id=campaign_id, states=[T.pending])
        if not pending:
            return 0
        states: dict[tuple[str, str], TaskState] = {}
        for cid in {t.campaign_id for t in pending}:
            for t in await self.tasks(campaign_id=cid):
                states[(cid, t.key)] = t.state
        bad = {T.failed, T.rejected, T.cancelled, T.skipped}
        moved = 0
        for t in pending:
            dep_states = [states.get((t.campaign_id, d), T.failed) for d in t.depends_on]
            failed = [d for d, s in zip(t.depends_on, dep_states, strict=True) if s in bad]
            if failed:
                dst = T.skipped if t.spec.on_parent_failure == "skip" else T.failed
                note = {"reason": f"dependency {failed[0]} did not succeed"}
                moved += await self.move_task(t.id, [T.pending], dst, result=json.dumps(note))
            elif all(s is T.succeeded for s in dep_states):
                moved += await self.move_task(t.id, [T.pending], T.ready)
        return moved

    async def snapshot(
        self, now: datetime, campaign_id: str | None = None, per_campaign: int = 64
    ) -> tuple[list[TaskRow], dict[str, CampaignRow], dict[str, int], dict[str, int]]:
        """Ready tasks, running campaigns, running counts and attempts started per campaign."""
        camp_q = campaigns.select().where(campaigns.c.state == "running")
        if campaign_id:
            camp_q = camp_q.where(campaigns.c.id == campaign_id)
        async with self.engine.connect() as conn:
            camps = {r.id: campaign_row(r._mapping) for r in await conn.execute(camp_q)}
            if not camps:
                return [], {}, {}, {}
            ids = list(camps)
            # Only the best `per_campaign` ready tasks of each campaign: admission can never
            # take more than the free slots from one campaign.
            rank = (
                sa.func.row_number()
                .over(
                    partition_by=tasks.c.campaign_id,
                    order_by=(tasks.c.priority.desc(), tasks.c.created_at, tasks.c.key),
                )
                .label("rank")
            )
            inner = (
                sa.select(tasks, rank)
                .where(
                    tasks.c.campaign_id.in_(ids),
                    tasks.c.state == T.ready.value,
                    tasks.c.cancel_requested == sa.false(),
                    sa.or_(tasks.c.ready_at.is_(None), tasks.c.ready_at <= now),
                )
                .subquery()
            )
            ready_q = sa.select(inner).where(inner.c.rank <= per_campaign)
            ready = [task_row(r._mapping) for r in await conn.execute(ready_q)]
            agg = await conn.execute(
                sa.select(
                    tasks.c.campaign_id,
                    sa.func.sum(sa.case((tasks.c.state == T.running.value, 1), else_=0)),
                    sa.func.sum(tasks.c.attempts),
                )
                .where(tasks.c.campaign_id.in_(ids))
                .group_by(tasks.c.campaign_id)
            )
            running: dict[str, int] = {}
            served: dict[str, int] = {}
            for cid, n_running, n_served in agg:
                running[cid] = int(n_running or 0)
                served[cid] = int(n_served or 0)
        return ready, camps, running, served

    async def summary(self, campaign_id: str) -> dict[str, Any]:
        """Counts by state and money spent, for progress bars and `campaign status`."""
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(tasks.c.state, sa.func.count(), sa.func.sum(tasks.c.cost_usd))
                .where(tasks.c.campaign_id == campaign_id)
                .group_by(tasks.c.state)
            )
            counts: dict[str, int] = {}
            cost = 0.0
            for state, n, c in rows:
                counts[str(state)] = int(n)
                cost += float(c or 0)
        total = sum(counts.values())
        done = sum(n for s, n in counts.items() if TaskState(s) in TERMINAL)
        return {"counts": counts, "total": total, "done": done, "cost_usd": round(cost, 6)}
