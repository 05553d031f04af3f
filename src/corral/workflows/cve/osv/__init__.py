"""OSV advisories: parsing with exact range semantics, local databases, the web API."""

from corral.workflows.cve.osv.advisory import Advisory, Affected, parse_advisory
from corral.workflows.cve.osv.api import OsvApi
from corral.workflows.cve.osv.database import OsvDatabase
from corral.workflows.cve.osv.source import (
    AdvisorySource,
    AdvisorySourceUnavailable,
    FailoverSource,
)

__all__ = [
    "Advisory",
    "AdvisorySource",
    "AdvisorySourceUnavailable",
    "Affected",
    "FailoverSource",
    "OsvApi",
    "OsvDatabase",
    "parse_advisory",
]
