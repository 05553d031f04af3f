"""Workflow deliveries: one that refuses (the change no longer fits) sends the task to
review, once, with the reason; a slow one keeps its lease, so no other attempt starts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from tests.integration.orchestrator.conftest import campaign_file, script

from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.delivery import DeliveryRefused, deliver
from corral.orchestrator.hooks import register_delivery
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store, TaskRow

KIND = "test-refuse"
calls: list[str] = []


async def _refuse(store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path) -> Any:
    calls.append(attempt_id)
    raise DeliveryRefused("the base moved under this change")


async def _slow(store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path) -> Any:
    calls.append(attempt_id)
    await asyncio.sleep(2.0)  # several lease lifetimes
    return {"slow": True}


async def _hang(store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path) -> Any:
    calls.append(attempt_id)
    await asyncio.sleep(3600)


stopped: list[str] = []
delivering: list[asyncio.Event] = []  # the running test's, made on its loop


def _waiting(clean_up_s: float) -> Any:
    """A delivery that waits to be stopped, then takes `clean_up_s` to stop (a push to
    kill and wait for)."""

    async def waits(store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path) -> Any:
        calls.append(attempt_id)
        for event in delivering:
            event.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            stopped.append(attempt_id)
            await asyncio.sleep(clean_up_s)
            raise
        return {"late": True}

    return waits


async def _cancel_once_delivering(store: Store) -> None:
    await asyncio.wait_for(delivering[0].wait(), 60)
    (task,) = await store.tasks()
    assert await store.request_cancel([task.id]) == 1


async def _run(
    tmp_path: Path, kind: str, during: Any = None, **settings: Any
) -> tuple[Store, dict[str, Any]]:
    calls.clear()
    repo = tmp_path / "r"
    repo.mkdir()
    (repo / "f.txt").write_text("a\n")
    s = script(tmp_path / "s.json", ["echo b > f.txt"])
    tasks = [{"id": "t", "repo": str(repo), "instructions": "x", "model": f"scripted:{s}",
              "sandbox": "bwrap", "kind": kind}]  # fmt: skip
    store = await Store.open(home=tmp_path / ".corral")
    cid = await create_from_file(store, campaign_file(tmp_path / "c.yaml",
                                                      {"name": "a", "tasks": tasks}))  # fmt: skip
    base = {"home": tmp_path / ".corral", "poll_s": 0.05, "heartbeat_s": 0.2}
    run = asyncio.ensure_future(run_campaign(store, cid, WorkerSettings(**(base | settings))))
    if during is not None:
        await during(store)
    return store, await run


async def test_a_slow_delivery_keeps_its_lease(tmp_path: Path) -> None:
    register_delivery("test-slow", _slow)
    store, status = await _run(tmp_path, "test-slow", lease_ttl_s=0.6)
    try:
        (task,) = status["tasks"]
        assert task["state"] == "succeeded" and task["attempts"] == 1, status
        assert len(calls) == 1
    finally:
        await store.close()


async def test_a_slow_delivery_is_no_zombie(tmp_path: Path) -> None:
    """Nothing happens in the agent's log while it delivers: that is not a hung agent."""
    register_delivery("test-slow", _slow)
    store, status = await _run(tmp_path, "test-slow", zombie_after_s=0.5)
    try:
        (task,) = status["tasks"]
        assert task["state"] == "succeeded" and task["attempts"] == 1, status
    finally:
        await store.close()


async def test_a_cancel_during_the_delivery_stops_it(tmp_path: Path) -> None:
    """It was dropped: the run had ended, so no heartbeat looked at the task any more, and
    the delivery (a push, a PR) went on and the task ended succeeded."""
    register_delivery("test-waits", _waiting(0))
    stopped.clear()
    delivering[:] = [asyncio.Event()]
    store, status = await asyncio.wait_for(
        _run(tmp_path, "test-waits", _cancel_once_delivering), 60
    )
    try:
        (task,) = status["tasks"]
        assert task["state"] == "cancelled" and task["attempts"] == 1, status
        assert stopped == calls  # the delivery itself was interrupted
        row = await store.get_task(task["id"])
        assert row.result["reason"] == "cancelled on request during its delivery"
        (attempt,) = await store.attempts_of(task["id"])
        assert attempt["steps"] > 0 and attempt["patch_path"]  # the run's own work is kept
        patch = await asyncio.to_thread(Path(attempt["patch_path"]).read_text)
        assert "+b" in patch
    finally:
        await store.close()


async def test_a_cancel_wins_over_a_delivery_time_limit_that_ends_meanwhile(
    tmp_path: Path,
) -> None:
    """The delivery took a moment to stop and its time limit passed meanwhile: the task
    was retried (ready again, the cancel request cleared) instead of cancelled."""
    register_delivery("test-slow-stop", _waiting(1.5))
    delivering[:] = [asyncio.Event()]
    store, status = await asyncio.wait_for(
        _run(tmp_path, "test-slow-stop", _cancel_once_delivering, delivery_timeout_s=1.0), 60
    )
    try:
        (task,) = status["tasks"]
        assert task["state"] == "cancelled" and task["attempts"] == 1, status
    finally:
        await store.close()


async def _opens_a_pr(store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path) -> Any:
    calls.append(attempt_id)
    return {"pr": "https://forge.example/pr/1"}


def _answered_late(delay: float) -> Any:
    """`Store.record_side_effect`, written at once but answered `delay` seconds late (a
    slow commit), telling the running test when it is written."""
    real = Store.record_side_effect

    async def late(self: Store, key: str, **kw: Any) -> dict[str, Any]:
        done = await real(self, key, **kw)
        for event in delivering:
            event.set()
        await asyncio.sleep(delay)
        return done

    return late


async def test_a_hung_delivery_is_given_up_and_the_attempt_retried(tmp_path: Path) -> None:
    register_delivery("test-hang", _hang)
    store, status = await asyncio.wait_for(
        _run(tmp_path, "test-hang", lease_ttl_s=0.6, delivery_timeout_s=0.5), 60
    )
    try:
        (task,) = status["tasks"]
        assert task["state"] == "failed" and task["attempts"] == 3, status  # retried, then out
        assert len(calls) == 3
        assert "the delivery took over 0.5s: given up" in task["reason"]
    finally:
        await store.close()


async def test_a_refused_delivery_waits_in_review_with_its_reason(tmp_path: Path) -> None:
    register_delivery(KIND, _refuse)
    store, status = await _run(tmp_path, KIND)
    try:
        (task,) = status["tasks"]
        assert task["state"] == "needs_review", status
        assert len(calls) == 1  # not retried
        (review,) = await store.reviews()
        assert "+b" in review.diff
        row = await store.get_task(task["id"])
        assert "not delivered: the base moved under this change" in row.result["reason"]
    finally:
        await store.close()


@pytest.mark.parametrize(
    ("how", "settings", "reason"),
    [
        ("cancel", {}, "delivered before the cancel reached it"),
        ("time limit", {"delivery_timeout_s": 0.3}, "delivered, though past its 0.3s time limit"),
    ],
)
async def test_a_delivery_stopped_while_its_record_is_written_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, settings: Any, reason: str
) -> None:
    """The PR was open and its record being written when the stop came. A cancel lost
    the record (the task said cancelled, nothing said where its PR was); a time limit gave
    the attempt up (on a last attempt the task ended failed, its PR open and recorded)."""
    register_delivery("test-pr", _opens_a_pr)
    delivering[:] = [asyncio.Event()]
    monkeypatch.setattr(Store, "record_side_effect", _answered_late(1.5))
    during = _cancel_once_delivering if how == "cancel" else None
    store, status = await asyncio.wait_for(_run(tmp_path, "test-pr", during, **settings), 60)
    try:
        (task,) = status["tasks"]
        assert task["state"] == "succeeded" and task["attempts"] == 1, status
        row = await store.get_task(task["id"])
        assert row.result == {"reason": reason, "delivery": {"pr": "https://forge.example/pr/1"}}
        assert await store.side_effect(f"deliver:{task['id']}") == row.result["delivery"]
        assert len(calls) == 1
    finally:
        await store.close()


async def test_a_cancelled_delivery_still_records_what_it_did(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cancelled after its PR was opened but before the record was written: the record
    is written anyway (a retry then finds the PR instead of opening another)."""
    register_delivery("test-pr", _opens_a_pr)
    real = Store.record_side_effect
    recording = asyncio.Event()

    async def slow_record(self: Store, key: str, **kw: Any) -> dict[str, Any]:
        recording.set()
        await asyncio.sleep(0.5)
        return await real(self, key, **kw)

    monkeypatch.setattr(Store, "record_side_effect", slow_record)
    store = await Store.open(home=tmp_path / ".corral")
    try:
        model = f"scripted:{script(tmp_path / 's.json', [])}"
        tasks = [{"id": "t", "repo": str(tmp_path), "instructions": "x", "model": model,
                  "kind": "test-pr"}]  # fmt: skip
        await create_from_file(
            store, campaign_file(tmp_path / "c.yaml", {"name": "a", "tasks": tasks})
        )
        (task,) = await store.tasks()
        tid = task.id
        job = asyncio.ensure_future(
            deliver(store, task, attempt_id="a-1", diff="", home=tmp_path / ".corral")
        )
        await asyncio.wait_for(recording.wait(), 10)
        job.cancel()
        with pytest.raises(asyncio.CancelledError):
            await job
        for _ in range(100):
            if await store.side_effect(f"deliver:{tid}") is not None:
                break
            await asyncio.sleep(0.05)
        assert await store.side_effect(f"deliver:{tid}") == {"pr": "https://forge.example/pr/1"}
    finally:
        await store.close()
