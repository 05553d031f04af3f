"""Pipfile (`[packages]`, `[dev-packages]`) and setup.cfg (`install_requires`,
`extras_require`): declarations, usually ranges, so a Pipfile.lock or any other lock wins
over them and a range alone is reported as unpinned, like pyproject's."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from corral.workflows.cve.manifests.base import (
    LineFinder,
    ManifestResult,
    declare,
    load_manifest,
)

_NON_INDEX = ("git", "path", "file", "hg", "svn", "bzr", "url")


def read_pipfile(path: Path, root: Path) -> ManifestResult:
    result, name, text, data = load_manifest(path, root, tomllib.loads)
    if data is None:
        return result
    lines = LineFinder(text)
    for section in ("packages", "dev-packages"):
        body = data.get(section)
        if not isinstance(body, dict):
            continue
        start = lines.header(rf"\[{re.escape(section)}\]")
        for pkg, spec in body.items():
            line = lines.find(rf"^\s*[\"']?{re.escape(pkg)}[\"']?\s*=", start) or start
            _pipfile_dep(pkg, spec, name, line, result)
    return result


def _pipfile_dep(pkg: str, spec: Any, file: str, line: int, result: ManifestResult) -> None:
    markers = None
    if isinstance(spec, dict):
        kinds = [k for k in _NON_INDEX if k in spec]
        if kinds:
            result.skip(file, line, f"{pkg}: {kinds[0]} dependency not scannable")
            return
        markers = spec.get("markers") if isinstance(spec.get("markers"), str) else None
        spec = spec.get("version", "*")
    if not isinstance(spec, str):
        result.error(file, line, f"{pkg}: version {spec!r} is not a string")
        return
    text = "" if spec.strip() == "*" else spec.strip()
    try:
        result.declared.append(
            declare(pkg, text, file=file, line=line, source="Pipfile", markers=markers)
        )
    except ValueError as e:
        result.error(file, line, f"{pkg}: {e}")


_SECTION = re.compile(r"^\s*\[(?P<name>[^\]]+)\]\s*$")
_KEY = re.compile(r"^(?P<key>[A-Za-z0-9_.-]+)\s*[=:]\s*(?P<value>.*)$")


def read_setup_cfg(path: Path, root: Path) -> ManifestResult:
    """`[options] install_requires` and `[options.extras_require]`: one requirement a line
    (the key's own line included), each with the line it sits on."""
    result, name, text, data = load_manifest(path, root)
    if data is None:
        return result
    section = ""
    wanted = False
    for no, raw in enumerate(text.splitlines(), 1):
        if not raw.strip() or raw.lstrip().startswith(("#", ";")):
            continue
        if m := _SECTION.match(raw):
            section, wanted = m["name"].strip(), False
            continue
        if not raw[0].isspace():  # a new key
            m = _KEY.match(raw)
            key = m["key"] if m else ""
            wanted = (section == "options" and key == "install_requires") or (
                section == "options.extras_require" and m is not None
            )
            value = m["value"].strip() if m and wanted else ""
        elif wanted:
            value = raw.strip()
        else:
            continue
        if value and wanted:
            _setup_line(value, name, no, result)
    return result


def _setup_line(value: str, file: str, no: int, result: ManifestResult) -> None:
    value = re.sub(r"\s+#.*$", "", value).strip()
    if value.startswith("file:"):
        result.skip(file, no, f"requirements read from another file ({value}) are not followed")
        return
    try:
        req = Requirement(value)
    except InvalidRequirement as e:
        result.error(file, no, f"cannot parse requirement {value!r}: {str(e).splitlines()[0]}")
        return
    if req.url:
        result.skip(file, no, f"direct URL requirement not scannable: {value}")
        return
    markers = str(req.marker) if req.marker else None
    result.declared.append(
        declare(req.name, str(req.specifier), file=file, line=no, source="setup.cfg",
                markers=markers)
    )  # fmt: skip
