"""`corral retry` of a task with dependencies: refused while a parent is failed, waiting
(pending) while a parent has yet to succeed, ready once every parent has."""

from __future__ import annotations

from corral.domain import CampaignSpec, TaskSpec, TaskState
from corral.store import Store

T = TaskState


async def test_retry_respects_dependencies(store: Store) -> None:
    spec = CampaignSpec(name="c", tasks=(
        TaskSpec(id="a", repo="/r", instructions="x"),
        TaskSpec(id="b", repo="/r", instructions="x", depends_on=("a",),
                 on_parent_failure="fail"),
    ))  # fmt: skip
    cid = await store.create_campaign(spec)
    a, b = [await store.get_task(f"{cid}/{k}") for k in ("a", "b")]
    assert await store.move_task(a.id, [T.ready], T.failed)
    assert await store.promote_pending(cid) == 1  # b fails with its parent
    assert (await store.get_task(b.id)).state is T.failed

    why = await store.reopen_task(b.id)
    assert why == "task b depends on a, which is failed: retry it first"
    assert (await store.get_task(b.id)).state is T.failed  # nothing changed

    assert await store.reopen_task(a.id) is None
    assert (await store.get_task(a.id)).state is T.ready
    assert await store.reopen_task(b.id) is None
    assert (await store.get_task(b.id)).state is T.pending  # waits for a
    assert await store.reopen_task(b.id) == "task b is pending, not failed or cancelled"

    assert await store.move_task(a.id, [T.ready], T.running)
    assert await store.move_task(a.id, [T.running], T.succeeded)
    assert await store.promote_pending(cid) == 1
    assert (await store.get_task(b.id)).state is T.ready
