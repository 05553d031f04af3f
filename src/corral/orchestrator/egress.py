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
        name = task.spec.profile
        profile = self.profiles.get(name)
        if profile is None:
            if name == "default":
                return None
            raise ConfigError(f"task {task.key}: no egress profile named {name!r}")
        if profile.closed:
            return None
        if self._proxy is None:
            hook = AuditService(self.store).egress if self.store is not None else None
            self._proxy = EgressProxy(on_record=hook)
        return await self._proxy.open_channel(profile, attempt_id)

    async def close(self) -> None:
        if self._proxy is not None:
            await self._proxy.close()
            self._proxy = None
