"""corral: run fleets of autonomous coding agents safely.

import asyncio, corral
result = asyncio.run(corral.run_task("fix the failing test", "./repo",
                                     model="scripted:./agent.yaml"))
print(result.status, result.diff)
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"
__all__ = ["RunResult", "replay_attempt", "run_task"]


def __getattr__(name: str) -> Any:
    # Lazy, so `import corral.domain` stays light for the layers below.
    if name in __all__:
        from corral import orchestrator

        return getattr(orchestrator, name)
    raise AttributeError(name)
