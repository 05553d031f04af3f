"""GatewayModel: what the agent loop holds instead of a provider adapter."""

from __future__ import annotations

from collections.abc import Sequence

from corral.domain import Completion, Message, ToolSpec
from corral.gateway.budget import BudgetScope
from corral.gateway.gateway import Gateway, Target

__all__ = ["GatewayModel"]


class GatewayModel:
    """Fits `corral.ports.Model`: the agent loop uses it unchanged."""

    def __init__(
        self,
        gateway: Gateway,
        target: Target,
        scope: BudgetScope,
        priority: int,
        deadline: float | None,
    ) -> None:
        self.gateway = gateway
        self.target = target
        self.scope = scope
        self.priority = priority
        self.deadline = deadline
        names = gateway.candidates(target)
        self.name = f"gateway:{','.join(names)}"
        self.context_window = gateway.slots[names[0]].context_window

    async def complete(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> Completion:
        return await self.gateway.complete(
            self.target,
            messages,
            tools,
            scope=self.scope,
            priority=self.priority,
            deadline=self.deadline,
        )
