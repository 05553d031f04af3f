"""The bundled demo: a small repo with a failing test and a scripted agent that fixes it."""

from __future__ import annotations

import shutil
from pathlib import Path

DEMO_TASK = "The discount tests fail. Find the bug in the pricing code and fix it."


def _examples() -> Path:
    return Path(__file__).resolve().parent.parent / "examples" / "demo"


def prepare_demo(home: Path) -> tuple[Path, Path, str]:
    """A fresh copy of the sample repo under HOME/demo, so the bundled one is never changed."""
    src = _examples()
    dest = home / "demo" / "repo"
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(src / "repo", dest)
    return dest.resolve(), (src / "agent.yaml").resolve(), DEMO_TASK
