"""Resuming an attempt from its event log: the recorded turns first, then the live model.

The recorded turns are served without calling any provider (they cost nothing twice);
their tool calls run again in a fresh sandbox, which rebuilds the workspace exactly as
the paused attempt left it. Then the live model takes over with the whole context.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.domain import Completion, Message, ToolSpec
from corral.ports import Model


class ResumeModel:
    def __init__(self, recorded: Sequence[Completion], live: Model) -> None:
        self.recorded = list(recorded)
        self.live = live
        self.name = live.name
        self.context_window = live.context_window
        self._next = 0
        skip = getattr(live, "skip_turns", None)
        if callable(skip):  # a scripted model: its script continues after the recorded turns
            skip(len(self.recorded))

    @property
    def replaying(self) -> bool:
        return self._next < len(self.recorded)

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        if self._next < len(self.recorded):
            turn = self.recorded[self._next]
            self._next += 1
            return turn.model_copy(update={"cost_usd": 0.0, "latency_s": 0.0})
        return await self.live.complete(messages, tools)

    async def aclose(self) -> None:
        close = getattr(self.live, "aclose", None)
        if close is not None:
            await close()
