"""Many leases renewed in one write, each still fenced by its own token (SQLite, Postgres)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from corral.domain import CampaignSpec, ErrorKind, RunStatus, TaskSpec, TaskState
from corral.domain.events import utcnow
from corral.store import Lease, Store
from corral.store.rows import aware
from corral.store.schema import attempts


async def _leases(store: Store, n: int, ttl_s: float = 10) -> list[Lease]:
    tasks = tuple(
        TaskSpec(id=f"t{i}", repo="/r", instructions="x", model="scripted:/x") for i in range(n)
    )
    cid = await store.create_campaign(CampaignSpec(name="beat", tasks=tasks))
    rows = await store.tasks(campaign_id=cid)
    leases = await store.claim_many([(t, "m") for t in rows], owner="w1", ttl_s=ttl_s)
    assert len(leases) == n
    return sorted(leases, key=lambda lease: lease.task_id)


def _writes(store: Store) -> list[str]:
    """The SQL statements the writer runs (to count renewals)."""
    seen: list[str] = []

    def before(_c: Any, _cur: Any, statement: str, *_rest: Any) -> None:
        seen.append(statement)

    sa.event.listen(store.writer.engine, "before_cursor_execute", before)
    return seen


async def test_one_update_renews_every_held_lease_and_answers_each(store: Store) -> None:
    live, cancelled, lost = await _leases(store, 3, ttl_s=0.01)
    # `lost` expires and the reaper hands its task to another worker (a new token).
    expired = await store.expired_attempts(utcnow() + timedelta(seconds=1))
    old = next(lease for lease, _ in expired if lease.attempt_id == lost.attempt_id)
    assert await store.finish_attempt(
        old, status=RunStatus.failed, reason="lost", error_kind=ErrorKind.retryable, steps=0,
        cost_usd=0.0, patch_path=None, task_state=TaskState.ready,
    )  # fmt: skip
    task = await store.get_task(lost.task_id)
    assert task is not None
    taken = await store.claim(task, owner="w2", ttl_s=10, model="m")
    assert taken is not None and taken.token == lost.token + 1
    assert await store.request_cancel([cancelled.task_id]) == 1

    statements = _writes(store)
    answers = await store.heartbeat_many([live, cancelled, lost], ttl_s=60)
    assert answers == {
        live.attempt_id: (True, False),
        cancelled.attempt_id: (True, True),
        lost.attempt_id: (False, False),  # the late holder notices it lost the lease
    }
    assert sum(s.lstrip().upper().startswith("UPDATE") for s in statements) == 1
    with store.writer.engine.connect() as conn:
        expires = dict(conn.execute(sa.select(attempts.c.id, attempts.c.lease_expires_at)).all())
    soon = utcnow() + timedelta(seconds=30)
    for lease in (live, cancelled):
        assert aware(expires[lease.attempt_id]) > soon  # renewed for 60 s
    assert aware(expires[lost.attempt_id]) < soon  # the lost lease was not renewed
    assert await store.heartbeat(live, 60) == (True, False)  # the one-lease form agrees


async def test_many_leases_beat_in_chunks(store: Store) -> None:
    leases = await _leases(store, 3)
    many = [leases[i % 3] for i in range(1_200)]  # repeats are fine: still one answer each
    answers = await store.heartbeat_many(many, ttl_s=60)
    assert answers == {lease.attempt_id: (True, False) for lease in leases}
    assert await store.heartbeat_many([], ttl_s=60) == {}
