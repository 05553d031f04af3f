"""A worker's attempts renew their leases together: one store write per beat, and each
attempt still learns its own answer (a lost lease is noticed by the attempt that lost it)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest
from tests.integration.orchestrator.conftest import campaign_file, make_repo, script

from corral.domain import CampaignSpec, ErrorKind, RunStatus, TaskSpec, TaskState
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.leases import LeaseKeeper
from corral.orchestrator.settings import WorkerSettings
from corral.store import Lease, Store


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[Store]:
    s = await Store.open(home=tmp_path / ".corral")
    yield s
    await s.close()


class Beats(list[list[str]]):
    """The attempt ids of each heartbeat write, in order."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = asyncio.Event()

    async def until(self, n: int) -> None:
        """Wait until `n` beats have been answered."""
        while len(self) < n:
            self.changed.clear()
            await asyncio.wait_for(self.changed.wait(), 5)


def _record_beats(store: Store, monkeypatch: pytest.MonkeyPatch) -> Beats:
    """Every heartbeat write; a lone per-attempt heartbeat fails the test."""
    beats = Beats()
    many = store.heartbeat_many

    async def spy(leases: Sequence[Lease], ttl_s: float) -> dict[str, tuple[bool, bool]]:
        answers = await many(leases, ttl_s)
        beats.append([lease.attempt_id for lease in leases])
        beats.changed.set()
        return answers

    async def lone(lease: Lease, ttl_s: float) -> tuple[bool, bool]:
        raise AssertionError("an attempt renewed its lease on its own")

    monkeypatch.setattr(store, "heartbeat_many", spy)
    monkeypatch.setattr(store, "heartbeat", lone)
    return beats


async def test_one_write_per_beat_and_each_attempt_gets_its_answer(
    store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    tasks = tuple(
        TaskSpec(id=f"t{i}", repo="/r", instructions="x", model="scripted:/x") for i in range(3)
    )
    cid = await store.create_campaign(CampaignSpec(name="k", tasks=tasks))
    rows = await store.tasks(campaign_id=cid)
    a, b, c = await store.claim_many([(t, "m") for t in rows], owner="w", ttl_s=10)
    beats = _record_beats(store, monkeypatch)
    answers: dict[str, list[tuple[bool, bool]]] = {x.attempt_id: [] for x in (a, b, c)}
    keeper = LeaseKeeper(store, heartbeat_s=0.05, lease_ttl_s=10)
    for lease in (a, b, c):
        keeper.keep(
            lease, lambda held, cancel, i=lease.attempt_id: answers[i].append((held, cancel))
        )
    await beats.until(2)
    # b's attempt row is closed behind its back (as the reaper does when it thinks b dead)
    assert await store.finish_attempt(
        b, status=RunStatus.failed, reason="reaped", error_kind=ErrorKind.retryable, steps=0,
        cost_usd=0.0, patch_path=None, task_state=TaskState.ready,
    )  # fmt: skip
    await beats.until(len(beats) + 2)
    keeper.release(a)
    await beats.until(len(beats) + 2)
    await keeper.close()

    assert all(sorted(beat) == sorted([a.attempt_id, b.attempt_id, c.attempt_id])
               for beat in beats[:4])  # fmt: skip
    assert all(a.attempt_id not in beat for beat in beats[-1:])
    assert set(answers[c.attempt_id]) == {(True, False)}
    assert answers[b.attempt_id][0] == (True, False) and answers[b.attempt_id][-1] == (False, False)
    n_a = len(answers[a.attempt_id])
    assert n_a >= 2 and n_a < len(beats)  # no answers after release


async def test_a_keeper_with_nothing_to_keep_stops_beating(store: Store) -> None:
    keeper = LeaseKeeper(store, heartbeat_s=0.02, lease_ttl_s=10)
    lease = Lease("task", "att", 1, 1, "w")
    keeper.keep(lease, lambda held, cancel: None)
    keeper.release(lease)
    assert keeper._task is not None
    await asyncio.wait_for(keeper._task, 2)  # ends by itself after its next sleep
    await keeper.close()


async def test_a_fleet_renews_all_its_running_attempts_in_one_write(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    beats = _record_beats(store, monkeypatch)
    slow = script(tmp_path / "slow.json", ["sleep 1.2"])
    tasks = [
        {"id": f"t{i}", "repo": str(make_repo(tmp_path / f"r{i}")), "instructions": "x",
         "model": f"scripted:{slow}", "sandbox": "local"}
        for i in range(3)
    ]  # fmt: skip
    body = {"name": "beats", "unsafe_local": True, "tasks": tasks}
    cid = await create_from_file(store, campaign_file(tmp_path / "c.yaml", body))
    settings = WorkerSettings(
        home=tmp_path / ".corral", poll_s=0.05, heartbeat_s=0.1, lease_ttl_s=5, concurrency=3
    )
    status = await run_campaign(store, cid, settings)
    assert {t["state"] for t in status["tasks"]} == {"succeeded"}
    assert max(len(beat) for beat in beats) == 3  # the three attempts beat together
    assert len(beats) < 3 * 1.2 / 0.1  # not one write per attempt per beat
