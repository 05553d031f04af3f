"""One OSV record, parsed once, answering "does it affect package P at version V?" fast."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, cast

from packaging.utils import canonicalize_name
from packaging.version import Version

from corral.workflows.cve.models import AdvisoryRef, Severity
from corral.workflows.cve.osv.cvss import cvss3_base_score, level_for
from corral.workflows.cve.osv.ranges import EventKind, VersionRange, parse_version

ECOSYSTEM = "PyPI"
_KINDS: tuple[EventKind, ...] = ("introduced", "fixed", "last_affected", "limit")


class AdvisoryFormatError(ValueError):
    """An OSV record we cannot use at all (no id, wrong shape)."""


_PLAIN = re.compile(r"^\d+(\.\d+)*$")
VersionKey = tuple[int, ...] | Version


def version_key(raw: str) -> VersionKey | None:
    """A cheap equality key: `1.10.0` and `1.10` share one; odd versions fall back to PEP 440.

    The `versions` lists hold ~150k strings in the PyPA snapshot; parsing each with
    packaging costs seconds, this costs a split.
    """
    if _PLAIN.match(raw):
        nums = [int(n) for n in raw.split(".")]
        while len(nums) > 1 and nums[-1] == 0:
            nums.pop()
        return tuple(nums)
    v = parse_version(raw)
    return None if v is None else key_of(v)


def key_of(v: Version) -> VersionKey:
    if v.epoch or v.pre or v.post is not None or v.dev is not None or v.local:
        return v
    nums = list(v.release)
    while len(nums) > 1 and nums[-1] == 0:
        nums.pop()
    return tuple(nums)


@dataclass(slots=True)
class Affected:
    """One `affected` entry for a PyPI package."""

    package: str  # PEP 503 normalised
    ranges: tuple[VersionRange, ...]
    raw_versions: tuple[str, ...]
    _keys: frozenset[VersionKey] | None = None
    _parsed: frozenset[Version] | None = None
    _memo: dict[Version, bool] = field(default_factory=dict)

    @property
    def versions(self) -> frozenset[Version]:
        """The explicit list as PEP 440 versions (parsed on first use)."""
        if self._parsed is None:
            parsed = (parse_version(r) for r in self.raw_versions)
            self._parsed = frozenset(v for v in parsed if v is not None)
        return self._parsed

    def affects(self, version: Version, raw: str | None = None) -> bool:
        """`raw` (the version as written) only matters for SEMVER ranges."""
        hit = self._memo.get(version)
        if hit is None:
            if self._keys is None:
                keys = (version_key(r) for r in self.raw_versions)
                self._keys = frozenset(k for k in keys if k is not None)
            hit = key_of(version) in self._keys or any(
                r.contains(version, raw) for r in self.ranges
            )
            self._memo[version] = hit
        return hit

    def fixed(self) -> list[Version]:
        return [v for r in self.ranges for v in r.fixed_versions()]

    def last_affected(self) -> list[Version]:
        return [v for r in self.ranges for v in r.last_affected()]

    def probes(self) -> set[Version]:
        """Versions worth testing against a specifier: listed ones and every boundary."""
        return set(self.versions).union(*(r.boundaries() for r in self.ranges))


@dataclass(slots=True)
class Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    withdrawn: bool
    severity: Severity | None
    affected: tuple[Affected, ...]
    url: str | None
    warnings: tuple[str, ...] = ()

    def packages(self) -> set[str]:
        return {a.package for a in self.affected}

    def entries(self, package: str) -> list[Affected]:
        return [a for a in self.affected if a.package == package]

    def affects(self, package: str, version: Version, raw: str | None = None) -> bool:
        return any(a.affects(version, raw) for a in self.affected if a.package == package)

    def fixed_in(self, package: str) -> tuple[str, ...]:
        fixed = sorted({v for a in self.entries(package) for v in a.fixed()})
        return tuple(str(v) for v in fixed)

    def ref(self) -> AdvisoryRef:
        return AdvisoryRef(
            id=self.id,
            aliases=self.aliases,
            severity=self.severity,
            url=self.url,
            summary=self.summary,
        )


def parse_advisory(data: Mapping[str, Any]) -> Advisory:
    """Build an Advisory from an OSV dict (JSON or YAML); only PyPI entries are kept."""
    if not isinstance(data, Mapping) or not isinstance(data.get("id"), str):
        raise AdvisoryFormatError("not an OSV record: no string `id`")
    warnings: list[str] = []
    affected: list[Affected] = []
    for entry in _list(data.get("affected")):
        pkg = entry.get("package") if isinstance(entry, Mapping) else None
        if not isinstance(pkg, Mapping) or pkg.get("ecosystem") != ECOSYSTEM:
            continue
        name = pkg.get("name")
        if not isinstance(name, str) or not name:
            warnings.append("affected entry without a package name")
            continue
        ranges: list[VersionRange] = []
        for r in _list(entry.get("ranges")):
            rtype = r.get("type") if isinstance(r, Mapping) else None
            if rtype not in ("ECOSYSTEM", "SEMVER"):
                continue  # GIT ranges name commits, not versions
            events = _events(r.get("events"))
            vr, dropped = VersionRange.build(cast(Literal["ECOSYSTEM", "SEMVER"], rtype), events)
            warnings.extend(dropped)
            ranges.append(vr)
        versions = tuple(str(v) for v in _list(entry.get("versions")))
        affected.append(Affected(canonicalize_name(name), tuple(ranges), versions))
    aliases = tuple(a for a in _list(data.get("aliases")) if isinstance(a, str))
    summary = data.get("summary") or data.get("details") or ""
    return Advisory(
        id=data["id"],
        aliases=aliases,
        summary=str(summary).strip().split("\n")[0][:300],
        withdrawn=bool(data.get("withdrawn")),
        severity=_severity(data),
        affected=tuple(affected),
        url=_url(data),
        warnings=tuple(warnings),
    )


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def _events(value: Any) -> list[tuple[EventKind, str]]:
    out: list[tuple[EventKind, str]] = []
    for ev in _list(value):
        if not isinstance(ev, Mapping):
            continue
        for kind in _KINDS:
            if kind in ev and ev[kind] is not None:
                out.append((kind, str(ev[kind])))
    return out


def _severity(data: Mapping[str, Any]) -> Severity | None:
    """Prefer a CVSS v3 vector (score computed); else the database's own label."""
    vectors = [s for s in _list(data.get("severity")) if isinstance(s, Mapping)]
    for s in sorted(vectors, key=lambda s: str(s.get("type")) != "CVSS_V3"):
        vector = str(s.get("score", ""))
        score = cvss3_base_score(vector)
        if score is not None:
            return Severity(vector=vector, score=score, level=level_for(score))
    label = None
    specific = data.get("database_specific")
    if isinstance(specific, Mapping) and isinstance(specific.get("severity"), str):
        label = specific["severity"].upper()
    if vectors or label:
        first = str(vectors[0].get("score")) if vectors else None
        return Severity(vector=first, level=label)
    return None


def _url(data: Mapping[str, Any]) -> str | None:
    refs = [r for r in _list(data.get("references")) if isinstance(r, Mapping)]
    for wanted in ("ADVISORY", "WEB"):
        for r in refs:
            if r.get("type") == wanted and isinstance(r.get("url"), str):
                return str(r["url"])
    return f"https://osv.dev/vulnerability/{data['id']}"


def refs(advisories: Iterable[Advisory]) -> tuple[AdvisoryRef, ...]:
    return tuple(a.ref() for a in advisories)
