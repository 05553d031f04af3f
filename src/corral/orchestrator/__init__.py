"""Decides what runs where: single attempts, the fleet's scheduler, leases and retries.

The names below load on first use: every CLI command imports a piece of this package
(hooks, log redaction), and loading `run` with it cost each of them ~0.4 s.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from corral.orchestrator.run import ReplayResult, RunResult, replay_attempt, run_task

__all__ = ["ReplayResult", "RunResult", "replay_attempt", "run_task"]


def __getattr__(name: str) -> Any:
    if name not in __all__:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("corral.orchestrator.run"), name)
    globals()[name] = value
    return value
