"""A local OSV database (directory or zip export), indexed by package and parsed lazily.

Opening reads every file's text once (cheap) and pulls candidate package names out with a
regex; YAML/JSON parsing (the expensive part, ~3 s for the whole PyPA snapshot) happens only
for the packages a scan asks about, and once per file. A file whose text yields no candidate
name is parsed at open, so the lazy index can never hide an advisory.
"""

from __future__ import annotations

import io
import json
import re
import zipfile
from collections import defaultdict
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name

from corral.domain import ConfigError
from corral.workflows.cve.osv.advisory import Advisory, AdvisoryFormatError, parse_advisory

_SUFFIXES = (".json", ".yaml", ".yml")
# Starts with a literal so the scan is fast; over-matching (e.g. `filename:`) is harmless.
_NAME_HINT = re.compile(r"""name["']?\s*:\s*["']?([A-Za-z0-9][A-Za-z0-9._-]*)""")
_PURL_HINT = re.compile(r"pkg:pypi/([A-Za-z0-9][A-Za-z0-9._-]*)")

_Base: Any = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _StringyLoader(_Base):  # type: ignore[misc]
    """Safe YAML where `1.10` stays the string "1.10" instead of becoming the float 1.1."""


_StringyLoader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if not tag.endswith((":int", ":float"))]
    for first, resolvers in _Base.yaml_implicit_resolvers.items()
}


def load_record(name: str, text: str) -> Any:
    """Decode one OSV file by its extension."""
    if name.endswith(".json"):
        return json.loads(text)
    return yaml.load(text, Loader=_StringyLoader)


@dataclass(slots=True)
class _File:
    name: str
    text: str | None
    advisories: tuple[Advisory, ...] | None = None


class OsvDatabase:
    """The advisories of a local OSV export; also an `AdvisorySource`."""

    def __init__(self, files: list[tuple[str, str]], label: str) -> None:
        self._label = label
        self._files = [_File(n, t) for n, t in files]
        self._by_package: dict[str, list[int]] = defaultdict(list)
        self._cache: dict[str, tuple[Advisory, ...]] = {}
        self.errors: list[str] = []  # files that could not be parsed, with why
        for i, f in enumerate(self._files):
            text = f.text or ""
            hints: set[str] = {canonicalize_name(m) for m in _NAME_HINT.findall(text)}
            hints.update(canonicalize_name(m) for m in _PURL_HINT.findall(text))
            if not hints:
                hints = {a for adv in self._parse(f) for a in adv.packages()}
            for h in hints:
                self._by_package[h].append(i)

    @classmethod
    def open(cls, path: Path) -> OsvDatabase:
        """Open a directory of OSV files (searched recursively) or a zip export of them."""
        if path.is_dir():
            files = [
                (str(p.relative_to(path)), p.read_text(encoding="utf-8", errors="replace"))
                for p in sorted(path.rglob("*"))
                if p.suffix in _SUFFIXES and p.is_file()
            ]
        elif path.is_file() and zipfile.is_zipfile(path):
            files = _read_zip(path.read_bytes())
        elif path.exists():
            raise ConfigError(f"advisory database {path} is neither a directory nor a zip file")
        else:
            raise ConfigError(f"advisory database {path} does not exist")
        if not files:
            raise ConfigError(f"advisory database {path} holds no OSV .json/.yaml files")
        return cls(files, label=str(path))

    @property
    def label(self) -> str:
        return self._label

    def __len__(self) -> int:
        return len(self._files)

    def for_package(self, package: str) -> tuple[Advisory, ...]:
        """Live advisories for one package (withdrawn ones dropped), parsed on first ask."""
        name = canonicalize_name(package)
        hit = self._cache.get(name)
        if hit is None:
            found: dict[str, Advisory] = {}
            for i in self._by_package.get(name, ()):
                for adv in self._parse(self._files[i]):
                    if not adv.withdrawn and name in adv.packages():
                        found.setdefault(adv.id, adv)
            hit = tuple(sorted(found.values(), key=lambda a: a.id))
            self._cache[name] = hit
        return hit

    async def advisories(self, packages: Collection[str]) -> dict[str, tuple[Advisory, ...]]:
        return {canonicalize_name(p): self.for_package(p) for p in packages}

    def all_advisories(self) -> list[Advisory]:
        """Parse everything (slow; for checks and exports), withdrawn ones included."""
        return [a for f in self._files for a in self._parse(f)]

    def candidates(self, package: str) -> list[str]:
        """The files the index would parse for a package (for tests of the index)."""
        return [self._files[i].name for i in self._by_package.get(canonicalize_name(package), ())]

    def _parse(self, f: _File) -> tuple[Advisory, ...]:
        if f.advisories is None:
            try:
                data = load_record(f.name, f.text or "")
                records = data if isinstance(data, list) else [data]
                f.advisories = tuple(parse_advisory(r) for r in records)
            except (yaml.YAMLError, json.JSONDecodeError, AdvisoryFormatError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                self.errors.append(f"{f.name}: {first}")
                f.advisories = ()
            f.text = None
        return f.advisories


def _read_zip(blob: bytes) -> list[tuple[str, str]]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return [
            (info.filename, zf.read(info).decode("utf-8", errors="replace"))
            for info in zf.infolist()
            if not info.is_dir() and info.filename.endswith(_SUFFIXES)
        ]
