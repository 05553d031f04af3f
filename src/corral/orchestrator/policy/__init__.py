"""Governance: risk rules and the guard around tools, secret redaction, the audit log.

The names below load on first use: the CLI installs log redaction before every command,
and the audit's store import made each of them ~0.2 s slower.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.orchestrator.policy.audit import AuditService
    from corral.orchestrator.policy.guard import PolicyGuard
    from corral.orchestrator.policy.layers import effective_policy, read_policy_file, task_policy
    from corral.orchestrator.policy.redact import (
        RedactingFilter,
        Redactor,
        default_redactor,
        install_log_redaction,
        register_secret,
    )
    from corral.orchestrator.policy.rules import (
        Decision,
        Policy,
        Rule,
        Verdict,
        action_key,
        load_policy,
    )

_WHERE = {
    "audit": ["AuditService"],
    "guard": ["PolicyGuard"],
    "layers": ["effective_policy", "read_policy_file", "task_policy"],
    "redact": ["RedactingFilter", "Redactor", "default_redactor", "install_log_redaction",
               "register_secret"],
    "rules": ["Decision", "Policy", "Rule", "Verdict", "action_key", "load_policy"],
}  # fmt: skip
_MODULE = {name: module for module, names in _WHERE.items() for name in names}
__all__ = ["AuditService", "Decision", "Policy", "PolicyGuard", "RedactingFilter", "Redactor",
           "Rule", "Verdict", "action_key", "default_redactor", "effective_policy",
           "install_log_redaction", "load_policy", "read_policy_file", "register_secret",
           "task_policy"]  # fmt: skip


def __getattr__(name: str) -> Any:
    module = _MODULE.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value
