"""pyproject.toml: PEP 621 dependencies and extras, PEP 735 groups, Poetry dependencies."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from corral.workflows.cve.manifests.base import (
    Declared,
    LineFinder,
    ManifestResult,
    declare,
    load_manifest,
)


def read_pyproject(path: Path, root: Path) -> ManifestResult:
    """Every dependency the file declares, each with the line it sits on."""
    result, name, text, data = load_manifest(path, root, tomllib.loads)
    if data is None:
        return result
    lines = LineFinder(text)
    project = _table(data.get("project"))
    _pep508_list(project.get("dependencies"), lines, r"\[project\]", name, result)
    for _extra, deps in _table(project.get("optional-dependencies")).items():
        _pep508_list(deps, lines, r"\[project\.optional-dependencies\]", name, result)
    for _group, deps in _table(data.get("dependency-groups")).items():
        _pep508_list(deps, lines, r"\[dependency-groups\]", name, result)
    tool = _table(data.get("tool"))
    _pep508_list(
        _table(tool.get("uv")).get("dev-dependencies"), lines, r"\[tool\.uv\]", name, result
    )
    poetry = _table(tool.get("poetry"))
    _poetry_table(
        poetry.get("dependencies"), lines, r"\[tool\.poetry\.dependencies\]", name, result
    )
    _poetry_table(
        poetry.get("dev-dependencies"), lines, r"\[tool\.poetry\.dev-dependencies\]", name, result
    )
    for group, body in _table(poetry.get("group")).items():
        header = rf"\[tool\.poetry\.group\.[\"']?{re.escape(group)}[\"']?\.dependencies\]"
        _poetry_table(_table(body).get("dependencies"), lines, header, name, result)
    return result


def _table(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _pep508_list(
    deps: Any, lines: LineFinder, header: str, name: str, result: ManifestResult
) -> None:
    if not isinstance(deps, list):
        return
    start = lines.header(header)
    for dep in deps:
        if not isinstance(dep, str):
            continue  # PEP 735 {include-group = ...}
        line = lines.quoted(dep, start)
        try:
            req = Requirement(dep)
        except InvalidRequirement as e:
            result.error(name, line, f"cannot parse requirement {dep!r}: {str(e).splitlines()[0]}")
            continue
        if req.url:
            result.skip(name, line, f"direct URL requirement not scannable: {dep}")
            continue
        markers = str(req.marker) if req.marker else None
        result.declared.append(
            declare(
                req.name,
                str(req.specifier),
                file=name,
                line=line,
                source="pyproject",
                markers=markers,
            )
        )


def _poetry_table(
    deps: Any, lines: LineFinder, header: str, name: str, result: ManifestResult
) -> None:
    if not isinstance(deps, dict):
        return
    start = lines.header(header)
    for pkg, spec in deps.items():
        if canonicalize_name(pkg) == "python":
            continue
        key = rf"^\s*[\"']?{re.escape(pkg)}[\"']?\s*="
        line = lines.find(key, start) or start
        for entry in spec if isinstance(spec, list) else [spec]:
            constraint = entry.get("version") if isinstance(entry, dict) else entry
            if isinstance(entry, dict) and constraint is None:
                kinds = sorted(k for k in ("git", "path", "url", "file") if k in entry)
                result.skip(
                    name, line, f"{pkg}: {'/'.join(kinds) or 'non-index'} dependency not scannable"
                )
                continue
            try:
                result.declared.append(_poetry_dep(pkg, str(constraint), name, line))
            except ValueError as e:
                result.error(name, line, f"{pkg}: {e}")


def _poetry_dep(pkg: str, constraint: str, file: str, line: int) -> Declared:
    alternatives = [poetry_to_pep440(part) for part in constraint.split("||")]
    base = declare(pkg, alternatives[0], file=file, line=line, source="poetry")
    if len(alternatives) == 1:
        return base
    for alt in alternatives[1:]:
        declare(pkg, alt, file=file, line=line, source="poetry")  # validates
    return Declared(base.name, file, line, "poetry", None, tuple(alternatives))


_VERSION = r"[0-9][0-9A-Za-z.*+!-]*"


def poetry_to_pep440(constraint: str) -> str:
    """Poetry's `^1.2`, `~1.2`, bare `1.2.3`, `1.2.*`, `>=1,<2` as a PEP 440 specifier."""
    out: list[str] = []
    for part in re.split(r"\s*,\s*|\s+(?=[<>=!~^0-9])", constraint.strip()):
        part = part.strip()
        if part in ("", "*"):
            continue
        if m := re.fullmatch(rf"\^\s*({_VERSION})", part):
            out.append(_caret(m.group(1)))
        elif m := re.fullmatch(rf"~(?!=)\s*({_VERSION})", part):
            out.append(_tilde(m.group(1)))
        elif re.fullmatch(_VERSION, part):
            out.append(f"=={part}")
        elif re.fullmatch(rf"(==|!=|>=|<=|>|<|~=|===)\s*{_VERSION}", part):
            out.append(part.replace(" ", ""))
        else:
            raise ValueError(f"cannot read Poetry constraint {constraint!r}")
    return ",".join(out)


def _numbers(version: str) -> list[int]:
    nums = [int(n) for n in re.findall(r"\d+", version.split("-")[0])[:3]]
    return nums or [0]


def _caret(version: str) -> str:
    """^1.2.3 -> <2; ^0.2.3 -> <0.3; ^0.0.3 -> <0.0.4: the leftmost non-zero part is kept."""
    nums = _numbers(version)
    width = len(nums)
    for i, n in enumerate(nums):
        if n != 0 or i == width - 1:
            upper = [*nums[:i], n + 1]
            break
    return f">={version},<{'.'.join(map(str, upper))}"


def _tilde(version: str) -> str:
    """~1.2.3 -> <1.3; ~1.2 -> <1.3; ~1 -> <2."""
    nums = _numbers(version)
    upper = [nums[0] + 1] if len(nums) == 1 else [nums[0], nums[1] + 1]
    return f">={version},<{'.'.join(map(str, upper))}"
