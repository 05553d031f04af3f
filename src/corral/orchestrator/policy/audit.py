"""The audit service: what corral writes to the append-only audit log, and how.

Kinds: `policy` (a rule denied an action or asked for approval), `action` (a risky
action ran: an allow rule matched, or a human had pre-approved it), `egress` (every
request through the egress proxy) and `approval` (a review decision). Details are
redacted like events. Writing never raises into the caller: a failed audit write is
logged loudly, and the action's own record stays in the event log.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from corral.orchestrator.policy.redact import Redactor, default_redactor
from corral.sandbox.egress import EgressRecord
from corral.store.audit import AuditEntry, AuditKind, AuditStore

log = logging.getLogger(__name__)


class AuditService:
    """Writes audit entries for one store; `who` names the acting component."""

    def __init__(self, store: Any, *, who: str = "corral", redactor: Redactor | None = None):
        self.log = AuditStore(store)
        self.who = who
        self._redactor = redactor

    async def record(
        self,
        kind: AuditKind,
        detail: Mapping[str, Any],
        *,
        attempt_id: str | None = None,
        task_id: str | None = None,
        who: str | None = None,
    ) -> None:
        redactor = self._redactor or default_redactor()
        entry = AuditEntry(
            kind=kind, who=who or self.who, detail=redactor.redact_obj(dict(detail)),
            attempt_id=attempt_id, task_id=task_id,
        )  # fmt: skip
        try:
            await self.log.append([entry])
        except Exception:
            log.exception("could not write audit entry %s for %s", kind, attempt_id)

    async def egress(self, rec: EgressRecord) -> None:
        """The egress proxy's `on_record` hook."""
        await self.record("egress", rec.detail(), attempt_id=rec.attempt_id, who="egress-proxy")

    async def review_decided(
        self, *, review_id: str, task_id: str, attempt_id: str | None, approved: bool,
        by: str, comment: str | None = None,
    ) -> None:  # fmt: skip
        detail = {"review_id": review_id, "decision": "approved" if approved else "rejected",
                  "comment": comment}  # fmt: skip
        await self.record("approval", detail, attempt_id=attempt_id, task_id=task_id, who=by)
