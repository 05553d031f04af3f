"""A worker keeps sandboxes booted, so an attempt's start is a claim, and closes them."""

from __future__ import annotations

import os
from pathlib import Path

from tests.integration.orchestrator.conftest import campaign_file, make_repo, script

from corral.orchestrator.campaigns import create_from_file
from corral.orchestrator.settings import WorkerSettings
from corral.orchestrator.worker import Worker
from corral.sandbox.procs import dir_owner, owner_token
from corral.store import Store


def _workspaces() -> set[str]:
    """Our workspace roots in /tmp (not the spawn room or the snapshots' dir, which live
    as long as we do)."""
    return {
        p.name
        for p in Path("/tmp").iterdir()
        if p.name.startswith("corral-")
        and not p.name.startswith(("corral-spawn-", "corral-baselines-"))
        and dir_owner(p) == owner_token()
    }


async def _run(tmp_path: Path, warm: int) -> Worker:
    store = await Store.open(home=tmp_path / ".corral")
    work = script(tmp_path / "w.json", ["sleep 0.3; echo done > out.txt"])
    tasks = [{"id": f"t{i}", "repo": str(make_repo(tmp_path / f"r{i}", i)), "instructions": "x",
              "model": f"scripted:{work}", "sandbox": "bwrap"} for i in range(3)]  # fmt: skip
    cid = await create_from_file(
        store, campaign_file(tmp_path / "c.yaml", {"name": "w", "tasks": tasks})
    )
    settings = WorkerSettings(home=tmp_path / ".corral", concurrency=1, poll_s=0.05,
                              heartbeat_s=0.2, warm_sandboxes=warm)  # fmt: skip
    worker = Worker(store, settings, campaign_id=cid)
    try:
        await worker.run(until_done=True)
        counts = (await store.summary(cid))["counts"]
    finally:
        await store.close()
    assert counts == {"succeeded": 3}
    return worker


async def test_attempts_after_the_first_claim_booted_sandboxes(tmp_path: Path) -> None:
    before = _workspaces()
    worker = await _run(tmp_path, warm=2)
    assert worker.warm is not None and worker.warm.claims >= 1
    # the unclaimed sandboxes went with the worker
    assert _workspaces() - before == set(), os.listdir("/tmp")


async def test_no_pools_when_turned_off(tmp_path: Path) -> None:
    worker = await _run(tmp_path, warm=0)
    assert worker.warm is None
