"""Match a repository's declared dependencies against advisories.

Pinned versions (`==X` or a lock entry) are checked exactly. A package declared only by a
range is reported as unpinned, with the vulnerable versions that range still admits. Lock
entries and exact pins win over ranges for the same package anywhere in the repository.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from packaging.specifiers import SpecifierSet
from packaging.version import Version

from corral.workflows.cve.manifests import Declared, ManifestResult, read_repo
from corral.workflows.cve.models import Finding, ScanIssue, ScanReport
from corral.workflows.cve.osv.advisory import Advisory, Affected
from corral.workflows.cve.osv.ranges import parse_version
from corral.workflows.cve.osv.source import AdvisorySource

_ZERO = Version("0")


async def scan_repo(root: Path, source: AdvisorySource) -> ScanReport:
    """Read every manifest under root, fetch advisories for what they name, match."""
    manifests = read_repo(root)
    names = {d.name for d in manifests.declared}
    advisories = await source.advisories(names) if names else {}
    notes = tuple(getattr(source, "notes", ()))
    return match(root, manifests, advisories, notes=notes)


def match(
    root: Path,
    manifests: ManifestResult,
    advisories: Mapping[str, Sequence[Advisory]],
    *,
    notes: Iterable[str] = (),
) -> ScanReport:
    """Pure matching: no I/O, so it is cheap to call for many repositories."""
    declared = manifests.declared
    pinned = {d.name for d in declared if d.version is not None}
    direct = {d.name for d in declared if not d.is_lock}
    has_plain = any(not d.is_lock for d in declared)
    findings: dict[tuple[str, str, str, str, int], Finding] = {}
    errors = [i for i in manifests.issues if i.kind == "error"]
    for d in declared:
        advs = advisories.get(d.name, ())
        if not advs:
            continue
        is_direct = (
            (d.name in direct) if (d.is_lock and has_plain) else (None if d.is_lock else True)
        )
        if d.version is not None:
            v = parse_version(d.version)
            if v is None:
                errors.append(
                    ScanIssue(
                        kind="error",
                        file=d.file,
                        line=d.line,
                        message=f"{d.name}: version {d.version!r} is not PEP 440",
                    )
                )
                continue
            for adv in advs:
                if adv.affects(d.name, v, d.version):
                    f = _finding(d, adv, d.version, True, is_direct, ())
                    findings.setdefault(_key(f), f)
        elif d.name not in pinned:
            for adv in advs:
                admits = admitted(d, adv)
                if admits:
                    f = _finding(d, adv, d.spec_text, False, is_direct, admits)
                    findings.setdefault(_key(f), f)
    return ScanReport(
        root=str(root),
        findings=tuple(findings.values()),
        errors=tuple(errors),
        skipped=tuple(i for i in manifests.issues if i.kind == "skipped"),
        manifests=tuple(dict.fromkeys(manifests.files)),
        dependencies=len({d.name for d in declared}),
        notes=tuple(notes),
    )


def _key(f: Finding) -> tuple[str, str, str, str, int]:
    return (f.package, f.version, f.advisory, f.file, f.line)


def _finding(
    d: Declared,
    adv: Advisory,
    version: str,
    pinned: bool,
    direct: bool | None,
    admits: tuple[str, ...],
) -> Finding:
    return Finding(
        package=d.name,
        version=version,
        pinned=pinned,
        advisory=adv.id,
        aliases=adv.aliases,
        summary=adv.summary,
        fixed_in=adv.fixed_in(d.name),
        file=d.file,
        line=d.line,
        source=d.source,
        direct=direct,
        markers=d.markers,
        severity=adv.severity,
        admits=admits,
        url=adv.url,
    )


def admitted(d: Declared, adv: Advisory) -> tuple[str, ...]:
    """The vulnerable versions a range admits: listed ones, else the vulnerable intervals.

    Without a release list we probe each interval at its own bounds and at the
    specifier's bounds (and a point just above each), which finds every real overlap.
    """
    specs = [SpecifierSet(s) for s in d.specs] or [SpecifierSet()]

    def allows(v: Version) -> bool:
        # pip's rule: pre-releases only when the specifier itself names one.
        return any(s.contains(v, prereleases=bool(s.prereleases)) for s in specs)

    bounds = {parse_version(sp.version.rstrip(".*")) for s in specs for sp in s}
    probes = {b for b in bounds if b is not None} | {_ZERO}
    probes |= {Version(f"{b.base_version}.0.0.1") for b in list(probes)}
    out: list[str] = []
    for entry in adv.entries(d.name):
        listed = sorted(v for v in entry.versions if allows(v))
        if listed:
            out.extend(str(v) for v in listed)
            continue
        for label, lo, hi, inclusive in _intervals(entry):
            points = probes | {lo} | ({hi} if inclusive and hi else set())
            if any(_inside(v, lo, hi, inclusive) and allows(v) for v in points):
                out.append(label)
    return tuple(dict.fromkeys(out))


def _inside(v: Version, lo: Version, hi: Version | None, inclusive: bool) -> bool:
    return v >= lo and (hi is None or v < hi or (inclusive and v == hi))


def _intervals(entry: Affected) -> list[tuple[str, Version, Version | None, bool]]:
    """Vulnerable intervals of an entry with a readable label, e.g. `>=2.0.0,<2.0.6`."""
    out: list[tuple[str, Version, Version | None, bool]] = []
    for r in entry.ranges:
        lower: Version | None = None
        for e in r.events:
            if e.kind == "introduced":
                lower = e.version or _ZERO
            elif lower is not None and e.kind in ("fixed", "last_affected") and e.version:
                inclusive = e.kind == "last_affected"
                lo = f">={lower}," if lower != _ZERO else ""
                out.append(
                    (f"{lo}{'<=' if inclusive else '<'}{e.version}", lower, e.version, inclusive)
                )
                lower = None
        if lower is not None:
            out.append((f">={lower}" if lower != _ZERO else "*", lower, None, False))
    return out
