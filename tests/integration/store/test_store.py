"""The same store suite against real SQLite and real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest

from corral.domain import (
    ActionTaken,
    AttemptStarted,
    Completion,
    ConfigError,
    ModelCalled,
    Observed,
    RunStatus,
    StoreError,
    ToolCall,
    Usage,
    new_id,
)
from corral.store import Store, database_url

from .conftest import new_attempt


async def test_events_round_trip_in_order(store: Store) -> None:
    aid = await new_attempt(store)
    completion = Completion(
        content="look",
        tool_calls=(ToolCall(id="c1", name="bash", arguments={"command": "ls"}),),
        usage=Usage(input_tokens=5, output_tokens=2),
        cost_usd=0.001,
    )
    written = [
        AttemptStarted(attempt_id=aid, seq=0, task="fix it", repo="/r", model="m", sandbox="bwrap"),
        ModelCalled(attempt_id=aid, seq=1, model="m", completion=completion),
        ActionTaken(attempt_id=aid, seq=2, call_id="c1", tool="bash", args={"command": "ls"}),
        Observed(attempt_id=aid, seq=3, call_id="c1", tool="bash", output="a.py\n", exit_code=0),
    ]
    for e in reversed(written):  # stored order is by seq, not by arrival
        await store.append(e)
    assert await store.events(aid) == written


async def test_duplicate_seq_is_rejected(store: Store) -> None:
    aid = await new_attempt(store)
    e = ActionTaken(attempt_id=aid, seq=0, call_id="c", tool="bash")
    await store.append(e)
    with pytest.raises(StoreError, match="already exists"):
        await store.append(e)


async def test_attempt_record_and_prefix_lookup(store: Store) -> None:
    aid = await new_attempt(store)
    await store.end_attempt(
        aid, status=RunStatus.finished, reason="ok", steps=3, cost_usd=0.5, patch_path="/p"
    )
    rec = await store.get_attempt(aid)
    assert rec is not None and rec.status is RunStatus.finished and rec.steps == 3
    assert await store.resolve_attempt_id(aid[:-2]) == aid
    with pytest.raises(ConfigError, match="no attempt"):
        await store.resolve_attempt_id("att_doesnotexist")
    assert aid in [a.id for a in await store.list_attempts()]


def test_url_forms(tmp_path: Path) -> None:
    assert database_url(None, tmp_path).startswith("sqlite+aiosqlite:///")
    assert database_url("postgresql://u@h/db", tmp_path) == "postgresql+psycopg://u@h/db"
    with pytest.raises(ConfigError, match="unsupported store URL"):
        database_url("mysql://x", tmp_path)


async def test_unreachable_database_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="cannot open store"):
        await Store.open("postgresql://postgres@127.0.0.1:1/test", home=tmp_path)


async def test_side_effects_are_recorded_once(store: Store) -> None:
    key = f"deliver:{new_id('tsk')}"
    first = await store.record_side_effect(key, kind="patch", attempt_id="a1", result={"n": 1})
    second = await store.record_side_effect(key, kind="patch", attempt_id="a2", result={"n": 2})
    assert first == second == {"n": 1}
    assert (await store.count_side_effects(key)) == {key: 1}


async def test_leases_fence_out_a_late_holder_and_transitions_are_enforced(store: Store) -> None:
    from datetime import timedelta

    from corral.domain import CampaignSpec, ErrorKind, TaskSpec, TaskState
    from corral.domain.events import utcnow

    spec = CampaignSpec(
        name="fence", tasks=(TaskSpec(id="t", repo="/r", instructions="x", model="scripted:/x"),)
    )
    cid = await store.create_campaign(spec)
    (task,) = await store.tasks(campaign_id=cid)
    old = await store.claim(task, owner="w1", ttl_s=0.01, model="m")
    assert old is not None
    assert await store.claim(task, owner="w2", ttl_s=10, model="m") is None  # no second live
    # the lease runs out; the reaper (here by hand) hands the task back for a retry
    expired = await store.expired_attempts(utcnow() + timedelta(seconds=1))
    lease, row = next((lease, t) for lease, t in expired if lease.attempt_id == old.attempt_id)
    assert await store.finish_attempt(
        lease, status=RunStatus.failed, reason="lost", error_kind=ErrorKind.retryable, steps=0,
        cost_usd=0.0, patch_path=None, task_state=TaskState.ready,
    )  # fmt: skip
    new = await store.claim(await store.get_task(row.id), owner="w2", ttl_s=10, model="m")
    assert new is not None and new.token == old.token + 1
    # the old holder wakes up: its heartbeat and its late result are both refused
    assert await store.heartbeat(old, 10) == (False, False)
    assert not await store.finish_attempt(
        old, status=RunStatus.finished, reason="late", error_kind=None, steps=1,
        cost_usd=0.0, patch_path=None, task_state=TaskState.succeeded,
    )  # fmt: skip
    assert (await store.get_task(row.id)).state is TaskState.running
    with pytest.raises(ValueError, match="cannot move from succeeded"):
        await store.move_task(row.id, [TaskState.succeeded], TaskState.ready)
