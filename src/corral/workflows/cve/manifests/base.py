"""What every manifest reader returns: declared dependencies plus the lines it could not use."""

from __future__ import annotations

import functools
import json
import re
import tomllib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name

from corral.workflows.cve.models import ScanIssue

Source = Literal[
    "requirements",
    "constraints",
    "pyproject",
    "poetry",
    "Pipfile",
    "setup.cfg",
    "poetry.lock",
    "uv.lock",
    "Pipfile.lock",
    "pylock.toml",
]
LOCK_SOURCES: frozenset[str] = frozenset({"poetry.lock", "uv.lock", "Pipfile.lock", "pylock.toml"})


@dataclass(frozen=True, slots=True)
class Declared:
    """A dependency as one manifest line states it."""

    name: str  # PEP 503 normalised
    file: str  # relative to the scan root
    line: int
    source: Source
    version: str | None = None  # exact pin (==X, ===X, or a lock entry)
    # Alternatives (poetry's `||`); each a PEP 440 specifier string. Empty: anything.
    specs: tuple[str, ...] = ()
    markers: str | None = None

    @property
    def is_lock(self) -> bool:
        return self.source in LOCK_SOURCES

    @property
    def spec_text(self) -> str:
        return " || ".join(s for s in self.specs if s) or "*"


@dataclass(slots=True)
class ManifestResult:
    """The output of reading one manifest (and, for requirements, its includes)."""

    declared: list[Declared] = field(default_factory=list)
    issues: list[ScanIssue] = field(default_factory=list)
    files: list[str] = field(default_factory=list)

    def error(self, file: str, line: int, message: str) -> None:
        self.issues.append(ScanIssue(kind="error", file=file, line=line, message=message))

    def skip(self, file: str, line: int, message: str) -> None:
        self.issues.append(ScanIssue(kind="skipped", file=file, line=line, message=message))

    def extend(self, other: ManifestResult) -> None:
        self.declared.extend(other.declared)
        self.issues.extend(other.issues)
        self.files.extend(other.files)


def rel(path: Path, root: Path) -> str:
    """A path as findings show it: relative to the root when inside it, POSIX style."""
    try:
        return path.resolve().relative_to(root.resolve()).as_posix()
    except ValueError:
        return path.as_posix()


def inside(path: Path, root: Path) -> bool:
    """Whether the file really lies in the repository, links followed. Why: a repo's
    manifest may be a link (or include a path) to any file of the host, and what a
    manifest holds ends up in reports, prompts and pull requests."""
    return path.resolve().is_relative_to(root.resolve())


def repo_file(path: Path, root: Path) -> bool:
    """A regular file that really lies in the repository: the only thing the host reads
    of a repo (a FIFO or /dev/zero would have it read forever)."""
    return path.is_file() and inside(path, root)


def pin_of(spec: SpecifierSet) -> str | None:
    """The exact version a specifier set allows, if it pins one (`==1.2`, `===1.2`)."""
    items = list(spec)
    if len(items) == 1 and items[0].operator in ("==", "===") and "*" not in items[0].version:
        return items[0].version
    return None


def declare(
    name: str,
    spec: str,
    *,
    file: str,
    line: int,
    source: Source,
    markers: str | None = None,
) -> Declared:
    """A range-or-pin dependency; raises ValueError on an invalid specifier."""
    try:
        parsed = SpecifierSet(spec)
    except InvalidSpecifier as e:
        raise ValueError(f"invalid version specifier {spec!r}") from e
    return Declared(
        name=canonicalize_name(name),
        file=file,
        line=line,
        source=source,
        version=pin_of(parsed),
        specs=(str(parsed),) if str(parsed) else (),
        markers=markers,
    )


def load_manifest(
    path: Path, root: Path, parse: Callable[[str], Any] | None = None
) -> tuple[ManifestResult, str, str, Any]:
    """(result, name, text, data) of a manifest, read and parsed. A file that cannot be
    read or parsed is an error in `result` with `data` None, never an exception, so the
    other manifests' findings still come back. Without `parse`, `data` is the text."""
    result = ManifestResult()
    name = rel(path, root)
    if not repo_file(path, root):
        shown = path.relative_to(root).as_posix() if path.is_relative_to(root) else name
        why = "not a regular file" if inside(path, root) else "links outside the repository"
        result.error(shown, 1, f"{why}: not read")
        return result, shown, "", None
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as e:
        result.error(name, 1, f"cannot read: {e.strerror or e}")
        return result, name, "", None
    try:
        data = parse(text) if parse is not None else text
    except tomllib.TOMLDecodeError as e:
        result.error(name, toml_error_line(str(e)), f"invalid TOML: {e}")
        return result, name, text, None
    except json.JSONDecodeError as e:
        result.error(name, e.lineno, f"invalid JSON: {e.msg}")
        return result, name, text, None
    result.files.append(name)
    return result, name, text, data


def toml_error_line(message: str) -> int:
    """tomllib reports `(at line N, column M)`; pull N out so the error points somewhere."""
    m = re.search(r"line (\d+)", message)
    return int(m.group(1)) if m else 1


# Per-package patterns outnumber re's own cache in a fleet scan; keep more of them.
_compile = functools.lru_cache(maxsize=16384)(re.compile)


class LineFinder:
    """Finds the line of a value in a TOML/JSON text that the parser gave us without lines.

    Each hit is consumed, so a string that appears twice maps to its two lines in order.
    """

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()
        self._used: set[int] = set()

    def header(self, pattern: str) -> int:
        rx = _compile(pattern)
        for i, line in enumerate(self.lines):
            if rx.match(line.strip()):
                return i + 1
        return 1

    def find(self, pattern: str, start: int = 1, *, consume: bool = True) -> int | None:
        rx = _compile(pattern)
        for i in range(max(start - 1, 0), len(self.lines)):
            if i not in self._used and rx.search(self.lines[i]):
                if consume:
                    self._used.add(i)
                return i + 1
        return None

    def quoted(self, value: str, start: int = 1) -> int:
        q = re.escape(value)
        return self.find(f"[\"']{q}[\"']", start) or start
