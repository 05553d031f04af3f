"""Egress control: no network by default; allowlisted hosts through a host-side proxy.

proxy = EgressProxy(on_record=audit_hook)
channel = await proxy.open_channel(profile, attempt_id)
box = BwrapSandbox(repo, egress=channel)   # binds channel.socket_path, starts the relay
"""

from corral.sandbox.egress.proxy import EgressChannel, EgressProxy, EgressRecord, system_resolver
from corral.sandbox.egress.rules import (
    CLOSED,
    Credential,
    EgressProfile,
    address_problem,
    host_matches,
    load_profiles,
)

__all__ = ["CLOSED", "Credential", "EgressChannel", "EgressProfile", "EgressProxy",
           "EgressRecord", "address_problem", "host_matches", "load_profiles",
           "system_resolver"]  # fmt: skip
