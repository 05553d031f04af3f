"""Named operations for the fleet: campaigns, tasks, leases, reviews, side effects.

Every state change is one conditional UPDATE (`WHERE state = ... AND lease_token = ...`),
so two workers can never both claim a task and a late write from a lost lease changes
nothing.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from corral.domain import (
    TERMINAL,
    CampaignSpec,
    ConfigError,
    ErrorKind,
    RunStatus,
    TaskState,
    can_move,
    new_id,
)
from corral.domain.events import utcnow
from corral.domain.tasks import dag_problem
from corral.store.retry import retry_public_ops, with_retry
from corral.store.rows import (
    CampaignRow,
    Lease,
    TaskRow,
    aware,
    campaign_row,
    task_row,
)
from corral.store.schema import attempts, campaigns, reviews, tasks
from corral.store.writer import StoreWriter

T = TaskState

# The hot finish path, built once with bound parameters so it is compiled once.
_FINISH_ATTEMPT = (
    attempts.update()
    .where(
        attempts.c.id == sa.bindparam("b_id"),
        attempts.c.fencing_token == sa.bindparam("b_token"),
        attempts.c.status == sa.bindparam("b_running"),
    )
    .values(
        status=sa.bindparam("status"), reason=sa.bindparam("reason"),
        error_kind=sa.bindparam("error_kind"), steps=sa.bindparam("steps"),
        cost_usd=sa.bindparam("cost_usd"), patch_path=sa.bindparam("patch_path"),
        ended_at=sa.bindparam("ended_at"),
    )
)  # fmt: skip
_FINISH_TASK = (
    tasks.update()
    .where(tasks.c.id == sa.bindparam("b_id"), tasks.c.lease_token == sa.bindparam("b_token"))
    .values(
        state=sa.bindparam("state"), ready_at=sa.bindparam("ready_at"),
        updated_at=sa.bindparam("updated_at"), cost_usd=tasks.c.cost_usd + sa.bindparam("b_cost"),
        cancel_requested=sa.bindparam("cancel_requested"), result=sa.bindparam("result"),
    )
)  # fmt: skip
UNFINISHED = [s.value for s in TaskState if s not in TERMINAL]
_HEARTBEAT_CHUNK = 500  # leases per statement: well under any bound-parameter limit


@retry_public_ops
class FleetOps:
    """Mixed into Store; `engine` is its async engine."""

    engine: AsyncEngine
    writer: StoreWriter  # group commit for the hot writes (claim, heartbeat, finish)

    async def _tx(self, what: str, fn: Any) -> Any:
        """Every write goes through the one writer thread: on SQLite, writers in one process
        never queue for the file lock, and bursts share a commit."""
        return await self.writer.run(fn)

    # -- campaigns -------------------------------------------------------------------------

    async def create_campaign(self, spec: CampaignSpec) -> str:
        problem = dag_problem(spec.tasks)  # a cycle would leave its tasks pending forever
        if problem is not None:
            raise ConfigError(f"campaign {spec.name}: {problem[1]}")
        cid = new_id("cmp")
        now = utcnow()
        deadline = now + timedelta(seconds=spec.timeout_s) if spec.timeout_s else None

        def go(conn: sa.Connection) -> None:
            conn.execute(
                campaigns.insert().values(
                    id=cid, name=spec.name, team=spec.team, concurrency=spec.concurrency,
                    weight=spec.weight, budget_usd=spec.budget_usd, deadline_at=deadline,
                    state="running", spec=_campaign_settings(spec), created_at=now,
                )
            )  # fmt: skip
            rows = [
                {
                    "id": new_id("tsk"), "campaign_id": cid, "key": t.id, "team": spec.team,
                    "kind": t.kind, "priority": t.priority, "spec": t.model_dump_json(),
                    "depends_on": json.dumps(list(t.depends_on)), "unique_key": t.unique_key,
                    "state": (T.pending if t.depends_on else T.ready).value,
                    "max_attempts": t.max_attempts,
                    "created_at": now, "updated_at": now,
                }
                for t in spec.tasks
            ]  # fmt: skip
            conn.execute(tasks.insert(), rows)

        try:
            await self._tx("create campaign", go)
        except IntegrityError as e:
            raise ConfigError(
                f"campaign {spec.name!r}: a task's unique_key is already used by another task"
            ) from e
        return cid

    async def get_campaign(self, campaign_id: str) -> CampaignRow | None:
        async with self.engine.connect() as conn:
            row = (
                await conn.execute(campaigns.select().where(campaigns.c.id == campaign_id))
            ).first()
        return campaign_row(row._mapping) if row else None

    async def resolve_campaign_id(self, prefix: str) -> str:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(campaigns.c.id).where(campaigns.c.id.startswith(prefix)).limit(2)
                )
            ).all()
        if len(rows) != 1:
            raise ConfigError(
                f"no campaign with id {prefix!r}"
                if not rows
                else f"campaign id {prefix!r} is ambiguous"
            )
        return str(rows[0][0])

    async def list_campaigns(self, limit: int = 50) -> list[CampaignRow]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                campaigns.select().order_by(campaigns.c.created_at.desc()).limit(limit)
            )
            return [campaign_row(r._mapping) for r in rows]

    async def set_campaign_state(self, campaign_id: str, state: str) -> None:
        def go(conn: sa.Connection) -> None:
            conn.execute(
                campaigns.update()
                .where(campaigns.c.id == campaign_id)
                .values(state=state, ended_at=utcnow() if state != "running" else None)
            )

        await self._tx("set campaign state", go)

    # -- tasks -------------------------------------------------------------------------

    async def tasks(
        self, *, campaign_id: str | None = None, states: Sequence[TaskState] | None = None
    ) -> list[TaskRow]:
        q = tasks.select().order_by(tasks.c.created_at, tasks.c.key)
        if campaign_id:
            q = q.where(tasks.c.campaign_id == campaign_id)
        if states:
            q = q.where(tasks.c.state.in_([s.value for s in states]))

        async def go() -> list[TaskRow]:
            async with self.engine.connect() as conn:
                return [task_row(r._mapping) for r in await conn.execute(q)]

        result: list[TaskRow] = await with_retry(go, "list tasks")
        return result

    async def get_task(self, ref: str) -> TaskRow:
        """By id, unique id prefix, or `CAMPAIGN_ID/KEY`."""
        q = tasks.select()
        if "/" in ref:
            cid, key = ref.split("/", 1)
            q = q.where(tasks.c.campaign_id.startswith(cid), tasks.c.key == key)
        else:
            q = q.where(tasks.c.id.startswith(ref))
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q.limit(2))).all()
        if len(rows) != 1:
            raise ConfigError(f"no task {ref!r}" if not rows else f"task {ref!r} is ambiguous")
        return task_row(rows[0]._mapping)

    async def move_task(
        self, task_id: str, src: Sequence[TaskState], dst: TaskState, **values: Any
    ) -> bool:
        """Change a task's state only if it is still in one of `src`; a move the state
        machine forbids (domain.tasks.ALLOWED) is a bug and raises at once."""
        bad = [x for x in src if not can_move(x, dst)]
        if bad:
            raise ValueError(f"a task cannot move from {bad[0].value} to {dst.value}")

        def go(conn: sa.Connection) -> bool:
            res = conn.execute(
                tasks.update()
                .where(tasks.c.id == task_id, tasks.c.state.in_([s.value for s in src]))
                .values(state=dst.value, updated_at=utcnow(), **values)
            )
            return bool(res.rowcount)

        moved: bool = await self._tx("move task", go)
        return moved

    async def request_cancel(self, task_ids: Sequence[str]) -> int:
        """Unstarted tasks are cancelled now; running ones are flagged for their worker."""

        def go(conn: sa.Connection) -> int:
            now = utcnow()
            idle = [T.pending.value, T.ready.value, T.needs_review.value, T.approved.value]
            a = conn.execute(
                tasks.update()
                .where(tasks.c.id.in_(task_ids), tasks.c.state.in_(idle))
                .values(state=T.cancelled.value, updated_at=now)
            )
            b = conn.execute(
                tasks.update()
                .where(tasks.c.id.in_(task_ids), tasks.c.state == T.running.value)
                .values(cancel_requested=True, updated_at=now)
            )
            conn.execute(
                reviews.update()
                .where(reviews.c.task_id.in_(task_ids), reviews.c.state == "pending")
                .values(state="cancelled", decided_at=now)
            )
            return int(a.rowcount or 0) + int(b.rowcount or 0)

        n: int = await self._tx("cancel", go)
        return n

    # -- leases ------------------------------------------------------------------------

    async def claim(self, task: TaskRow, *, owner: str, ttl_s: float, model: str) -> Lease | None:
        """Atomically move a ready task to running and open its attempt; None if lost."""
        leases = await self.claim_many([(task, model)], owner=owner, ttl_s=ttl_s)
        return leases[0] if leases else None

    async def claim_many(
        self, picks: Sequence[tuple[TaskRow, str]], *, owner: str, ttl_s: float
    ) -> list[Lease]:
        """Claim several tasks in one transaction; the ones another worker won are skipped."""

        def go(conn: sa.Connection) -> list[Lease]:
            # One UPDATE ... RETURNING for the whole batch (SQLite >= 3.35 and Postgres),
            # then one bulk insert of the attempts: a claim costs two statements, not 2N.
            now = utcnow()
            wanted = {t.id: (t, model) for t, model in picks}
            won_rows = conn.execute(
                tasks.update()
                .where(
                    tasks.c.id.in_(list(wanted)),
                    tasks.c.state == T.ready.value,
                    tasks.c.cancel_requested == sa.false(),
                )
                .values(
                    state=T.running.value, attempts=tasks.c.attempts + 1,
                    lease_token=tasks.c.lease_token + 1, updated_at=now,
                )
                .returning(tasks.c.id, tasks.c.lease_token, tasks.c.attempts)
            ).all()  # fmt: skip
            won: list[Lease] = []
            rows: list[dict[str, Any]] = []
            for task_id, token, number in won_rows:
                task, model = wanted[task_id]
                lease = Lease(task_id, new_id("att"), token, number, owner)
                won.append(lease)
                rows.append(
                    {
                        "id": lease.attempt_id, "task_id": task_id, "number": number,
                        "task": task.spec.instructions, "repo": task.spec.repo, "model": model,
                        "sandbox": task.spec.sandbox, "status": RunStatus.running.value,
                        "lease_owner": owner, "fencing_token": token, "heartbeat_at": now,
                        "lease_expires_at": now + timedelta(seconds=ttl_s), "created_at": now,
                        "reason": "", "steps": 0, "cost_usd": 0.0,
                    }
                )  # fmt: skip
            if rows:
                conn.execute(attempts.insert(), rows)
            return won

        leases: list[Lease] = await self.writer.run(go)
        return leases

    async def heartbeat(self, lease: Lease, ttl_s: float) -> tuple[bool, bool]:
        """Renew the lease. Returns (still held, cancel requested)."""
        return (await self.heartbeat_many([lease], ttl_s))[lease.attempt_id]

    async def heartbeat_many(
        self, leases: Sequence[Lease], ttl_s: float
    ) -> dict[str, tuple[bool, bool]]:
        """Renew many leases in one UPDATE (each fenced by its token): per attempt id,
        (still held, cancel requested). A worker's attempts beat together, not one by one."""

        def go(conn: sa.Connection) -> dict[str, tuple[bool, bool]]:
            now = utcnow()
            held: set[str] = set()
            cancelled: set[tuple[str, int]] = set()
            for i in range(0, len(leases), _HEARTBEAT_CHUNK):
                chunk = leases[i : i + _HEARTBEAT_CHUNK]
                renew = (
                    attempts.update()
                    .where(
                        sa.tuple_(attempts.c.id, attempts.c.fencing_token).in_(
                            [(lease.attempt_id, lease.token) for lease in chunk]
                        ),
                        attempts.c.status == RunStatus.running.value,
                    )
                    .values(heartbeat_at=now, lease_expires_at=now + timedelta(seconds=ttl_s))
                    .returning(attempts.c.id)
                )
                held.update(conn.execute(renew).scalars())
                flagged = sa.select(tasks.c.id, tasks.c.lease_token).where(
                    tasks.c.id.in_([lease.task_id for lease in chunk]),
                    tasks.c.cancel_requested == sa.true(),
                )
                cancelled.update((row.id, row.lease_token) for row in conn.execute(flagged))
            return {
                lease.attempt_id: (
                    lease.attempt_id in held,
                    (lease.task_id, lease.token) in cancelled,
                )
                for lease in leases
            }

        if not leases:
            return {}
        beats: dict[str, tuple[bool, bool]] = await self.writer.run(go)
        return beats

    async def finish_attempt(
        self,
        lease: Lease,
        *,
        status: RunStatus,
        reason: str,
        error_kind: ErrorKind | None,
        steps: int,
        cost_usd: float,
        patch_path: str | None,
        task_state: TaskState,
        ready_at: datetime | None = None,
        result: dict[str, Any] | None = None,
        review_diff: str | None = None,
    ) -> bool:
        """Close the attempt and move its task, both fenced by the lease token."""

        def go(conn: sa.Connection) -> bool:
            now = utcnow()
            res = conn.execute(
                _FINISH_ATTEMPT,
                {
                    "b_id": lease.attempt_id, "b_token": lease.token,
                    "b_running": RunStatus.running.value, "status": status.value,
                    "reason": reason, "error_kind": error_kind.value if error_kind else None,
                    "steps": steps, "cost_usd": cost_usd, "patch_path": patch_path,
                    "ended_at": now,
                },
            )  # fmt: skip
            if not res.rowcount:
                return False
            conn.execute(
                _FINISH_TASK,
                {
                    "b_id": lease.task_id, "b_token": lease.token, "state": task_state.value,
                    "ready_at": ready_at, "updated_at": now, "b_cost": cost_usd,
                    "cancel_requested": False,
                    "result": json.dumps(result) if result is not None else None,
                },
            )  # fmt: skip
            if review_diff is not None:
                conn.execute(
                    reviews.insert().values(
                        id=new_id("rev"), task_id=lease.task_id, attempt_id=lease.attempt_id,
                        reason=reason, diff=review_diff, state="pending", created_at=now,
                    )
                )  # fmt: skip
            return True

        done: bool = await self.writer.run(go)
        return done

    async def expired_attempts(
        self, now: datetime, dead_owners: Sequence[str] = ()
    ) -> list[tuple[Lease, TaskRow]]:
        """Running attempts whose lease ran out, or whose owner is known to be dead."""
        cond = attempts.c.lease_expires_at < now
        if dead_owners:
            cond = sa.or_(cond, attempts.c.lease_owner.in_(list(dead_owners)))
        q = (
            sa.select(attempts, tasks.c.id.label("tid"))
            .join(tasks, tasks.c.id == attempts.c.task_id)
            .where(attempts.c.status == RunStatus.running.value, cond)
        )
        async with self.engine.connect() as conn:
            rows = (await conn.execute(q)).all()
            out = []
            for r in rows:
                m = r._mapping
                task = (await conn.execute(tasks.select().where(tasks.c.id == m["tid"]))).first()
                if task is None:
                    continue
                lease = Lease(m["tid"], m["id"], m["fencing_token"], m["number"], m["lease_owner"])
                out.append((lease, task_row(task._mapping)))
        return out

    async def running_owners(self) -> list[str]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                sa.select(attempts.c.lease_owner)
                .where(attempts.c.status == RunStatus.running.value)
                .distinct()
            )
            return [str(r[0]) for r in rows if r[0]]

    async def attempts_of(self, task_id: str) -> list[dict[str, Any]]:
        async with self.engine.connect() as conn:
            rows = await conn.execute(
                attempts.select().where(attempts.c.task_id == task_id).order_by(attempts.c.number)
            )
            return [
                {k: (aware(v) if isinstance(v, datetime) else v) for k, v in r._mapping.items()}
                for r in rows
            ]


def _campaign_settings(spec: CampaignSpec) -> str:
    """The campaign's own settings, without its tasks: those live in their own rows, and
    a campaign row is read on every scheduling tick, so it must not grow with the fleet."""
    return spec.model_dump_json(exclude={"tasks"})
