"""Lock files: poetry.lock, uv.lock, Pipfile.lock, pylock.toml (PEP 751).

A lock names every installed package, transitive ones included, at one exact version, so
a lock entry always wins over a range for the same package.
"""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path

from packaging.utils import canonicalize_name

from corral.workflows.cve.manifests.base import (
    Declared,
    LineFinder,
    ManifestResult,
    Source,
    load_manifest,
)

_NON_INDEX = ("git", "path", "directory", "url", "file", "editable", "virtual", "vcs", "archive")


def _toml_packages(path: Path, root: Path, table: str, source: Source) -> ManifestResult:
    """poetry.lock / uv.lock / pylock.toml share a shape: [[package(s)]] name + version."""
    result, name, text, data = load_manifest(path, root, tomllib.loads)
    if not isinstance(data, dict):
        return result
    lines = LineFinder(text)
    header = re.compile(rf"^\s*\[\[{table}\]\]")
    for entry in data.get(table) or []:
        if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
            continue
        pkg = entry["name"]
        block = lines.find(header.pattern)
        key = rf"^\s*name\s*=\s*[\"']{re.escape(pkg)}[\"']"
        line = lines.find(key, block or 1) or block or 1
        source_info = entry.get("source")
        kinds = [k for k in _NON_INDEX if k in entry]
        if isinstance(source_info, dict):
            if source_info.get("type") in _NON_INDEX:  # poetry
                kinds.append(str(source_info["type"]))
            kinds += [k for k in _NON_INDEX if k in source_info]  # uv
        version = entry.get("version")
        if kinds and kinds[0] in ("editable", "virtual") and source == "uv.lock":
            continue  # the project itself, not a dependency
        if kinds:
            result.skip(name, line, f"{pkg}: {kinds[0]} source, not an index release")
            continue
        if not isinstance(version, str) or not version:
            result.error(name, line, f"{pkg}: lock entry without a version")
            continue
        marker = entry.get("marker") or entry.get("markers")
        result.declared.append(
            Declared(
                name=canonicalize_name(pkg),
                file=name,
                line=line,
                source=source,
                version=version,
                specs=(f"=={version}",),
                markers=str(marker) if marker else None,
            )
        )
    return result


def read_poetry_lock(path: Path, root: Path) -> ManifestResult:
    return _toml_packages(path, root, "package", "poetry.lock")


def read_uv_lock(path: Path, root: Path) -> ManifestResult:
    return _toml_packages(path, root, "package", "uv.lock")


def read_pylock(path: Path, root: Path) -> ManifestResult:
    return _toml_packages(path, root, "packages", "pylock.toml")


def read_pipfile_lock(path: Path, root: Path) -> ManifestResult:
    """Pipfile.lock: JSON, `default` and `develop` maps of name -> {version: "==X", ...}."""
    result, name, text, data = load_manifest(path, root, json.loads)
    if not isinstance(data, dict):
        if data is not None:
            result.error(name, 1, "Pipfile.lock is not a JSON object")
        return result
    lines = LineFinder(text)
    for section in ("default", "develop"):
        start = lines.find(rf"^\s*\"{section}\"\s*:", consume=False) or 1
        body = data.get(section)
        if not isinstance(body, dict):
            continue
        for pkg, info in body.items():
            line = lines.find(rf"^\s*\"{re.escape(pkg)}\"\s*:", start) or start
            if not isinstance(info, dict):
                result.error(name, line, f"{pkg}: entry is not an object")
                continue
            kinds = [k for k in _NON_INDEX if k in info]
            version = info.get("version")
            if kinds or version is None:
                why = f"{kinds[0]} source" if kinds else "no version"
                result.skip(name, line, f"{pkg}: {why}, not an index release")
                continue
            pinned = str(version).removeprefix("===").removeprefix("==").strip()
            if not pinned or any(c in pinned for c in "<>!~*,"):
                result.error(name, line, f"{pkg}: lock version {version!r} is not an exact pin")
                continue
            result.declared.append(
                Declared(
                    name=canonicalize_name(pkg),
                    file=name,
                    line=line,
                    source="Pipfile.lock",
                    version=pinned,
                    specs=(f"=={pinned}",),
                    markers=str(info["markers"]) if info.get("markers") else None,
                )
            )
    return result
