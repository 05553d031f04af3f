"""A campaign's dependencies: pending tasks promoted when their parents succeed (or
ended when one cannot), and `corral retry` reopening a task with what depended on it."""

from __future__ import annotations

import json
from typing import Any

import sqlalchemy as sa

from corral.domain import ConfigError, TaskState, can_move
from corral.domain.events import utcnow
from corral.store.fleet import FleetOps
from corral.store.retry import retry_public_ops
from corral.store.rows import TaskRow
from corral.store.schema import tasks

T = TaskState

# A dependency in one of these will never succeed; only these can be retried.
_BAD = frozenset({T.failed, T.rejected, T.cancelled, T.skipped})


def _never_ran(t: TaskRow) -> bool:
    """Skipped, or failed without an attempt: ended by a dependency, not by itself."""
    return t.state is T.skipped or (t.state is T.failed and t.attempts == 0)


def _root_cause(key: str, rows: dict[str, TaskRow]) -> str:
    """Up from a task that never ran, to the dependency that ended it."""
    seen = set()
    while _never_ran(rows[key]) and key not in seen:
        seen.add(key)
        bad = [d for d in rows[key].depends_on if d in rows and rows[d].state in _BAD]
        if not bad:
            break
        key = bad[0]
    return key


@retry_public_ops
class DependencyOps(FleetOps):
    """Moves that follow from `depends_on`."""

    async def promote_pending(self, campaign_id: str | None = None) -> int:
        """pending → ready once every dependency succeeded; skipped or failed if one did not."""
        pending = await self.tasks(campaign_id=campaign_id, states=[T.pending])
        if not pending:
            return 0
        states: dict[tuple[str, str], TaskState] = {}
        for cid in {t.campaign_id for t in pending}:
            for t in await self.tasks(campaign_id=cid):
                states[(cid, t.key)] = t.state
        moved = 0
        for t in pending:
            dep_states = [states.get((t.campaign_id, d), T.failed) for d in t.depends_on]
            failed = [d for d, s in zip(t.depends_on, dep_states, strict=True) if s in _BAD]
            if failed:
                dst = T.skipped if t.spec.on_parent_failure == "skip" else T.failed
                note = {"reason": f"dependency {failed[0]} did not succeed"}
                moved += await self.move_task(t.id, [T.pending], dst, result=json.dumps(note))
            elif all(s is T.succeeded for s in dep_states):
                moved += await self.move_task(t.id, [T.pending], T.ready)
        return moved

    async def reopen_task(self, task_id: str) -> list[str]:
        """`corral retry`: a failed, cancelled, rejected or skipped task gets one more
        attempt - at once, or (pending) once its dependencies succeed - and the tasks
        skipped because of it wait again too. Returns the keys reopened; ConfigError (one
        line, naming the task to retry first) when a dependency is still failed."""
        task = await self.get_task(task_id)
        if task.state not in _BAD:
            raise ConfigError(
                f"task {task.key} is {task.state.value}: only a failed, cancelled, rejected "
                "or skipped task can be retried"
            )
        rows = {t.key: t for t in await self.tasks(campaign_id=task.campaign_id)}
        blocked = [d for d in task.depends_on if d in rows and rows[d].state in _BAD]
        if blocked:
            root = _root_cause(blocked[0], rows)
            why = f" (because of {root})" if root != blocked[0] else ""
            raise ConfigError(
                f"task {task.key} depends on {blocked[0]}, which is "
                f"{rows[blocked[0]].state.value}{why}: retry {root} first"
            )
        waits = any(rows[d].state is not T.succeeded for d in task.depends_on if d in rows)
        moves = [(task.id, T.pending if waits else T.ready, task.state)]
        opened, queue = {task.key}, [task.key]
        while queue:  # what did not run because of it waits for it again
            key = queue.pop()
            for t in rows.values():
                if key in t.depends_on and t.key not in opened and _never_ran(t):
                    opened.add(t.key)
                    queue.append(t.key)
                    moves.append((t.id, T.pending, t.state))
        for _tid, dst, src in moves:  # the state machine allows every one (a bug if not)
            if not can_move(src, dst):
                raise ValueError(f"a task cannot move from {src.value} to {dst.value}")

        def go(conn: sa.Connection) -> bool:
            for tid, dst, src in moves:
                values: dict[str, Any] = {
                    "state": dst.value, "ready_at": None, "cancel_requested": False,
                    "updated_at": utcnow(),
                }  # fmt: skip
                if tid == task.id:  # the larger of the two (max() of two is SQLite's alone)
                    values["max_attempts"] = sa.case(
                        (tasks.c.max_attempts > tasks.c.attempts, tasks.c.max_attempts),
                        else_=tasks.c.attempts + 1,
                    )
                res = conn.execute(
                    tasks.update().where(tasks.c.id == tid, tasks.c.state == src.value)
                    .values(**values)
                )  # fmt: skip
                if tid == task.id and not res.rowcount:
                    return False  # it changed meanwhile: nothing is reopened
            return True

        if not await self._tx("retry task", go):
            raise ConfigError(f"task {task.key} changed state meanwhile: try again")
        return [key for key in rows if key in opened]
