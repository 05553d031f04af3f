"""One leased attempt in the fleet: run it, keep the lease alive, and stop it when it must.

Beside the agent run, the process's lease keeper renews the lease (fenced by the token,
one write for all attempts); on each beat the attempt checks for progress (a new event)
and cancellation. A zombie, a cancelled task or a lost lease cancels the run, which
closes the sandbox and so kills its whole process tree; a cancel or a lost lease while
the finished run is being delivered stops the delivery.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from corral.agent.config import AgentConfig, AgentLimits
from corral.agent.loop import RunOutcome
from corral.domain import (
    AttemptEnded,
    CorralError,
    ErrorKind,
    Event,
    ModelCalled,
    ProviderError,
    RouteDecided,
    RunStatus,
    TaskState,
)
from corral.domain.events import utcnow
from corral.gateway import RouteDecision
from corral.models.resume import ResumeModel
from corral.orchestrator.delivery import DeliveryRefused, deliver, delivery_key, secret_hold
from corral.orchestrator.egress import FleetEgress
from corral.orchestrator.execute import EventHook, execute_attempt
from corral.orchestrator.leases import LeaseKeeper
from corral.orchestrator.models import FleetModels
from corral.orchestrator.policy import default_redactor, task_policy
from corral.orchestrator.resume import recorded_turns
from corral.orchestrator.retry import classify
from corral.orchestrator.settings import WorkerSettings
from corral.sandbox import SandboxLimits, open_sandbox
from corral.sandbox.egress import EgressChannel
from corral.store import CampaignRow, Lease, Store, TaskRow

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class AttemptJob:
    """Everything an executor needs to run one attempt; plain data, so it can travel."""

    lease: Lease
    task_id: str
    campaign_id: str
    # The rows the scheduler already read when it claimed: an attempt then starts without
    # a read of its own (a fleet of a thousand starting at once would queue for them).
    task: TaskRow | None = None
    campaign: CampaignRow | None = None


class _Stop(Exception):
    def __init__(self, why: str, reason: str):
        super().__init__(reason)
        self.why = why
        self.reason = reason


async def run_job(
    store: Store,
    job: AttemptJob,
    settings: WorkerSettings,
    on_event: EventHook | None = None,
    models: FleetModels | None = None,
    egress: FleetEgress | None = None,
    keeper: LeaseKeeper | None = None,
) -> None:
    """Run one attempt. `models`, `egress` and `keeper` are shared by a worker's attempts;
    without them the attempt makes (and closes) its own."""
    task = job.task or await store.get_task(job.task_id)
    campaign = job.campaign or await store.get_campaign(job.campaign_id)
    if campaign is None:
        return
    fleet_models = models or FleetModels(env=settings.env)
    own_keeper = keeper or LeaseKeeper(store, settings.heartbeat_s, settings.lease_ttl_s)
    runner = _Runner(
        store, job.lease, task, campaign, settings, on_event, fleet_models,
        egress or FleetEgress(), own_keeper,
    )  # fmt: skip
    try:
        await runner.run()
    finally:
        if keeper is None:
            await own_keeper.close()
        if models is None:
            await fleet_models.aclose()


class _Runner:
    def __init__(
        self,
        store: Store,
        lease: Lease,
        task: TaskRow,
        campaign: CampaignRow,
        settings: WorkerSettings,
        on_event: EventHook | None,
        models: FleetModels,
        egress: FleetEgress,
        keeper: LeaseKeeper,
    ) -> None:
        self.store, self.lease, self.task, self.campaign = store, lease, task, campaign
        self.models = models
        self.egress = egress
        self.keeper = keeper
        self.channel: EgressChannel | None = None
        self.settings = settings
        self.on_event = on_event
        self.last_progress = time.monotonic()
        self.steps, self.cost_usd = 0, 0.0  # the model turns so far, as the loop counts them
        self.stop: _Stop | None = None
        # What a heartbeat stops: the agent's run, then its delivery (a cancel or a lost
        # lease during a push or a PR call must not be dropped).
        self.current: asyncio.Future[Any] | None = None
        self.delivering = False

    def _progress(self, event: Event) -> None:
        self.last_progress = time.monotonic()
        if isinstance(event, ModelCalled):  # what a stopped run still spent
            self.steps += 1
            self.cost_usd += event.completion.cost_usd

    async def run(self) -> None:
        spec = self.task.spec
        try:
            model_spec = spec.model
            if not model_spec:
                raise CorralError(f"task {self.task.key} names no model and the campaign has none")
            model, decision = await self.models.for_attempt(
                self.task, self.campaign, self.lease, repo_files=None
            )
            policy = task_policy(self.settings.home, spec)  # campaign/task rules: the snapshot
            resume_from = (self.task.result or {}).get("resume_from")
            if resume_from:
                model = ResumeModel(await recorded_turns(self.store, resume_from), model)
            self.channel = await self.egress.channel_for(self.task, self.lease.attempt_id)
            box = open_sandbox(
                spec.sandbox,
                Path(spec.repo),
                limits=SandboxLimits(default_timeout=spec.command_timeout_s),
                unsafe_local=_unsafe_local(self.campaign),
                attempt_id=self.lease.attempt_id,
                egress=self.channel,
            )
        except CorralError as e:
            await self._close_channel()
            # An unreachable provider or gateway service may come back; bad input will not.
            kind = ErrorKind.retryable if isinstance(e, ProviderError) else ErrorKind.final
            await self._finish_failed(f"{e.__class__.__name__}: {e}", kind)
            return
        config = AgentConfig(
            limits=AgentLimits(
                max_steps=spec.max_steps,
                max_wall_s=spec.timeout_s,
                command_timeout_s=spec.command_timeout_s,
            )
        )
        hooks: list[EventHook] = [self._progress]
        if self.on_event is not None:
            hooks.append(self.on_event)
        main = asyncio.create_task(
            execute_attempt(
                attempt_id=self.lease.attempt_id, task=spec.instructions, repo=Path(spec.repo),
                model=model, box=box, config=config, store=self.store,
                home=self.settings.home, hooks=hooks, preamble=self._preamble(decision),
                policy=policy, approved=(self.task.result or {}).get("approved", ()),
            )
        )  # fmt: skip
        self.current = main
        self.keeper.keep(self.lease, self._on_beat)
        try:
            try:
                out = await main
            except asyncio.CancelledError:
                if self.stop is None:
                    raise  # we are being shut down ourselves
                await self._stopped(self.stop)
                return
            except Exception as e:  # a bug or infra fault outside the agent: retry, visibly
                log.exception("attempt %s failed unexpectedly", self.lease.attempt_id)
                await self._finish_failed(
                    f"internal error: {e.__class__.__name__}: {e}", ErrorKind.retryable
                )
                return
            finally:
                await self._close_channel()
                close = getattr(model, "aclose", None)
                if close is not None:
                    with contextlib.suppress(Exception):
                        await close()
            # Still leased while it delivers (pushes, API calls): a slow delivery must not
            # look like a dead worker whose task another worker takes over.
            await self._settle(out.outcome, out.diff, out.patch_path)
        finally:
            self.keeper.release(self.lease)

    async def _close_channel(self) -> None:
        if self.channel is not None:
            await self.channel.close()
            self.channel = None

    def _preamble(self, decision: RouteDecision | None) -> list[Event]:
        if decision is None:
            return []
        return [
            RouteDecided(
                attempt_id=self.lease.attempt_id, seq=0, rule=decision.rule,
                profile=decision.profile, models=decision.models, attempt=decision.attempt,
                reason=decision.reason,
            )
        ]  # fmt: skip

    def _on_beat(self, held: bool, cancel: bool) -> None:
        """After each heartbeat: stop the run (or its delivery) if the lease is lost or the
        task cancelled; stop the run if nothing has happened for too long (a delivery has
        its own time limit)."""
        current = self.current
        if current is None or current.done() or self.stop is not None:
            return
        idle = time.monotonic() - self.last_progress
        during = " during its delivery" if self.delivering else ""
        if not held:
            self.stop = _Stop(
                "lease_lost", f"the lease was lost{during} (another worker took over)"
            )
        elif cancel:
            self.stop = _Stop("cancelled", f"cancelled on request{during}")
        elif idle > self.settings.zombie_after_s and not self.delivering:
            self.stop = _Stop("zombie", f"zombie: no progress for {idle:.0f}s; killed")
        if self.stop is not None:
            self.keeper.release(self.lease)
            current.cancel()

    async def _stopped(self, stop: _Stop, patch: str | None = None, *, ended: bool = False) -> None:
        """`ended`: the agent's run had ended and its delivery was stopped; the run's end
        is already logged and its `patch` stays on the attempt."""
        if stop.why == "lease_lost":
            log.warning("attempt %s: %s", self.lease.attempt_id, stop.reason)
            return  # the new holder owns the task now; any write of ours would be fenced out
        if not ended:
            await self._log_end(stop.reason)
        if stop.why == "cancelled":  # (a delivery is only ever stopped by a cancel)
            why = "delivered before the cancel reached it"
            if ended and await self._finished_if_delivered(patch, why):
                return
            result = {"reason": stop.reason} | ({"patch": patch} if patch else {})
            await self.store.finish_attempt(
                self.lease, status=RunStatus.failed, reason=stop.reason,
                error_kind=ErrorKind.final, steps=self.steps, cost_usd=self._spent(),
                patch_path=patch, task_state=TaskState.cancelled, result=result,
            )  # fmt: skip
            return
        await self._finish_failed(stop.reason, ErrorKind.retryable)

    async def _finished_if_delivered(self, patch: str | None, reason: str) -> bool:
        """A delivery stopped (cancel, time limit) while its record was written is done:
        the PR is open, and the record says where."""
        try:
            done = await self.store.side_effect(delivery_key(self.task))
        except CorralError:
            return False  # unknown: end as stopped; a retry's delivery finds any record
        if done is None:
            return False
        await self.store.finish_attempt(
            self.lease, status=RunStatus.finished, reason=reason, error_kind=None,
            steps=self.steps, cost_usd=self._spent(), patch_path=patch,
            task_state=TaskState.succeeded, result={"reason": reason, "delivery": done},
        )  # fmt: skip
        return True

    async def _log_end(self, reason: str) -> None:
        """End the stopped run's log, once: the stop may have landed while an event (even
        the run's own end) was being stored, which then is in the log all the same."""
        with contextlib.suppress(CorralError):
            seq, ended = await self.store.log_tail(self.lease.attempt_id)
            if not ended:
                await self.store.append(
                    AttemptEnded(
                        attempt_id=self.lease.attempt_id, seq=seq,
                        status=RunStatus.failed, reason=reason, steps=self.steps,
                        cost_usd=self._spent(),
                    )
                )  # fmt: skip

    async def _settle(self, outcome: RunOutcome, diff: str, patch: str | None) -> None:
        kind = classify(outcome)
        result: dict[str, Any]
        if outcome.status is RunStatus.escalated:
            result = {"reason": outcome.reason, "patch": patch, "escalated": True}
            await self._finish(outcome, patch, None, TaskState.needs_review, None, result, diff)
            return
        if kind is None:
            held = secret_hold(diff)  # a diff adding a secret is never delivered
            if held is not None:
                outcome = dataclasses.replace(outcome, reason=held)
            if self.task.spec.require_approval or held is not None:
                result = {"reason": outcome.reason, "patch": patch}
                await self._finish(outcome, patch, None, TaskState.needs_review, None, result, diff)
                return
            delivery = asyncio.ensure_future(
                deliver(
                    self.store, self.task, attempt_id=self.lease.attempt_id, diff=diff,
                    home=self.settings.home,
                )
            )  # fmt: skip
            self.current, self.delivering = delivery, True
            try:
                async with asyncio.timeout(self.settings.delivery_timeout_s):
                    done = await delivery
            except asyncio.CancelledError:
                if self.stop is None:
                    raise  # we are being shut down ourselves
                await self._stopped(self.stop, patch, ended=True)
                return
            except (TimeoutError, DeliveryRefused) as e:
                if self.stop is not None:  # it ended another way before the stop reached it
                    await self._stopped(self.stop, patch, ended=True)
                elif isinstance(e, TimeoutError):
                    limit = self.settings.delivery_timeout_s
                    why = f"delivered, though past its {limit:g}s time limit"
                    if await self._finished_if_delivered(patch, why):
                        return
                    await self._finish_failed(
                        f"the delivery took over {limit:g}s: given up", ErrorKind.retryable
                    )
                else:  # refused: a human decides; retrying would refuse again
                    outcome = dataclasses.replace(
                        outcome,
                        reason=f"not delivered: {e} (reject it, then `corral retry` runs it again)",
                    )
                    result = {"reason": outcome.reason, "patch": patch, "delivery_refused": True}
                    await self._finish(
                        outcome, patch, None, TaskState.needs_review, None, result, diff
                    )
                return
            result = {"reason": outcome.reason, "delivery": done}
            await self._finish(outcome, patch, None, TaskState.succeeded, None, result)
            return
        state, ready_at = self._after_failure(kind)
        result = {"reason": outcome.reason, "error_kind": kind.value}
        await self._finish(outcome, patch, kind, state, ready_at, result)

    async def _finish(
        self,
        outcome: RunOutcome,
        patch: str | None,
        kind: ErrorKind | None,
        state: TaskState,
        ready_at: datetime | None,
        result: dict[str, Any],
        review_diff: str | None = None,
    ) -> None:
        r = default_redactor()  # rows are stored and shown: redacted like events
        await self.store.finish_attempt(
            self.lease, status=outcome.status, reason=r.redact(outcome.reason), error_kind=kind,
            steps=outcome.steps, cost_usd=outcome.cost_usd, patch_path=patch, task_state=state,
            ready_at=ready_at, result=r.redact_obj(result),
            review_diff=None if review_diff is None else r.redact(review_diff),
        )  # fmt: skip

    async def _finish_failed(self, reason: str, kind: ErrorKind) -> None:
        reason = default_redactor().redact(reason)
        state, ready_at = self._after_failure(kind)
        await self.store.finish_attempt(
            self.lease, status=RunStatus.failed, reason=reason, error_kind=kind,
            steps=self.steps, cost_usd=self._spent(), patch_path=None, task_state=state,
            ready_at=ready_at,
            result={"reason": reason, "error_kind": kind.value},
        )  # fmt: skip

    def _spent(self) -> float:
        return round(self.cost_usd, 8)

    def _after_failure(self, kind: ErrorKind) -> tuple[TaskState, datetime | None]:
        if kind is ErrorKind.retryable and self.lease.number < self.task.max_attempts:
            delay = self.settings.retry_for(self.task.kind).delay(self.lease.number)
            return TaskState.ready, utcnow() + timedelta(seconds=delay)
        return TaskState.failed, None


def _unsafe_local(campaign: CampaignRow) -> bool:
    settings: dict[str, Any] = json.loads(campaign.spec)
    return bool(settings.get("unsafe_local", False))
