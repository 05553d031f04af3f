"""Where a migration has work to do: every match of the refactor's regex, file by file.

A migration has to find *every* site, so unlike the agent's repo map nothing is capped
by count: the files are git's tracked files when the repo is a git checkout (what a
pull request could change), otherwise a walk that skips the usual vendored and build
dirs. Binary files are skipped; files over `MAX_FILE_BYTES` or unreadable are skipped
and reported. Host git runs with `GIT_FLAGS`: a repo's own config never runs anything.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from corral.agent.repomap import SKIP_DIRS, SKIP_EXT
from corral.domain import ConfigError
from corral.workflows.hostgit import GitError, git_out, toplevel
from corral.workflows.refactor.spec import RefactorSpec

MAX_FILE_BYTES = 2_000_000
MAX_LINE_CHARS = 160


@dataclass(frozen=True)
class Site:
    line: int
    text: str  # the matched line, stripped and cut to MAX_LINE_CHARS


@dataclass(frozen=True)
class FileSites:
    path: str  # relative to the repo, with forward slashes
    sites: tuple[Site, ...]


@dataclass
class Found:
    files: list[FileSites] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)  # path -> why it was not read
    searched: int = 0


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A path glob: `**/` any dirs (or none), `*` and `?` within one path segment."""
    out, i = "", 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out, i = out + "(?:.*/)?", i + 3
        elif pattern.startswith("**", i):
            out, i = out + ".*", i + 2
        elif pattern[i] == "*":
            out, i = out + "[^/]*", i + 1
        elif pattern[i] == "?":
            out, i = out + "[^/]", i + 1
        else:
            out, i = out + re.escape(pattern[i]), i + 1
    return re.compile(out + r"\Z")


def repo_files(repo: Path) -> list[str]:
    """Tracked files of a git checkout (its root only), else every file outside skipped
    dirs; sorted."""
    top = toplevel(repo)
    if top is not None:
        if top != repo.resolve():
            raise ConfigError(f"{repo} is inside the git repository {top}: give its root")
        try:
            out = git_out(repo, "ls-files", "-z", "--cached")
        except GitError as exc:
            raise ConfigError(str(exc)) from None
        return sorted(p for p in out.decode("utf-8", "surrogateescape").split("\0") if p)
    found: list[str] = []
    for dirpath, dirnames, filenames in os.walk(repo, followlinks=False):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS and not d.endswith(".egg-info")]
        rel = Path(dirpath).relative_to(repo)
        found.extend((rel / name).as_posix() for name in filenames)
    return sorted(found)


def selected(paths: list[str], spec: RefactorSpec) -> list[str]:
    include = [glob_regex(g) for g in spec.paths]
    exclude = [glob_regex(g) for g in spec.exclude]
    return [
        p for p in paths
        if any(r.match(p) for r in include) and not any(r.match(p) for r in exclude)
    ]  # fmt: skip


def find_sites(repo: Path, spec: RefactorSpec, paths: list[str] | None = None) -> Found:
    """Every match of `spec.find` in the selected files, in path order."""
    pattern = spec.pattern
    found = Found()
    for rel in selected(paths if paths is not None else repo_files(repo), spec):
        full = repo / rel
        if Path(rel).suffix.lower() in SKIP_EXT or full.is_symlink() or not full.is_file():
            continue
        try:
            if full.stat().st_size > MAX_FILE_BYTES:
                found.skipped[rel] = f"larger than {MAX_FILE_BYTES} bytes"
                continue
            data = full.read_bytes()
        except OSError as exc:
            found.skipped[rel] = f"unreadable ({exc.strerror or type(exc).__name__})"
            continue
        found.searched += 1
        if b"\0" in data[:8192]:
            continue  # binary: no text to migrate
        text = data.decode("utf-8", "replace")
        sites = _sites(text, pattern)
        if sites:
            found.files.append(FileSites(rel, sites))
    return found


def _sites(text: str, pattern: re.Pattern[str]) -> tuple[Site, ...]:
    sites: list[Site] = []
    line, pos, last_line = 1, 0, 0
    for m in pattern.finditer(text):
        if m.start() == m.end() and not m.group(0):
            continue  # an empty match marks no site
        line += text.count("\n", pos, m.start())
        pos = m.start()
        if line == last_line:
            continue  # one site per line
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.start())
        shown = text[start : end if end >= 0 else len(text)].strip()
        sites.append(Site(line, shown[:MAX_LINE_CHARS]))
        last_line = line
    return tuple(sites)
