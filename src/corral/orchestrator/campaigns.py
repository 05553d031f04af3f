"""Campaign services the CLI (and other programs) call: create, run, status, review."""

from __future__ import annotations

import asyncio
import contextlib
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from corral.domain import ConfigError
from corral.orchestrator.campaign_file import load_campaign
from corral.orchestrator.hooks import check_model
from corral.orchestrator.models import FleetModels
from corral.orchestrator.policy import task_policy
from corral.orchestrator.settings import WorkerSettings
from corral.orchestrator.worker import Worker
from corral.store import Store

Progress = Callable[[dict[str, Any]], Awaitable[None] | None]


async def create_from_file(
    store: Store,
    path: str | Path,
    *,
    env: dict[str, str] | None = None,
    home: Path | None = None,
) -> str:
    """Validate the file, every repo, model spec and policy file (with `home`'s policy
    when given), then create the campaign."""
    spec, _ = load_campaign(path)
    for t in spec.tasks:
        if not t.model:
            raise ConfigError(f"{path}: task {t.id} has no model and the campaign sets none")
        check_model(t.model, env)
        if not await asyncio.to_thread(os.path.isdir, t.repo):
            raise ConfigError(f"{path}: task {t.id}: repo {t.repo!r} does not exist")
        if home is not None:
            task_policy(home, t)
    return await store.create_campaign(spec)


async def run_campaign(
    store: Store,
    campaign_id: str,
    settings: WorkerSettings,
    *,
    progress: Progress | None = None,
    every_s: float = 0.5,
    models: FleetModels | None = None,
) -> dict[str, Any]:
    """Run until every task of the campaign is finished; returns the final status."""
    worker = Worker(store, settings, campaign_id=campaign_id, models=models)
    run = asyncio.create_task(worker.run(until_done=True))
    try:
        while not run.done():
            if progress is not None:
                maybe = progress(await store.summary(campaign_id))
                if maybe is not None:
                    await maybe
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(run), every_s)
        await run
    finally:
        if not run.done():
            run.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await run
    return await campaign_status(store, campaign_id)


async def reopen_campaign(store: Store, ref: str) -> str:
    """The campaign with this id (or unique id prefix), running again so a worker carries
    it on after a crash: finished tasks stay finished, lost attempts are retried."""
    cid = await store.resolve_campaign_id(ref)
    camp = await store.get_campaign(cid)
    if camp is not None and camp.state != "running":
        await store.set_campaign_state(cid, "running")
    return cid


async def campaign_status(store: Store, campaign_id: str) -> dict[str, Any]:
    camp = await store.get_campaign(campaign_id)
    if camp is None:
        raise ConfigError(f"no campaign with id {campaign_id!r}")
    tasks = await store.tasks(campaign_id=campaign_id)
    summary = await store.summary(campaign_id)
    return {
        "id": camp.id,
        "name": camp.name,
        "team": camp.team,
        "state": camp.state,
        "counts": summary["counts"],
        "cost_usd": summary["cost_usd"],
        "tasks": [
            {
                "id": t.id,
                "key": t.key,
                "state": t.state.value,
                "attempts": t.attempts,
                "cost_usd": round(t.cost_usd, 6),
                "reason": (t.result or {}).get("reason", ""),
            }
            for t in tasks
        ],
    }
