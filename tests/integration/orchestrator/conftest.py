"""Campaign fixtures: real repos, scripted agents, real stores and sandboxes."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import yaml

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def make_repo(path: Path, n: int = 0) -> Path:
    path.mkdir(parents=True)
    (path / "app.py").write_text(f"VALUE = {n}\n")
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=path, check=True)
    return path


def script(path: Path, commands: list[str], *, finish: bool = True) -> Path:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"tool": "bash", "args": {"command": c}}]} for c in commands
    ]
    if finish:
        turns.append({"tool_calls": [{"tool": "finish", "args": {"message": "done"}}]})
    path.write_text(json.dumps(turns))
    return path


def campaign_file(path: Path, body: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(body, sort_keys=False))
    return path
