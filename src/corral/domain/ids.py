"""Short, sortable, prefixed ids: a reader can tell an attempt id from a task id."""

from __future__ import annotations

import os
import time


def new_id(prefix: str) -> str:
    """`prefix_` + 12 hex chars of milliseconds + 8 random hex chars (sortable by time)."""
    return f"{prefix}_{int(time.time() * 1000):012x}{os.urandom(4).hex()}"
