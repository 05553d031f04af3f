"""PostgreSQL restarted under a running worker: the worker rides it out and finishes."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import yaml
from tests.integration.orchestrator.conftest import make_repo, script

from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store


def _pg(action: str, *extra: str) -> None:
    version = sorted(p.name for p in Path("/etc/postgresql").iterdir())[-1]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action, *extra],
        capture_output=True, timeout=300,
    )  # fmt: skip


def _restart_postgres() -> None:
    """Drop every connection as a crash would, then come back; never leave it down."""
    try:
        _pg("stop", "-m", "immediate")
    finally:
        _pg("start")


async def test_worker_survives_a_postgres_restart(tmp_path: Path, pg_url: str) -> None:
    store = await Store.open(pg_url, home=tmp_path / ".corral")
    work = script(tmp_path / "w.json", ["sleep 0.3", "echo ok > out.txt"])
    tasks = [
        {"id": f"t{i}", "repo": str(make_repo(tmp_path / f"r{i}")), "instructions": "x",
         "model": f"scripted:{work}", "sandbox": "local"}
        for i in range(12)
    ]  # fmt: skip
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"name": "pg", "unsafe_local": True, "tasks": tasks}))
    cid = await create_from_file(store, f)
    settings = WorkerSettings(
        home=tmp_path / ".corral", concurrency=3, poll_s=0.05, heartbeat_s=0.3, lease_ttl_s=30
    )
    run = asyncio.create_task(run_campaign(store, cid, settings))
    for _ in range(400):
        if (await store.summary(cid))["done"] >= 2:
            break
        await asyncio.sleep(0.05)
    await asyncio.to_thread(_restart_postgres)  # connections drop mid-campaign
    status = await asyncio.wait_for(run, 180)
    assert status["counts"] == {"succeeded": 12}, status
    await store.close()
