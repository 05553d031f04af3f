"""CVE remediation workflow: scan manifests against OSV advisories and plan minimal upgrades.

The campaign (later) calls, per repository::

    source = open_source(["path/to/osv-db"])          # or OsvApi(), FailoverSource([...])
    report = await scan_repo(repo_path, source)       # ScanReport (frozen, JSON-ready)
    plan = await plan_fixes(report, source, index)    # FixPlan; index=None works offline
"""

from corral.workflows.cve.index import PackageIndex, PyPIIndex, Release, StaticIndex
from corral.workflows.cve.models import (
    AdvisoryRef,
    Finding,
    FixPlan,
    Location,
    ScanIssue,
    ScanReport,
    Severity,
    Unfixable,
    Upgrade,
)
from corral.workflows.cve.osv import (
    Advisory,
    AdvisorySource,
    AdvisorySourceUnavailable,
    FailoverSource,
    OsvApi,
    OsvDatabase,
)
from corral.workflows.cve.planner import plan_fixes, severity_order
from corral.workflows.cve.report import plan_markdown, scan_json, scan_table
from corral.workflows.cve.scanner import match, scan_repo
from corral.workflows.cve.sources import open_source

__all__ = [
    "Advisory",
    "AdvisoryRef",
    "AdvisorySource",
    "AdvisorySourceUnavailable",
    "FailoverSource",
    "Finding",
    "FixPlan",
    "Location",
    "OsvApi",
    "OsvDatabase",
    "PackageIndex",
    "PyPIIndex",
    "Release",
    "ScanIssue",
    "ScanReport",
    "Severity",
    "StaticIndex",
    "Unfixable",
    "Upgrade",
    "match",
    "open_source",
    "plan_fixes",
    "plan_markdown",
    "scan_json",
    "scan_repo",
    "scan_table",
    "severity_order",
]
