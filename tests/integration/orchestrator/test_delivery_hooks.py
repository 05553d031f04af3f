"""Workflow deliveries: one that refuses (the change no longer fits) sends the task to
review, once, with the reason; a slow one keeps its lease, so no other attempt starts."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from tests.integration.orchestrator.conftest import campaign_file, script

from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.delivery import DeliveryRefused
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


async def _run(tmp_path: Path, kind: str, **settings: Any) -> tuple[Store, dict[str, Any]]:
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
    return store, await run_campaign(store, cid, WorkerSettings(**(base | settings)))


async def test_a_slow_delivery_keeps_its_lease(tmp_path: Path) -> None:
    register_delivery("test-slow", _slow)
    store, status = await _run(tmp_path, "test-slow", lease_ttl_s=0.6)
    try:
        (task,) = status["tasks"]
        assert task["state"] == "succeeded" and task["attempts"] == 1, status
        assert len(calls) == 1
    finally:
        await store.close()


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
