"""How a worker runs attempts: leases, heartbeats, zombies, retries. Plain config."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Mapping
from pathlib import Path

from pydantic import ConfigDict, Field

from corral.domain import Frozen
from corral.orchestrator.retry import RetryPolicy


def worker_identity() -> str:
    """host:pid:random — the host and pid let a restarted worker spot a dead owner at once."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class WorkerSettings(Frozen):
    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    concurrency: int = Field(default=8, ge=1)
    lease_ttl_s: float = Field(default=15.0, gt=0)
    heartbeat_s: float = Field(default=1.0, gt=0)
    # No new event for this long means the attempt is hung (model call or command): kill it.
    zombie_after_s: float = Field(default=600.0, gt=0)
    # A finished attempt's delivery (pushes, forge API calls) taking longer is given up
    # and the attempt retried (deliveries are idempotent); its lease is held meanwhile.
    delivery_timeout_s: float = Field(default=600.0, gt=0)
    poll_s: float = Field(default=0.25, gt=0)
    # Reaping, dependency promotion, review delivery and campaign limits run this often
    # (and whenever an attempt ends); admission runs on every tick.
    housekeeping_s: float = Field(default=0.5, gt=0)
    retry: Mapping[str, RetryPolicy] = Field(default_factory=dict)
    home: Path = Path(".corral")
    env: Mapping[str, str] | None = None
    # Egress profiles (YAML) that tasks name with `profile:`; default: HOME/egress.yaml.
    egress_profiles: Path | None = None
    # Sandboxes kept booted per sandbox shape, so an attempt's start is a claim (0: off).
    warm_sandboxes: int = Field(default=2, ge=0)
    team_caps: Mapping[str, int] = Field(default_factory=dict)
    team_weights: Mapping[str, float] = Field(default_factory=dict)

    def retry_for(self, kind: str) -> RetryPolicy:
        return self.retry.get(kind) or self.retry.get("default") or RetryPolicy()
