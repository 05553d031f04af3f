"""The reads and bulk moves a scheduler tick needs."""

from __future__ import annotations

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
