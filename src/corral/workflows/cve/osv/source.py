"""Where advisories come from, behind one small async interface, with failover.

AdvisorySource        advisories(packages) -> {package: advisories}
├── OsvDatabase       an OSV directory or zip export, indexed by package, parsed lazily
├── OsvApi            api.osv.dev (querybatch + vulns/ID), evaluated with the same code
└── FailoverSource    the first source that answers; says which one it fell back to
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Protocol

from corral.domain import CorralError
from corral.workflows.cve.osv.advisory import Advisory


class AdvisorySourceUnavailable(CorralError):
    """A source could not answer (network down, bad export); the message is one line."""


class AdvisorySource(Protocol):
    """Anything that can list the live (non-withdrawn) PyPI advisories of some packages."""

    @property
    def label(self) -> str: ...

    async def advisories(self, packages: Collection[str]) -> dict[str, tuple[Advisory, ...]]:
        """Keys are PEP 503 names; every requested name is present (maybe empty)."""
        ...


class FailoverSource:
    """Try sources in order; a source that is unavailable hands over to the next."""

    def __init__(self, sources: Sequence[AdvisorySource]) -> None:
        if not sources:
            raise ValueError("FailoverSource needs at least one source")
        self._sources = list(sources)
        self.notes: list[str] = []

    @property
    def label(self) -> str:
        return " -> ".join(s.label for s in self._sources)

    async def advisories(self, packages: Collection[str]) -> dict[str, tuple[Advisory, ...]]:
        failures: list[str] = []
        for source in self._sources:
            try:
                found = await source.advisories(packages)
            except AdvisorySourceUnavailable as e:
                failures.append(str(e))
                continue
            if failures:
                note = f"used {source.label} because " + "; ".join(failures)
                if note not in self.notes:
                    self.notes.append(note)
            return found
        raise AdvisorySourceUnavailable("no advisory source answered: " + "; ".join(failures))
