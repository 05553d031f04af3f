"""What a scan and a fix plan produce: frozen, JSON-ready, so a campaign can store them."""

from __future__ import annotations

from typing import Literal

from corral.domain import Frozen

SEVERITY_ORDER = {"CRITICAL": 4, "HIGH": 3, "MEDIUM": 2, "MODERATE": 2, "LOW": 1, "NONE": 0}


class Severity(Frozen):
    """How bad an advisory is, as far as the database says."""

    vector: str | None = None  # e.g. a CVSS_V3 vector
    score: float | None = None  # computed from a CVSS v3 vector
    level: str | None = None  # CRITICAL / HIGH / MEDIUM (MODERATE) / LOW

    @property
    def rank(self) -> int:
        return SEVERITY_ORDER.get((self.level or "").upper(), -1)


class Location(Frozen):
    """Where in a repository a dependency is declared (1-based line)."""

    file: str  # relative to the scanned root, POSIX separators
    line: int


class Finding(Frozen):
    """One advisory matching one declared dependency."""

    package: str  # PEP 503 normalised
    version: str  # the pinned version, or the specifier when unpinned
    pinned: bool
    advisory: str
    aliases: tuple[str, ...] = ()
    summary: str = ""
    fixed_in: tuple[str, ...] = ()
    file: str
    line: int
    source: str  # which kind of manifest: requirements, pyproject, poetry.lock, ...
    direct: bool | None = None  # declared by the project itself (None: cannot tell)
    markers: str | None = None
    severity: Severity | None = None
    # For an unpinned dependency: the vulnerable versions its range still admits.
    admits: tuple[str, ...] = ()
    url: str | None = None


class ScanIssue(Frozen):
    """A line we could not parse, or could not scan (URL, VCS, editable); never fatal."""

    kind: Literal["error", "skipped"]
    file: str
    line: int
    message: str


class ScanReport(Frozen):
    """Everything one scan of one repository found."""

    root: str
    findings: tuple[Finding, ...] = ()
    errors: tuple[ScanIssue, ...] = ()
    skipped: tuple[ScanIssue, ...] = ()
    manifests: tuple[str, ...] = ()
    dependencies: int = 0
    notes: tuple[str, ...] = ()  # e.g. "OSV API unreachable, used the local database"


class AdvisoryRef(Frozen):
    """An advisory as a fix plan or a PR body shows it."""

    id: str
    aliases: tuple[str, ...] = ()
    severity: Severity | None = None
    url: str | None = None
    summary: str = ""


class Upgrade(Frozen):
    """Move one package to the lowest version that clears its advisories."""

    package: str
    from_version: str
    to_version: str
    kind: Literal["pin", "range"] = "pin"  # "range": raise the lower bound to >= to_version
    advisories: tuple[AdvisoryRef, ...]
    locations: tuple[Location, ...] = ()
    same_major: bool = True
    verified_by_index: bool = False  # the package index confirmed the release exists
    note: str | None = None


UnfixableOption = Literal["remove", "replace", "accept"]


class Unfixable(Frozen):
    """An advisory no release fixes: a human picks remove, replace, or accept with a reason."""

    package: str
    version: str
    advisories: tuple[AdvisoryRef, ...]
    reason: str
    options: tuple[UnfixableOption, ...] = ("remove", "replace", "accept")
    locations: tuple[Location, ...] = ()


class FixPlan(Frozen):
    """The whole remediation for one repository: upgrades plus what cannot be upgraded."""

    root: str
    upgrades: tuple[Upgrade, ...] = ()
    unfixable: tuple[Unfixable, ...] = ()
    index_used: bool = False
    notes: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.upgrades and not self.unfixable
