"""Real git repositories and staged diffs for the secret-in-diff tests."""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from pathlib import Path

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-c", "commit.gpgsign=false"]


def _write(repo: Path, files: Mapping[str, str | bytes]) -> None:
    for name, data in files.items():
        path = repo / name
        if isinstance(data, bytes):
            path.write_bytes(data)
        else:
            path.write_text(data)


def make_repo(tmp_path: Path, files: Mapping[str, str | bytes]) -> Path:
    """A repository at tmp_path/repo with `files` committed."""
    repo = tmp_path / "repo"
    repo.mkdir()
    _write(repo, files)
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=repo, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=repo, check=True)
    return repo


def staged_diff(repo: Path, files: Mapping[str, str | bytes], *, binary: bool = False) -> str:
    """The diff of writing `files` (`binary`: as the workspace takes it), then undone."""
    _write(repo, files)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    flags = ["--binary"] if binary else []
    out = subprocess.run(
        ["git", "diff", "--cached", *flags], cwd=repo, check=True, capture_output=True
    )
    subprocess.run(["git", "reset", "-q", "--hard"], cwd=repo, check=True)
    return out.stdout.decode()
