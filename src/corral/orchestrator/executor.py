"""Where attempts run. The scheduler hands over plain `AttemptJob`s and learns of results
through the store, so a Ray executor (attempts on other machines, same store URL) fits
behind this interface without touching the scheduler.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Protocol

from corral.orchestrator.attempt import AttemptJob, run_job
from corral.orchestrator.egress import FleetEgress
from corral.orchestrator.execute import EventHook
from corral.orchestrator.leases import LeaseKeeper
from corral.orchestrator.models import FleetModels
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store

log = logging.getLogger(__name__)


class Executor(Protocol):
    def submit(self, job: AttemptJob) -> None:
        """Start the job; returns at once. Completion is reported through the store."""

    @property
    def active(self) -> int:
        """How many submitted jobs are still running."""

    async def shutdown(self, *, cancel: bool) -> None: ...


class LocalExecutor:
    """Attempts as asyncio tasks in this process: the embedded default."""

    def __init__(
        self,
        store: Store,
        settings: WorkerSettings,
        *,
        on_done: Callable[[], None] | None = None,
        on_event: EventHook | None = None,
        models: FleetModels | None = None,
        egress: FleetEgress | None = None,
    ) -> None:
        self.egress = egress
        self.store = store
        self.settings = settings
        self.on_done = on_done
        self.on_event = on_event
        self.models = models
        # One heartbeat write for all of this executor's attempts.
        self.keeper = LeaseKeeper(store, settings.heartbeat_s, settings.lease_ttl_s)
        self._tasks: dict[str, asyncio.Task[None]] = {}

    @property
    def active(self) -> int:
        return len(self._tasks)

    def submit(self, job: AttemptJob) -> None:
        t = asyncio.create_task(self._run(job), name=f"attempt {job.lease.attempt_id}")
        self._tasks[job.lease.attempt_id] = t

    async def _run(self, job: AttemptJob) -> None:
        try:
            await run_job(
                self.store, job, self.settings, self.on_event, self.models, self.egress,
                self.keeper,
            )  # fmt: skip
        except asyncio.CancelledError:
            raise
        except Exception:
            # A bug or an infra failure outside the agent run: the lease will expire and
            # the reaper retries the task; never let it take the worker down.
            log.exception("attempt %s crashed", job.lease.attempt_id)
        finally:
            self._tasks.pop(job.lease.attempt_id, None)
            if self.on_done is not None:
                self.on_done()

    async def shutdown(self, *, cancel: bool) -> None:
        tasks = list(self._tasks.values())
        if cancel:
            for t in tasks:
                t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
        await self.keeper.close()


class SimulatedExecutor:
    """Runs no agent: each attempt holds its lease for `work_s`, then succeeds through the
    same fenced store writes a real attempt uses. For scheduler tests and benchmarks."""

    def __init__(
        self, store: Store, *, work_s: float = 0.0, on_done: Callable[[], None] | None = None
    ) -> None:
        self.store = store
        self.work_s = work_s
        self.on_done = on_done
        self.finished: list[tuple[str, float]] = []  # (task id, loop time)
        self._tasks: set[asyncio.Task[None]] = set()

    @property
    def active(self) -> int:
        return len(self._tasks)

    def submit(self, job: AttemptJob) -> None:
        t = asyncio.create_task(self._run(job))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _run(self, job: AttemptJob) -> None:
        from corral.domain import RunStatus, TaskState

        try:
            if self.work_s:
                await asyncio.sleep(self.work_s)
            await self.store.finish_attempt(
                job.lease, status=RunStatus.finished, reason="simulated", error_kind=None,
                steps=0, cost_usd=0.0, patch_path=None, task_state=TaskState.succeeded,
            )  # fmt: skip
            self.finished.append((job.task_id, asyncio.get_running_loop().time()))
        finally:
            if self.on_done is not None:
                self.on_done()

    async def shutdown(self, *, cancel: bool) -> None:
        tasks = list(self._tasks)
        if cancel:
            for t in tasks:
                t.cancel()
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)
