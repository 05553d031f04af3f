"""`corral retry` with dependencies: refused while a dependency is still failed (naming
the task to retry first), pending until its parents succeed, and what was skipped (or
failed without running) because of it waits for it again."""

from __future__ import annotations

import pytest

from corral.domain import CampaignSpec, ConfigError, TaskSpec, TaskState
from corral.store import Store

T = TaskState


async def test_retry_respects_dependencies(store: Store) -> None:
    spec = CampaignSpec(name="c", tasks=(
        TaskSpec(id="a", repo="/r", instructions="x"),
        TaskSpec(id="b", repo="/r", instructions="x", depends_on=("a",)),  # skip on failure
        TaskSpec(id="c", repo="/r", instructions="x", depends_on=("b",),
                 on_parent_failure="fail"),
        TaskSpec(id="d", repo="/r", instructions="x"),
    ))  # fmt: skip
    cid = await store.create_campaign(spec)
    a, b, c, d = [await store.get_task(f"{cid}/{k}") for k in "abcd"]

    async def state(t: object) -> TaskState:
        return (await store.get_task(t.id)).state  # type: ignore[attr-defined]

    assert await store.move_task(a.id, [T.ready], T.running)
    assert await store.move_task(a.id, [T.running], T.failed, attempts=3)
    await store.promote_pending(cid)
    await store.promote_pending(cid)
    assert (await state(b), await state(c)) == (T.skipped, T.failed)

    with pytest.raises(ConfigError, match=r"^task c depends on b, which is skipped "
                                          r"\(because of a\): retry a first$"):  # fmt: skip
        await store.reopen_task(c.id)
    with pytest.raises(ConfigError, match="task d is ready: only a failed, cancelled"):
        await store.reopen_task(d.id)
    assert await state(c) is T.failed  # nothing changed

    assert await store.reopen_task(a.id) == ["a", "b", "c"]  # its skipped chain comes back
    assert (await state(a), await state(b), await state(c)) == (T.ready, T.pending, T.pending)
    row = await store.get_task(a.id)
    assert row.max_attempts == 4  # one more than it used (the larger of max and attempts+1)

    assert await store.move_task(a.id, [T.ready], T.running)
    assert await store.move_task(a.id, [T.running], T.succeeded)
    await store.promote_pending(cid)
    assert await state(b) is T.ready and await state(c) is T.pending


async def test_a_rejected_task_can_be_run_again(store: Store) -> None:
    cid = await store.create_campaign(
        CampaignSpec(name="r", tasks=(TaskSpec(id="a", repo="/r", instructions="x"),))
    )
    a = await store.get_task(f"{cid}/a")
    assert await store.move_task(a.id, [T.ready], T.running)
    assert await store.move_task(a.id, [T.running], T.needs_review)
    assert await store.move_task(a.id, [T.needs_review], T.rejected)
    assert await store.reopen_task(a.id) == ["a"]
    assert (await store.get_task(a.id)).state is T.ready
