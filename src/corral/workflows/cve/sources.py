"""Turn `--db` values into an advisory source: paths, `api`, or `api:URL`, in failover order."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from corral.domain import ConfigError
from corral.workflows.cve.osv import AdvisorySource, FailoverSource, OsvApi, OsvDatabase


def open_source(specs: Sequence[str]) -> AdvisorySource:
    """`["api", "./osv"]` -> the OSV API, falling back to ./osv when it is unreachable."""
    if not specs:
        raise ConfigError("no advisory database: pass --db DIR (or set CORRAL_OSV_DB)")
    sources: list[AdvisorySource] = []
    for spec in specs:
        if spec == "api":
            sources.append(OsvApi())
        elif spec.startswith("api:"):
            sources.append(OsvApi(spec.removeprefix("api:")))
        else:
            sources.append(OsvDatabase.open(Path(spec).expanduser()))
    return sources[0] if len(sources) == 1 else FailoverSource(sources)
