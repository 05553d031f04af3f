"""Campaigns built on the runtime: `cve/` (dependency remediation), later `refactor/`."""
