"""Network for tasks that need it: each task names an egress profile (`profile:` in the
campaign file; `default` is closed); profiles come from a YAML file. One proxy serves the
whole worker and audits every request; each attempt gets its own channel (socket, byte
cap, allowlist), closed when the attempt ends.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from corral.domain import ConfigError
from corral.orchestrator.policy import AuditService
from corral.sandbox.egress import EgressChannel, EgressProfile, EgressProxy, load_profiles
from corral.store import TaskRow


@dataclass
class FleetEgress:
    profiles: Mapping[str, EgressProfile] = field(default_factory=dict)
    store: Any = None
    _proxy: EgressProxy | None = None

    @classmethod
    def from_file(
        cls, path: Path | None, store: Any, env: Mapping[str, str] | None = None
    ) -> FleetEgress:
        if path is None or not path.exists():
            return cls(store=store)
        return cls(load_profiles(path, env), store)

    async def channel_for(self, task: TaskRow, attempt_id: str) -> EgressChannel | None:
        return await self.channel(task.spec.profile, attempt_id, f"task {task.key}")

    def check(self, name: str, who: str = "this run") -> EgressProfile | None:
        """The profile `name` names (None when closed); ConfigError if there is none."""
        profile = self.profiles.get(name)
        if profile is None:
            if name == "default":
                return None
            raise ConfigError(f"{who}: no egress profile named {name!r}")
        return None if profile.closed else profile

    async def channel(
        self, name: str, attempt_id: str, who: str = "this run"
    ) -> EgressChannel | None:
        """A channel for one attempt through the shared proxy, or None (no network)."""
        profile = self.check(name, who)
        if profile is None:
            return None
        if self._proxy is None:
            hook = AuditService(self.store).egress if self.store is not None else None
            self._proxy = EgressProxy(on_record=hook)
        return await self._proxy.open_channel(profile, attempt_id)

    async def close(self) -> None:
        if self._proxy is not None:
            await self._proxy.close()
            self._proxy = None
