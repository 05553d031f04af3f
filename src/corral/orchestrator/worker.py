"""The worker: scheduler + reaper + executor against the store, until stopped or done.

Each tick: expire lost leases (retrying their tasks), promote pending tasks whose
dependencies finished, deliver approved reviews, enforce campaign deadlines and budgets,
then admit ready tasks fairly into free slots.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import os
import socket
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from corral.domain import CorralError, ErrorKind, Event, RunStatus, TaskState
from corral.domain.events import utcnow
from corral.orchestrator.attempt import AttemptJob
from corral.orchestrator.delivery import DeliveryRefused, deliver_reviewed
from corral.orchestrator.egress import FleetEgress
from corral.orchestrator.execute import EventHook
from corral.orchestrator.executor import Executor, LocalExecutor
from corral.orchestrator.metrics import FleetMetrics
from corral.orchestrator.models import FleetModels
from corral.orchestrator.resume import paused_action
from corral.orchestrator.scheduler import Snapshot, pick
from corral.orchestrator.settings import WorkerSettings, worker_identity
from corral.sandbox import WarmPools
from corral.store import CampaignRow, Lease, Store, TaskRow

log = logging.getLogger(__name__)
T = TaskState


class Worker:
    def __init__(
        self,
        store: Store,
        settings: WorkerSettings | None = None,
        *,
        campaign_id: str | None = None,
        executor: Executor | None = None,
        on_event: EventHook | None = None,
        metrics: FleetMetrics | None = None,
        models: FleetModels | None = None,
    ) -> None:
        self.store = store
        self._own_models = models is None
        self.models = models or FleetModels(env=(settings or WorkerSettings()).env)
        s = settings or WorkerSettings()
        self.egress = FleetEgress.from_file(
            s.egress_profiles or s.home / "egress.yaml", store, s.env
        )
        self.metrics = metrics
        if metrics is not None:
            user_hook = on_event

            async def on_event(e: Event) -> None:  # count tokens, then pass on
                metrics.on_event(e)
                if user_hook is not None:
                    maybe = user_hook(e)
                    if maybe is not None:
                        await maybe

        self.settings = settings or WorkerSettings()
        self.campaign_id = campaign_id
        self.owner = worker_identity()
        self._wake = asyncio.Event()
        self._dirty = True  # something ended: dependencies may have been met
        self._next_housekeeping = 0.0
        self.executor = executor or LocalExecutor(
            store, self.settings, on_done=self.wake, on_event=on_event, models=self.models,
            egress=self.egress,
        )  # fmt: skip
        self.started = 0
        self.warm: WarmPools | None = None  # the warm sandbox pools while running

    def wake(self) -> None:
        """An attempt ended (or something changed): run a full tick soon."""
        self._dirty = True
        self._wake.set()

    async def run(self, *, until_done: bool = False, stop: asyncio.Event | None = None) -> None:
        warm = self.settings.warm_sandboxes
        pools = self.warm = await WarmPools(size=warm).__aenter__() if warm else None
        try:
            while not (stop and stop.is_set()):
                try:
                    await self.tick()
                    if until_done and self.campaign_id and await self._campaign_done():
                        break
                except CorralError as e:  # a store outage past its retries: wait, go on
                    log.warning("worker tick failed, carrying on: %s", e)
                    await asyncio.sleep(self.settings.poll_s)
                    continue
                self._wake.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), self.settings.poll_s)
                # Let a burst of completions land so one admission tick serves them all.
                await asyncio.sleep(0.002)
        finally:
            await self.executor.shutdown(cancel=True)
            if pools is not None:  # after the attempts: only unclaimed sandboxes go
                await pools.close()
            await self.egress.close()
            if self._own_models:
                await self.models.aclose()

    async def tick(self) -> int:
        now = asyncio.get_running_loop().time()
        if self._dirty:
            # An attempt ended: tasks waiting on it may be ready now.
            self._dirty = False
            await self.store.promote_pending(self.campaign_id)
        if now >= self._next_housekeeping:
            # Reaping, reviews and campaign limits change slowly: not every tick needs them.
            self._next_housekeeping = now + self.settings.housekeeping_s
            await self.reap()
            await self.store.promote_pending(self.campaign_id)
            await self._deliver_approved()
            await self._enforce_campaign_limits()
        return await self.admit()

    async def admit(self) -> int:
        free = self.settings.concurrency - self.executor.active
        if free <= 0:
            return 0
        ready, camps, running, served = await self.store.snapshot(
            utcnow(), self.campaign_id, per_campaign=free
        )
        snap = Snapshot(
            ready=ready,
            campaigns=camps,
            running_by_campaign=running,
            running_by_team=_by_team(running, camps),
            served_by_campaign=served,
            team_caps=self.settings.team_caps,
            team_weights=self.settings.team_weights,
        )
        picks = pick(snap, free)
        if not picks:
            return 0
        by_id = {t.id: t for t in picks}
        leases = await self.store.claim_many(
            [(t, t.spec.model or "") for t in picks], owner=self.owner,
            ttl_s=self.settings.lease_ttl_s,
        )  # fmt: skip
        for lease in leases:
            task = by_id[lease.task_id]
            claimed = _claimed(task, lease)
            self.executor.submit(
                AttemptJob(lease, task.id, task.campaign_id, claimed, camps.get(task.campaign_id))
            )
            if self.metrics is not None:
                waited = (utcnow() - (task.ready_at or task.updated_at)).total_seconds()
                self.metrics.on_claim(lease.number, waited)
        self.started += len(leases)
        return len(leases)

    async def reap(self) -> int:
        """Attempts whose holder died: retry the task (or fail it when out of attempts).

        The retry resumes from the dead attempt's log: its recorded model turns are served
        again without asking the provider, and their actions rebuild the workspace in a
        fresh sandbox, so the model work done before the crash is not lost.
        """
        expired = await self.store.expired_attempts(utcnow(), await self._dead_owners_here())
        for lease, task in expired:
            retry = lease.number < task.max_attempts
            delay = self.settings.retry_for(task.kind).delay(lease.number) if retry else 0.0
            result: dict[str, Any] = {"reason": "lease lost", "error_kind": "retryable"}
            if retry:
                result["resume_from"] = lease.attempt_id
                approved = (task.result or {}).get("approved")
                if approved:  # a resumed-after-approval attempt keeps its approvals
                    result["approved"] = approved
            await self.store.finish_attempt(
                lease, status=RunStatus.failed, reason="lease lost: its worker stopped",
                error_kind=ErrorKind.retryable, steps=0, cost_usd=0.0, patch_path=None,
                task_state=T.ready if retry else T.failed,
                ready_at=utcnow() + timedelta(seconds=delay) if retry else None,
                result=result,
            )  # fmt: skip
        return len(expired)

    async def _dead_owners_here(self) -> list[str]:
        """Owners on this host whose process is gone need not wait for their lease to expire."""
        host = socket.gethostname()
        dead = []
        for owner in await self.store.running_owners():
            parts = owner.split(":")
            if len(parts) == 3 and parts[0] == host and owner != self.owner:
                try:
                    os.kill(int(parts[1]), 0)
                except ProcessLookupError:
                    dead.append(owner)
                except (PermissionError, ValueError):
                    pass
        return dead

    async def _deliver_approved(self) -> None:
        """Approved reviews: deliver the work, or resume an attempt paused for an action."""
        for task in await self.store.tasks(campaign_id=self.campaign_id, states=[T.approved]):
            reviews = [
                r for r in await self.store.reviews(state="approved") if r.task_id == task.id
            ]
            if not reviews:
                continue
            r = reviews[-1]
            paused = await paused_action(self.store, r.attempt_id)
            if paused is not None:
                keys = [*(task.result or {}).get("approved", []), paused]
                await self.store.move_task(
                    task.id, [T.approved], T.ready,
                    result=json.dumps({"resume_from": r.attempt_id, "approved": keys}),
                )  # fmt: skip
                continue
            try:
                await deliver_reviewed(
                    self.store, task, attempt_id=r.attempt_id, diff=r.diff, home=self.settings.home
                )
            except DeliveryRefused as e:
                why = json.dumps({"reason": str(e)})
                await self.store.move_task(task.id, [T.approved], T.failed, result=why)
                continue
            await self.store.move_task(task.id, [T.approved], T.succeeded)

    async def _enforce_campaign_limits(self) -> None:
        ids = [self.campaign_id] if self.campaign_id else None
        camps = [c for c in await self.store.list_campaigns(500) if c.state == "running"]
        now = utcnow()
        for c in camps:
            if ids and c.id not in ids:
                continue
            summary = await self.store.summary(c.id)
            deadline_passed = c.deadline_at is not None and now > c.deadline_at
            over_budget = c.budget_usd is not None and summary["cost_usd"] >= c.budget_usd
            if summary["done"] == summary["total"]:
                await self.store.set_campaign_state(c.id, "finished")
                continue
            if not (deadline_passed or over_budget):
                continue  # the common case: counts only, no task rows loaded
            open_tasks = await self.store.tasks(
                campaign_id=c.id, states=[T.pending, T.ready, T.running, T.needs_review, T.approved]
            )
            if deadline_passed:
                await self.store.request_cancel([t.id for t in open_tasks])
                continue
            for t in open_tasks:
                if t.state in (T.pending, T.ready):
                    await self.store.move_task(
                        t.id, [t.state], T.failed,
                        result='{"reason": "campaign budget exhausted"}',
                    )  # fmt: skip

    async def _campaign_done(self) -> bool:
        """Done when every task is finished, or nothing can move without a human review."""
        assert self.campaign_id is not None
        if self.executor.active:
            return False
        counts = (await self.store.summary(self.campaign_id))["counts"]
        moving = ("ready", "running", "approved")
        if any(counts.get(s, 0) for s in moving):
            return False
        if counts.get("needs_review", 0):
            return True  # the rest waits for `corral review`; `campaign resume` carries on
        if counts.get("pending", 0):
            return False  # promotion happens on the next tick
        camp = await self.store.get_campaign(self.campaign_id)
        if camp is not None and camp.state == "running":
            await self.store.set_campaign_state(self.campaign_id, "finished")
        return True


def _claimed(task: TaskRow, lease: Lease) -> TaskRow:
    """The task row as the claim left it (running, its new attempt count and token)."""
    return dataclasses.replace(
        task, state=TaskState.running, attempts=lease.number, lease_token=lease.token
    )


def _by_team(running: Mapping[str, int], camps: Mapping[str, CampaignRow]) -> dict[str, int]:
    out: dict[str, int] = {}
    for cid, n in running.items():
        if cid in camps:
            team = camps[cid].team
            out[team] = out.get(team, 0) + n
    return out
