"""Find and read the dependency manifests of a repository."""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from corral.workflows.cve.manifests.base import (
    LOCK_SOURCES,
    Declared,
    ManifestResult,
    rel,
    repo_file,
)
from corral.workflows.cve.manifests.locks import (
    read_pipfile_lock,
    read_poetry_lock,
    read_pylock,
    read_uv_lock,
)
from corral.workflows.cve.manifests.pyproject import poetry_to_pep440, read_pyproject
from corral.workflows.cve.manifests.requirements import read_requirements
from corral.workflows.cve.manifests.setup_files import read_pipfile, read_setup_cfg

# Directories that hold other people's code or build output, never the project's manifests.
SKIP_DIRS = frozenset(
    {
        ".git",
        ".hg",
        ".svn",
        ".venv",
        "venv",
        "env",
        ".tox",
        ".nox",
        "node_modules",
        "site-packages",
        "__pycache__",
        ".mypy_cache",
        ".ruff_cache",
        ".pytest_cache",
        ".corral",
        "build",
        "dist",
    }
)
_READERS: dict[str, Callable[[Path, Path], ManifestResult]] = {
    "pyproject.toml": read_pyproject,
    "poetry.lock": read_poetry_lock,
    "uv.lock": read_uv_lock,
    "Pipfile.lock": read_pipfile_lock,
    "pylock.toml": read_pylock,
    "Pipfile": read_pipfile,
    "setup.cfg": read_setup_cfg,
}


def is_manifest(path: Path) -> bool:
    name = path.name
    if name in _READERS or fnmatch.fnmatch(name, "pylock.*.toml"):
        return True
    return name.endswith(".txt") and (
        "requirements" in name or path.parent.name in ("requirements", "reqs")
    )


def discover(root: Path) -> Iterator[Path]:
    """Manifests under root in a stable order, skipping vendored and virtualenv folders."""
    if root.is_file():
        yield root
        return
    for here, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if d not in SKIP_DIRS and not d.endswith(".egg-info"))
        for f in sorted(files):
            p = Path(here, f)
            if is_manifest(p):
                yield p


def read_repo(root: Path) -> ManifestResult:
    """Every manifest of a repository (or a single manifest file), read once each."""
    result = ManifestResult()
    base = root.parent if root.is_file() else root
    seen: set[Path] = set()
    for path in discover(root):
        if path.name.endswith(".txt"):
            result.extend(read_requirements(path, base, seen))
            continue
        reader = _READERS.get(path.name, read_pylock)
        result.extend(reader(path, base))
    return result


__all__ = [
    "LOCK_SOURCES",
    "Declared",
    "ManifestResult",
    "discover",
    "poetry_to_pep440",
    "read_repo",
    "rel",
    "repo_file",
]
