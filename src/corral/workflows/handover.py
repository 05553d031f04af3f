"""Playbooks that hand a run to an LLM take its turns as they come, except `finish`."""

from __future__ import annotations

from collections.abc import Callable

from corral.domain import Completion


def unless_finished(done: Completion, verify: Callable[[], Completion]) -> Completion:
    """The LLM's turn, or - when it says `finish` - our verification step instead, billed
    as the LLM's turn: its word is not verification."""
    if not any(c.name == "finish" for c in done.tool_calls):
        return done
    return verify().model_copy(
        update={"cost_usd": done.cost_usd, "usage": done.usage, "model": done.model}
    )
