"""OSV range semantics, exactly as the schema defines them.

A version is affected by an `affected` entry when it falls inside any ECOSYSTEM or SEMVER
range or is listed in `versions`. Each range's events are sorted by version first (the
database does not promise an order; PYSEC-2023-192 lists the 2.0 line before the 1.x line),
then walked: `introduced` opens, `fixed` closes at that version, `last_affected` closes after
it. `limit` caps the whole range: a version at or above every limit is outside it. GIT ranges
hold commit hashes, never versions, so they are ignored for matching and never yield a fix.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import total_ordering
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

EventKind = Literal["introduced", "fixed", "last_affected", "limit"]
# Ties sort `introduced` first, so [introduced X, fixed X] is an empty range.
_KIND_RANK: dict[str, int] = {"introduced": 0, "fixed": 1, "last_affected": 1, "limit": 2}
_SEMVER = re.compile(
    r"^v?(\d+)(?:\.(\d+))?(?:\.(\d+))?(?:-([0-9A-Za-z.-]+))?(?:\+[0-9A-Za-z.-]+)?$"
)


@total_ordering
@dataclass(frozen=True, slots=True)
class SemVer:
    """SemVer 2.0 precedence (pre-release identifiers compared field by field)."""

    core: tuple[int, int, int]
    pre: tuple[tuple[int, int | str], ...]

    @classmethod
    def parse(cls, text: str) -> SemVer | None:
        m = _SEMVER.match(text.strip())
        if not m:
            return None
        core = (int(m[1]), int(m[2] or 0), int(m[3] or 0))
        pre: list[tuple[int, int | str]] = []
        for part in (m[4] or "").split(".") if m[4] else []:
            pre.append((0, int(part)) if part.isdigit() else (1, part))
        return cls(core, tuple(pre))

    def _key(self) -> tuple[tuple[int, int, int], int, tuple[tuple[int, int | str], ...]]:
        # A release (no pre-release) sorts after all of its pre-releases.
        return (self.core, 0 if self.pre else 1, self.pre)

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, SemVer):
            return NotImplemented
        return self._key() < other._key()


def parse_version(text: str) -> Version | None:
    """PEP 440 parse, or None for strings PyPI would not accept."""
    try:
        return Version(text)
    except InvalidVersion:
        return None


@dataclass(frozen=True, slots=True)
class Event:
    kind: EventKind
    raw: str
    # "0" (introduced at the beginning of time) has no version.
    version: Version | None
    semver: SemVer | None = None


@dataclass(frozen=True, slots=True)
class VersionRange:
    """One ECOSYSTEM or SEMVER range with its events sorted for evaluation."""

    type: Literal["ECOSYSTEM", "SEMVER"]
    events: tuple[Event, ...]
    limits: tuple[Version, ...] = ()
    # SEMVER events sorted by SemVer precedence, when every event parses as SemVer.
    semver_events: tuple[Event, ...] | None = None

    @classmethod
    def build(
        cls, rtype: Literal["ECOSYSTEM", "SEMVER"], raw_events: list[tuple[EventKind, str]]
    ) -> tuple[VersionRange, list[str]]:
        """Sort and parse the events; returns the range and the events it had to drop."""
        dropped: list[str] = []
        events: list[Event] = []
        limits: list[Version] = []
        for kind, raw in raw_events:
            if kind == "introduced" and raw == "0":
                events.append(Event(kind, raw, None))
                continue
            v = parse_version(raw)
            if v is None:
                dropped.append(f"{kind}: {raw!r} is not a PEP 440 version")
                continue
            if kind == "limit":
                limits.append(v)
            else:
                events.append(Event(kind, raw, v, SemVer.parse(raw)))
        events.sort(key=_pep440_key)
        semver_events = None
        if rtype == "SEMVER" and all(e.version is None or e.semver for e in events):
            semver_events = tuple(sorted(events, key=_semver_key))
        return cls(rtype, tuple(events), tuple(limits), semver_events), dropped

    def contains(self, version: Version, raw: str | None = None) -> bool:
        """The OSV walk over sorted events (SemVer precedence for SEMVER ranges)."""
        if self.limits and all(version >= lim for lim in self.limits):
            return False
        if self.semver_events is not None:
            sv = SemVer.parse(raw if raw is not None else str(version))
            if sv is not None:
                return _walk(self.semver_events, lambda e: e.semver, sv)
        return _walk(self.events, lambda e: e.version, version)

    def fixed_versions(self) -> list[Version]:
        return [e.version for e in self.events if e.kind == "fixed" and e.version is not None]

    def last_affected(self) -> list[Version]:
        return [
            e.version for e in self.events if e.kind == "last_affected" and e.version is not None
        ]

    def boundaries(self) -> list[Version]:
        """Every version an event names: probes when asking what a specifier admits."""
        return [e.version for e in self.events if e.version is not None]


def _pep440_key(e: Event) -> tuple[bool, Version, int]:
    return (e.version is not None, e.version or _ZERO, _KIND_RANK[e.kind])


def _semver_key(e: Event) -> tuple[bool, SemVer, int]:
    return (e.version is not None, e.semver or _SEMVER_ZERO, _KIND_RANK[e.kind])


_ZERO = Version("0")
_SEMVER_ZERO = SemVer((0, 0, 0), ())


def _walk(events: tuple[Event, ...], at: Callable[[Event], Any], v: Any) -> bool:
    affected = False
    for e in events:
        point = at(e)
        if e.kind == "introduced":
            if point is None or v >= point:
                affected = True
        elif e.kind == "fixed":
            if point is not None and v >= point:
                affected = False
        elif e.kind == "last_affected" and point is not None and v > point:
            affected = False
    return affected
