"""Helpers to run the real `corral` command in a subprocess, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

CORRAL = str(Path(sys.executable).parent / "corral")
ROOT = Path(__file__).resolve().parents[2]
DEMO = ROOT / "src" / "corral" / "examples" / "demo"


@dataclass
class Cli:
    home: Path
    env: dict[str, str]

    def __call__(self, *args: str, timeout: float = 120, extra_env: dict[str, str] | None = None):
        env = self.env | (extra_env or {})
        return subprocess.run(
            [CORRAL, *args, "--home", str(self.home)],
            capture_output=True,
            text=True,
            timeout=timeout,
            env=env,
            cwd=self.home.parent,
        )

    def json(self, *args: str, **kw: Any) -> tuple[int, dict[str, Any]]:
        p = self(*args, "--json", **kw)
        assert p.stdout.strip(), f"no JSON on stdout; stderr: {p.stderr}"
        return p.returncode, json.loads(p.stdout)


@pytest.fixture
def cli(tmp_path: Path) -> Cli:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("CORRAL_", "OPENAI", "ANTHROPIC"))
    }
    return Cli(home=tmp_path / ".corral", env=env)


def make_repo(dest: Path) -> Path:
    """A fresh git repo with the demo's failing tests."""
    import shutil

    shutil.copytree(DEMO / "repo", dest)
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]
    subprocess.run(["git", "init", "-q"], cwd=dest, check=True)
    subprocess.run([*git, "add", "-A"], cwd=dest, check=True)
    subprocess.run([*git, "commit", "-qm", "init"], cwd=dest, check=True)
    return dest


def write_script(path: Path, turns: list[dict[str, Any]]) -> Path:
    path.write_text(json.dumps(turns))
    return path
