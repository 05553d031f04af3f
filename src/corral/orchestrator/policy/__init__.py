"""Governance: risk rules and the guard around tools, secret redaction, the audit log."""

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

__all__ = ["AuditService", "Decision", "Policy", "PolicyGuard", "RedactingFilter", "Redactor",
           "Rule", "Verdict", "action_key", "default_redactor", "effective_policy",
           "install_log_redaction", "load_policy", "read_policy_file", "register_secret",
           "task_policy"]  # fmt: skip
