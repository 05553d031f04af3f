"""Fix planning: per vulnerable package, the lowest release that clears every advisory.

Candidates come from the package index when it answers (final, non-yanked releases only),
else from the advisories' own `fixed` versions, where a pre-release fix (PyYAML's 5.2b1)
stands for its final release. A candidate must be unaffected by *every* live advisory of
the package, so an upgrade never walks into a different vulnerability. Advisories no
candidate fixes (only `last_affected`, or no release after it) become `Unfixable` items
with options for a human, never a silent skip.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field

from packaging.version import Version

from corral.workflows.cve.index import PackageIndex, Release
from corral.workflows.cve.models import FixPlan, Location, ScanReport, Unfixable, Upgrade
from corral.workflows.cve.osv.advisory import Advisory, refs
from corral.workflows.cve.osv.ranges import parse_version
from corral.workflows.cve.osv.source import AdvisorySource

_ZERO = Version("0")


@dataclass(slots=True)
class _Group:
    package: str
    version: str
    pinned: bool
    advisory_ids: list[str] = field(default_factory=list)
    locations: list[Location] = field(default_factory=list)
    admits: list[str] = field(default_factory=list)

    @property
    def floor(self) -> Version:
        """Upgrades must land above this: the pin, or the highest vulnerable admitted."""
        if self.pinned:
            return parse_version(self.version) or _ZERO
        seen = [v for a in self.admits if (v := parse_version(a)) is not None]
        return max(seen, default=_ZERO)


async def plan_fixes(
    report: ScanReport, source: AdvisorySource, index: PackageIndex | None = None
) -> FixPlan:
    """One FixPlan for one scanned repository; works offline when index is None."""
    groups: dict[tuple[str, str], _Group] = {}
    for f in report.findings:
        g = groups.setdefault((f.package, f.version), _Group(f.package, f.version, f.pinned))
        if f.advisory not in g.advisory_ids:
            g.advisory_ids.append(f.advisory)
        loc = Location(file=f.file, line=f.line)
        if loc not in g.locations:
            g.locations.append(loc)
        g.admits.extend(a for a in f.admits if a not in g.admits)
    if not groups:
        return FixPlan(root=report.root)
    packages = sorted({g.package for g in groups.values()})
    advisories = await source.advisories(packages)
    releases: dict[str, Sequence[Release] | None] = {}
    if index is not None:
        answers = await asyncio.gather(*(index.releases(p) for p in packages))
        releases = dict(zip(packages, answers, strict=True))
    upgrades: list[Upgrade] = []
    unfixable: list[Unfixable] = []
    notes: list[str] = []
    for key in sorted(groups):
        g = groups[key]
        up, stuck = plan_package(g, advisories.get(g.package, ()), releases.get(g.package))
        upgrades.extend(up)
        unfixable.extend(stuck)
    unknown = [p for p in packages if releases.get(p) is None]
    if index is None:
        notes.append("no package index: targets come from the advisories' fixed versions")
    elif unknown:
        notes.append("package index had no answer for " + ", ".join(unknown))
    return FixPlan(
        root=report.root,
        upgrades=tuple(upgrades),
        unfixable=tuple(unfixable),
        index_used=index is not None and len(unknown) < len(packages),
        notes=tuple(notes),
    )


# A fleet pins the same (package, version) over and over: plan each once. Values hold the
# advisories and releases they were computed from, so the id()s in the key stay valid.
_PLANS: dict[tuple[object, ...], tuple[object, tuple[list[Upgrade], list[Unfixable]]]] = {}
_PLANS_MAX = 20_000


def plan_package(
    g: _Group, advisories: Sequence[Advisory], releases: Sequence[Release] | None
) -> tuple[list[Upgrade], list[Unfixable]]:
    key = (
        g.package,
        g.version,
        g.pinned,
        tuple(g.advisory_ids),
        tuple(g.admits),
        tuple(id(a) for a in advisories),
        id(releases),
    )
    hit = _PLANS.get(key)
    if hit is None:
        no_locations = _Group(g.package, g.version, g.pinned, g.advisory_ids, [], g.admits)
        if len(_PLANS) >= _PLANS_MAX:
            _PLANS.clear()
        hit = _PLANS[key] = (
            (advisories, releases),
            _plan_package(no_locations, advisories, releases),
        )
    upgrades, unfixable = hit[1]
    where = {"locations": tuple(g.locations)}
    return (
        [u.model_copy(update=where) for u in upgrades],
        [s.model_copy(update=where) for s in unfixable],
    )


def _plan_package(
    g: _Group, advisories: Sequence[Advisory], releases: Sequence[Release] | None
) -> tuple[list[Upgrade], list[Unfixable]]:
    by_id = {a.id: a for a in advisories}
    current = [by_id[i] for i in g.advisory_ids if i in by_id]
    floor = g.floor
    candidates, assumed = _candidates(g.package, advisories, releases, floor)

    memo: dict[Version, frozenset[str]] = {}

    def hits(v: Version) -> frozenset[str]:
        got = memo.get(v)
        if got is None:
            got = memo[v] = frozenset(a.id for a in advisories if a.affects(g.package, v))
        return got

    fixable = [a for a in current if any(a.id not in hits(c) for c in candidates)]
    stuck = [a for a in current if a not in fixable]
    allowed = {a.id for a in stuck}  # still present after the upgrade, reported below
    target = next((c for c in candidates if hits(c) <= allowed), None)
    locations = tuple(g.locations)
    upgrades: list[Upgrade] = []
    if fixable and target is not None:
        note = None
        if target in assumed:
            note = f"{target} assumed: the advisories name only a pre-release fix"
        upgrades.append(
            Upgrade(
                package=g.package,
                from_version=g.version,
                to_version=str(target),
                kind="pin" if g.pinned else "range",
                advisories=refs(fixable),
                locations=locations,
                same_major=target.major == floor.major,
                verified_by_index=releases is not None,
                note=note,
            )
        )
    else:
        stuck = current
    unfixable = []
    if stuck:
        unfixable.append(
            Unfixable(
                package=g.package,
                version=g.version,
                advisories=refs(stuck),
                reason=_why(g.package, stuck, releases is not None),
                locations=locations,
            )
        )
    return upgrades, unfixable


def _candidates(
    package: str,
    advisories: Sequence[Advisory],
    releases: Sequence[Release] | None,
    floor: Version,
) -> tuple[list[Version], set[Version]]:
    """Ascending upgrade targets above floor, and those assumed (not seen in any list)."""
    if releases is not None:
        return sorted(r.version for r in releases if r.installable and r.version > floor), set()
    found: set[Version] = set()
    assumed: set[Version] = set()
    for adv in advisories:
        for entry in adv.entries(package):
            for v in entry.fixed():
                if v.is_prerelease:
                    final = Version(v.base_version)
                    if final not in found:
                        assumed.add(final)
                    v = final
                else:
                    assumed.discard(v)
                found.add(v)
    return sorted(v for v in found if v > floor), assumed


def _why(package: str, stuck: list[Advisory], indexed: bool) -> str:
    last = sorted({v for a in stuck for e in a.entries(package) for v in e.last_affected()})
    if last:
        tail = "no later release on the index" if indexed else "no fixed version is known"
        return f"last affected version {last[-1]}; {tail}"
    if indexed:
        return "no installable release fixes it"
    return "the advisories name no fixed version"


def severity_order(plan: FixPlan) -> list[Upgrade]:
    """Upgrades, worst first: what a campaign triages by."""

    def worst(u: Upgrade) -> int:
        return max((a.severity.rank if a.severity else -1) for a in u.advisories)

    return sorted(plan.upgrades, key=lambda u: (-worst(u), u.package))


__all__ = ["plan_fixes", "plan_package", "severity_order"]
