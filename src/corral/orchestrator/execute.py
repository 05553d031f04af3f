"""The body of one attempt, shared by a single `corral run` and by fleet workers.

Sandbox → repo map → agent loop → diff → patch → `attempt_ended` event. Creating and
closing the attempt's record is the caller's job (plain for `run_task`, fenced by a
lease for the fleet).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.config import AgentConfig
from corral.agent.loop import AgentLoop, RunOutcome
from corral.agent.repomap import build_repo_map
from corral.domain import AttemptEnded, CorralError, Event, RunStatus
from corral.orchestrator.policy import (
    AuditService,
    Policy,
    PolicyGuard,
    Redactor,
    default_redactor,
    effective_policy,
)
from corral.ports import Model, Sandbox
from corral.store import Store
from corral.tools import Toolbox, default_tools

EventHook = Callable[[Event], Awaitable[None] | None]
log = logging.getLogger(__name__)


class Sink:
    """Persist first, then tell the watchers: the log is never behind what was shown.
    Secrets are redacted before anything is stored or shown."""

    def __init__(
        self, store: Store, hooks: Sequence[EventHook] = (), redactor: Redactor | None = None
    ) -> None:
        self.store = store
        self.hooks = [h for h in hooks if h is not None]
        self.events: list[Event] = []
        self.redactor = redactor or default_redactor()

    async def append(self, event: Event) -> None:
        await self.append_many([event])

    async def append_many(self, events: Sequence[Event]) -> None:
        encoded = [self.redactor.encode_event(e) for e in events]
        events = [event for event, _ in encoded]
        await self.store.append_many(events, [text for _, text in encoded])
        self.events.extend(events)
        for hook in self.hooks:
            for event in events:
                maybe = hook(event)
                if maybe is not None:
                    await maybe


@dataclass
class AttemptOutput:
    outcome: RunOutcome
    diff: str
    patch_path: str | None
    events: list[Event] = field(default_factory=list)


async def execute_attempt(
    *,
    attempt_id: str,
    task: str,
    repo: Path,
    model: Model,
    box: Sandbox,
    config: AgentConfig,
    store: Store,
    home: Path,
    hooks: Sequence[EventHook] = (),
    preamble: Sequence[Event] = (),
    policy: Policy | None = None,
    approved: Iterable[str] = (),
) -> AttemptOutput:
    """`preamble`: events recorded before the loop's own (a routing decision), seq 0..k-1.
    `policy`: the built-in rules plus `home/policy.yaml` when not given; `approved`: keys
    of actions a human approved (passed in when an approved attempt is resumed)."""
    sink = Sink(store, hooks)
    diff = ""
    if preamble:
        await sink.append_many(preamble)
    try:
        try:
            await box.start()
            # Off the loop: parsing a large repo's files takes a while on a cold cache.
            repo_map = await asyncio.to_thread(
                build_repo_map, box.workspace, task, token_budget=config.repo_map_tokens
            )
            loop = AgentLoop(
                attempt_id=attempt_id,
                model=model,
                sandbox=box,
                tools=PolicyGuard(
                    Toolbox(default_tools(bash_timeout=config.limits.command_timeout_s)),
                    policy or effective_policy(home, repo),
                    approved=approved,
                    audit=AuditService(store),
                    attempt_id=attempt_id,
                ),
                sink=sink,
                config=config,
                start_seq=len(preamble),
            )
            outcome = await loop.run(task, repo=str(repo), repo_map=repo_map)
            try:
                diff = await box.diff()
            except CorralError as e:
                log.warning("no diff for attempt %s: %s", attempt_id, e)
                if outcome.status is RunStatus.finished:
                    # A finished run whose changes cannot be read is not a success with
                    # an empty diff: that would deliver nothing and call it done.
                    reason = f"cannot read the workspace diff: {e.__class__.__name__}: {e}"
                    outcome = dataclasses.replace(
                        outcome, status=RunStatus.failed, reason=reason, error=e
                    )
        except CorralError as e:
            # The sandbox failed to start or broke: a failed attempt, recorded, not a crash.
            reason = f"{e.__class__.__name__}: {e}"
            outcome = RunOutcome(RunStatus.failed, reason, 0, 0.0, len(sink.events), e)
    finally:
        await box.close()
    patch_path = write_patch(home, attempt_id, sink.redactor.redact(diff))
    await sink.append(
        AttemptEnded(
            attempt_id=attempt_id,
            seq=outcome.next_seq,
            status=outcome.status,
            reason=outcome.reason,
            steps=outcome.steps,
            cost_usd=outcome.cost_usd,
            diff=diff,
        )
    )
    return AttemptOutput(outcome, diff, patch_path, sink.events)


def write_patch(home: Path, attempt_id: str, diff: str) -> str | None:
    if not diff:
        return None
    path = home / "patches" / f"{attempt_id}.patch"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(diff)
    return str(path)
