"""A local OSV database (directory or zip export), indexed by package and parsed lazily.

Opening reads every file's text once (cheap) and pulls candidate package names out with a
regex; YAML/JSON parsing (the expensive part, ~3 s for the whole PyPA snapshot) happens only
for the packages a scan asks about, and once per file. A file whose text yields no candidate
name is parsed at open, so the lazy index can never hide an advisory.

`save_cache()` parses everything once and writes the raw records as one JSON file keyed by
the directory's fingerprint (names, sizes, mtimes); a later `open()` of the unchanged
directory loads that instead of re-parsing YAML (~0.3 s instead of ~3 s for the snapshot).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
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


CACHE_FORMAT = 1


def default_cache_dir() -> Path:
    """$CORRAL_CACHE_DIR, else $XDG_CACHE_HOME/corral, else ~/.cache/corral."""
    if os.environ.get("CORRAL_CACHE_DIR"):
        return Path(os.environ["CORRAL_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "corral"


@dataclass(slots=True)
class _File:
    name: str
    text: str | None
    advisories: tuple[Advisory, ...] | None = None
    raw: Any = None  # the decoded record(s), when they came from the cache


class OsvDatabase:
    """The advisories of a local OSV export; also an `AdvisorySource`."""

    def __init__(
        self,
        files: list[tuple[str, str]],
        label: str,
        *,
        cache_file: Path | None = None,
        raw: dict[str, Any] | None = None,
    ) -> None:
        self._label = label
        self._cache_file = cache_file
        self.cached = raw is not None
        if raw is not None:
            self._files = [_File(n, None, raw=r) for n, r in raw.items()]
        else:
            self._files = [_File(n, t) for n, t in files]
        self._by_package: dict[str, list[int]] = defaultdict(list)
        self._cache: dict[str, tuple[Advisory, ...]] = {}
        self.errors: list[str] = []  # files that could not be parsed, with why
        for i, f in enumerate(self._files):
            if f.raw is not None:
                for h in _raw_names(f.raw):
                    self._by_package[h].append(i)
                continue
            text = f.text or ""
            hints: set[str] = {canonicalize_name(m) for m in _NAME_HINT.findall(text)}
            hints.update(canonicalize_name(m) for m in _PURL_HINT.findall(text))
            if not hints:
                hints = {a for adv in self._parse(f) for a in adv.packages()}
            for h in hints:
                self._by_package[h].append(i)

    @classmethod
    def open(cls, path: Path, *, cache_dir: Path | None = None) -> OsvDatabase:
        """Open a directory of OSV files (searched recursively) or a zip export of them.

        A directory uses its parse cache (see `save_cache`) when one matches its contents.
        """
        if path.is_dir():
            found = sorted(p for p in path.rglob("*") if p.suffix in _SUFFIXES and p.is_file())
            cache_file = _cache_file(path, found, cache_dir or default_cache_dir())
            raw = _read_cache(cache_file)
            if raw is not None:
                return cls([], label=str(path), cache_file=cache_file, raw=raw)
            files = [
                (str(p.relative_to(path)), p.read_text(encoding="utf-8", errors="replace"))
                for p in found
            ]
            if files:
                return cls(files, label=str(path), cache_file=cache_file)
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

    def all_advisories(self) -> list[tuple[str, Advisory]]:
        """(file, advisory) for everything, withdrawn included; parses all (slow, ~3 s)."""
        return [(f.name, a) for f in self._files for a in self._parse(f)]

    def candidates(self, package: str) -> list[str]:
        """The files the index would parse for a package (for tests of the index)."""
        return [self._files[i].name for i in self._by_package.get(canonicalize_name(package), ())]

    def save_cache(self) -> Path | None:
        """Parse every file once and write the records where `open` will look for them."""
        if self._cache_file is None or self.cached:
            return None
        raw: dict[str, Any] = {}
        for f in self._files:
            self._parse(f)
            if f.raw is not None and f.advisories:
                raw[f.name] = f.raw  # broken files stay out: a cached open re-reads nothing
        self._cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = self._cache_file.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps({"format": CACHE_FORMAT, "records": raw}, default=str))
        tmp.replace(self._cache_file)
        return self._cache_file

    def _parse(self, f: _File) -> tuple[Advisory, ...]:
        if f.advisories is None:
            try:
                if f.raw is None:
                    f.raw = load_record(f.name, f.text or "")
                data = f.raw
                records = data if isinstance(data, list) else [data]
                f.advisories = tuple(parse_advisory(r) for r in records)
            except (yaml.YAMLError, json.JSONDecodeError, AdvisoryFormatError) as e:
                first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
                self.errors.append(f"{f.name}: {first}")
                f.advisories = ()
            f.text = None  # the decoded record (kept for save_cache) is enough
        return f.advisories


def _cache_file(root: Path, files: list[Path], cache_dir: Path) -> Path:
    digest = hashlib.sha256(f"{CACHE_FORMAT}\n{root.resolve()}\n".encode())
    for p in files:
        st = p.stat()
        digest.update(f"{p.relative_to(root)}:{st.st_size}:{st.st_mtime_ns}\n".encode())
    return cache_dir / "osv" / f"{digest.hexdigest()[:24]}.json"


def _raw_names(raw: Any) -> set[str]:
    """Package names straight from decoded records: the index without parsing them."""
    names: set[str] = set()
    for rec in raw if isinstance(raw, list) else [raw]:
        for entry in (rec.get("affected") or []) if isinstance(rec, dict) else []:
            pkg = entry.get("package") if isinstance(entry, dict) else None
            if isinstance(pkg, dict) and isinstance(pkg.get("name"), str):
                names.add(canonicalize_name(pkg["name"]))
    return names


def _read_cache(path: Path) -> dict[str, Any] | None:
    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(doc, dict) or doc.get("format") != CACHE_FORMAT:
        return None
    records = doc.get("records")
    return records if isinstance(records, dict) and records else None


def _read_zip(blob: bytes) -> list[tuple[str, str]]:
    with zipfile.ZipFile(io.BytesIO(blob)) as zf:
        return [
            (info.filename, zf.read(info).decode("utf-8", errors="replace"))
            for info in zf.infolist()
            if not info.is_dir() and info.filename.endswith(_SUFFIXES)
        ]
