"""ReplayModel: serve an attempt's recorded completions again, in order.

`corral replay ID` feeds it the completions from the attempt's ModelCalled events, so
the loop re-runs the same actions without calling any provider.
"""

from __future__ import annotations

from collections.abc import Sequence

from corral.domain import Completion, Message, ScriptExhausted, ToolSpec

__all__ = ["ReplayModel"]


class ReplayModel:
    """Returns the recorded completions one per call; asking for more is an error."""

    def __init__(
        self, completions: Sequence[Completion], name: str, *, context_window: int = 200_000
    ) -> None:
        self.completions: tuple[Completion, ...] = tuple(completions)
        self.name = name
        self.context_window = context_window
        self.seen: list[tuple[Message, ...]] = []
        self._next = 0

    @property
    def remaining(self) -> int:
        return len(self.completions) - self._next

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        index = self._next
        if index >= len(self.completions):
            raise ScriptExhausted(
                f"replay model {self.name} ran out of recorded completions: asked for turn "
                f"{index + 1}, the recording has {len(self.completions)}"
            )
        self._next += 1
        self.seen.append(tuple(messages))
        return self.completions[index]
