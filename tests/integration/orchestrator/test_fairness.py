"""Admission order: weighted fairness between campaigns and teams, priority within one."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.domain import CampaignSpec, TaskSpec
from corral.orchestrator.executor import SimulatedExecutor
from corral.orchestrator.settings import WorkerSettings
from corral.orchestrator.worker import Worker
from corral.store import Store


def _spec(
    name: str, n: int, *, team: str = "t", priorities: list[int] | None = None
) -> CampaignSpec:
    return CampaignSpec(
        name=name,
        team=team,
        tasks=tuple(
            TaskSpec(id=f"{name}-{i:03d}", repo="/r", instructions="x", model="scripted:/x",
                     priority=(priorities[i] if priorities else 0))
            for i in range(n)
        ),
    )  # fmt: skip


async def _run_all(
    store: Store, cids: list[str], concurrency: int, work_s: float
) -> SimulatedExecutor:
    settings = WorkerSettings(concurrency=concurrency, poll_s=0.01)
    worker = Worker(store, settings)
    ex = SimulatedExecutor(store, work_s=work_s, on_done=worker.wake)
    worker.executor = ex
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop=stop))

    async def count(field: str) -> int:
        return sum([(await store.summary(c))[field] for c in cids])

    total = await count("total")
    while await count("done") < total:  # noqa: ASYNC110 - the store has no event to wait on
        await asyncio.sleep(0.02)
    stop.set()
    await run
    return ex


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str):
    s = await Store.open(None if request.param == "sqlite" else pg_url, home=tmp_path)
    yield s
    await s.close()


async def test_equal_weights_finish_together(store: Store) -> None:
    a = await store.create_campaign(_spec("a", 100))
    b = await store.create_campaign(_spec("b", 100))
    t0 = asyncio.get_running_loop().time()
    ex = await _run_all(store, [a, b], concurrency=8, work_s=0.01)
    ids = {t.id: t.campaign_id for c in (a, b) for t in await store.tasks(campaign_id=c)}
    end = {c: max(ts for tid, ts in ex.finished if ids.get(tid) == c) - t0 for c in (a, b)}
    assert abs(end[a] - end[b]) <= 0.1 * max(end.values()), end
    # interleaved all along: after the first half of completions, both are about half done
    first_half = [ids[tid] for tid, _ in sorted(ex.finished, key=lambda f: f[1])[:100]]
    assert 40 <= first_half.count(a) <= 60


async def test_weights_and_teams_share_slots(store: Store) -> None:
    heavy = await store.create_campaign(_spec("heavy", 60).model_copy(update={"weight": 3.0}))
    light = await store.create_campaign(_spec("light", 60))
    ex = await _run_all(store, [heavy, light], concurrency=4, work_s=0.005)
    ids = {t.id: t.campaign_id for c in (heavy, light) for t in await store.tasks(campaign_id=c)}
    first = [ids[tid] for tid, _ in sorted(ex.finished, key=lambda f: f[1])[:40]]
    assert first.count(heavy) >= 2 * first.count(light), first.count(heavy)


async def test_priority_order_within_a_campaign(store: Store) -> None:
    prios = [1, 5, 3, 5, 2, 0, 4]
    cid = await store.create_campaign(_spec("p", len(prios), priorities=prios))
    ex = await _run_all(store, [cid], concurrency=1, work_s=0.0)
    keys = {t.id: t.key for t in await store.tasks(campaign_id=cid)}
    order = [keys[tid] for tid, _ in sorted(ex.finished, key=lambda f: f[1])]
    assert order == ["p-001", "p-003", "p-006", "p-002", "p-004", "p-000", "p-005"]


async def test_campaign_cap_is_respected(store: Store) -> None:
    spec = _spec("capped", 30).model_copy(update={"concurrency": 2})
    cid = await store.create_campaign(spec)
    peak = 0

    async def watch() -> None:
        nonlocal peak
        while True:
            peak = max(peak, (await store.summary(cid))["counts"].get("running", 0))
            await asyncio.sleep(0.005)

    w = asyncio.create_task(watch())
    await _run_all(store, [cid], concurrency=10, work_s=0.02)
    w.cancel()
    assert 1 <= peak <= 2
