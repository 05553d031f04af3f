"""A policy guard around a toolbox: every tool call is classified before it runs.

It fits the agent loop's ToolRunner (`specs()` and `run(sandbox, call)`) and, like the
Toolbox, never raises for a refused call. A denied action becomes an error observation
naming the rule, so the model can choose another way. An action that needs approval
ends the run into the review queue (`escalation`); once a human approves, the attempt
is resumed with that action's key in `approved` and the same call then runs.
"""

from __future__ import annotations

from collections.abc import Iterable

from corral.agent.loop import ToolRunner
from corral.domain import ToolCall, ToolResult, ToolSpec
from corral.orchestrator.policy.audit import AuditService
from corral.orchestrator.policy.rules import Decision, Policy, Verdict, action_key
from corral.ports import Sandbox
from corral.tools.base import error_result


class PolicyGuard:
    def __init__(
        self,
        tools: ToolRunner,
        policy: Policy,
        *,
        approved: Iterable[str] = (),
        audit: AuditService | None = None,
        attempt_id: str | None = None,
    ) -> None:
        self.tools = tools
        self.policy = policy
        self.approved = frozenset(approved)
        self.audit = audit
        self.attempt_id = attempt_id

    def specs(self) -> list[ToolSpec]:
        return self.tools.specs()

    async def run(self, sandbox: Sandbox, call: ToolCall) -> ToolResult:
        if call.parse_error is not None:
            return await self.tools.run(sandbox, call)  # the toolbox explains the bad call
        verdict = self.policy.evaluate(call.name, call.arguments)
        key = action_key(call.name, call.arguments)
        if verdict.decision is Decision.allow:
            if verdict.rule is not None:
                await self._audit("action", verdict, key)
            return await self.tools.run(sandbox, call)
        if verdict.decision is Decision.require_approval and key in self.approved:
            # Only a held action can be pre-approved: a deny (say, added by the
            # installation since the approval) always wins.
            await self._audit("action", verdict, key, approved=True)
            return await self.tools.run(sandbox, call)
        await self._audit("policy", verdict, key)
        rule = verdict.rule_name
        why = f" ({verdict.rule.reason})" if verdict.rule and verdict.rule.reason else ""
        if verdict.decision is Decision.deny:
            return error_result(
                f"policy: denied by rule {rule!r}{why}: {verdict.action}; "
                "this action is not allowed for agents — find another way or escalate"
            )
        return ToolResult(
            output=(
                f"policy: rule {rule!r}{why} requires human approval for: "
                f"{verdict.action}\nThe run pauses here for review."
            ),
            is_error=True,
            escalation=f"approval required: {rule}: {verdict.action}",
        )

    async def _audit(self, kind: str, v: Verdict, key: str, *, approved: bool = False) -> None:
        if self.audit is None:
            return
        detail = {"decision": v.decision.value, "rule": v.rule_name, "action": v.action,
                  "action_key": key, "pre_approved": approved,
                  "policy": self.policy.digest}  # fmt: skip
        await self.audit.record(
            "action" if kind == "action" else "policy", detail, attempt_id=self.attempt_id
        )
