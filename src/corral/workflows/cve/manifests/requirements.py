"""pip requirements files: includes, constraints, hashes, markers, extras, continuations.

Only the lines pip itself would install from the index are scannable; URLs, VCS links,
local paths and editables are reported as skipped, never guessed at.
"""

from __future__ import annotations

import re
from pathlib import Path

from packaging.requirements import InvalidRequirement, Requirement

from corral.workflows.cve.manifests.base import (
    ManifestResult,
    Source,
    declare,
    inside,
    load_manifest,
)

_COMMENT = re.compile(r"(^|\s+)#.*$")
_INCLUDE = re.compile(r"^(-r|--requirement|-c|--constraint)(?:\s*=\s*|\s+|(?=[^\s=-]))(.+)$")
_EDITABLE = re.compile(r"^(-e|--editable)\b")
# Per-requirement options (`--hash=...`, `--config-settings ...`) start the tail we drop.
_OPTION_TAIL = re.compile(r"\s+--?[A-Za-z][\w-]*(?:[=\s].*)?$")
_DIRECT = re.compile(r"^([a-z][a-z0-9+.-]*://|git\+|hg\+|svn\+|bzr\+|file:|\.{0,2}/)", re.I)
_ARCHIVE = re.compile(r"\.(whl|zip|tar\.gz|tgz|tar\.bz2)$", re.I)


def logical_lines(text: str) -> list[tuple[int, str]]:
    """Join backslash continuations, drop comments; each line keeps its first line number."""
    out: list[tuple[int, str]] = []
    buf: list[str] = []
    start = 0
    for no, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = no
        line = _COMMENT.sub("", raw)
        if line.endswith("\\"):
            buf.append(line[:-1])
            continue
        buf.append(line)
        joined = " ".join(part.strip() for part in buf).strip()
        buf = []
        if joined:
            out.append((start, joined))
    if buf:
        joined = " ".join(part.strip() for part in buf).strip()
        if joined:
            out.append((start, joined))
    return out


def read_requirements(
    path: Path, root: Path, seen: set[Path], source: Source = "requirements"
) -> ManifestResult:
    """Read one requirements file and, recursively, the files it includes (once each)."""
    real = path.resolve()
    if real in seen:
        return ManifestResult()
    seen.add(real)
    result, name, text, data = load_manifest(path, root)
    if data is None:
        return result
    for no, line in logical_lines(text):
        inc = _INCLUDE.match(line)
        if inc:
            target = inc.group(2).strip()
            kind: Source = "constraints" if inc.group(1) in ("-c", "--constraint") else source
            if _DIRECT.match(target) and "://" in target:
                result.skip(name, no, f"remote include {target} not fetched")
                continue
            included = (path.parent / target).resolve()
            if not inside(included, root):
                result.error(
                    name, no, f"included file {target} is outside the repository: not read"
                )
                continue
            if not included.is_file():
                result.error(name, no, f"included file {target} not found")
                continue
            result.extend(read_requirements(included, root, seen, kind))
            continue
        if _EDITABLE.match(line):
            result.skip(name, no, f"editable requirement not scannable: {line}")
            continue
        if line.startswith("-"):
            continue  # index and install options: not dependencies
        _one(line, no, name, source, result)
    return result


def _one(line: str, no: int, name: str, source: Source, result: ManifestResult) -> None:
    spec = _OPTION_TAIL.sub("", line).strip()
    if _DIRECT.match(spec) or _ARCHIVE.search(spec.split(";")[0].strip()):
        result.skip(name, no, f"URL/VCS/path requirement not scannable: {spec}")
        return
    try:
        req = Requirement(spec)
    except InvalidRequirement as e:
        first = str(e).splitlines()[0]
        result.error(name, no, f"cannot parse requirement {spec!r}: {first}")
        return
    if req.url:
        result.skip(name, no, f"direct URL requirement not scannable: {req.name} @ {req.url}")
        return
    markers = str(req.marker) if req.marker else None
    result.declared.append(
        declare(req.name, str(req.specifier), file=name, line=no, source=source, markers=markers)
    )
