"""Resuming an attempt from its event log after a human approved the action it paused on.

The log says everything: the model turns to replay (no provider call, no cost) and the
action that needed approval. The new attempt replays those turns in a fresh sandbox, so
the workspace is rebuilt exactly, runs the approved action this time, then carries on
with the live model.
"""

from __future__ import annotations

from corral.agent.loop import completions_of
from corral.domain import ActionTaken, AttemptEnded, Completion, RunStatus
from corral.orchestrator.policy import action_key
from corral.store import Store

ESCALATE_TOOL = "escalate"


async def paused_action(store: Store, attempt_id: str) -> str | None:
    """The key of the action an attempt paused on for approval, or None when the attempt
    simply ended (the agent escalated of its own accord, or finished)."""
    events = await store.events(attempt_id)
    ended = next((e for e in reversed(events) if isinstance(e, AttemptEnded)), None)
    if ended is None or ended.status is not RunStatus.escalated:
        return None
    last = next((e for e in reversed(events) if isinstance(e, ActionTaken)), None)
    if last is None or last.tool == ESCALATE_TOOL:
        return None
    return action_key(last.tool, last.args)


async def recorded_turns(store: Store, attempt_id: str) -> list[Completion]:
    return completions_of(await store.events(attempt_id))
