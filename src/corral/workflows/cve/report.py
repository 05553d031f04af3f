"""Render scans and plans: the JSON the CLI prints, a terminal table, a Markdown table."""

from __future__ import annotations

from typing import Any

from corral.workflows.cve.models import Finding, FixPlan, ScanIssue, ScanReport, Severity


def severity_json(s: Severity | None) -> dict[str, Any] | None:
    return None if s is None else s.model_dump(mode="json")


def finding_json(f: Finding) -> dict[str, Any]:
    out = {
        "package": f.package,
        "version": f.version,
        "pinned": f.pinned,
        "advisory": f.advisory,
        "aliases": list(f.aliases),
        "fixed_in": list(f.fixed_in),
        "file": f.file,
        "line": f.line,
        "source": f.source,
        "direct": f.direct,
        "summary": f.summary,
        "url": f.url,
    }
    if f.severity is not None:
        out["severity"] = severity_json(f.severity)
    if f.markers:
        out["markers"] = f.markers
    if not f.pinned:
        out["admits"] = list(f.admits)
    return out


def issue_json(i: ScanIssue) -> dict[str, Any]:
    return {"file": i.file, "line": i.line, "message": i.message}


def scan_json(report: ScanReport, plan: FixPlan | None = None) -> dict[str, Any]:
    """The `corral cve scan --json` document."""
    out: dict[str, Any] = {
        "root": report.root,
        "findings": [finding_json(f) for f in report.findings],
        "errors": [issue_json(i) for i in report.errors],
        "skipped": [issue_json(i) for i in report.skipped],
        "manifests": list(report.manifests),
        "dependencies": report.dependencies,
        "notes": list(report.notes),
    }
    if plan is not None:
        out["plan"] = plan.model_dump(mode="json")
    return out


def _level(s: Severity | None) -> str:
    if s is None:
        return "-"
    return f"{s.level or '?'}{f' {s.score:.1f}' if s.score is not None else ''}"


def _grid(headers: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers), fmt.format(*("-" * w for w in widths))] + [
        fmt.format(*r) for r in rows
    ]


def scan_table(report: ScanReport, plan: FixPlan | None = None) -> str:
    """A readable terminal report: findings, then problems, then the plan."""
    lines: list[str] = []
    if report.findings:
        rows = [
            [
                f.package,
                f.version if f.pinned else f"{f.version} (unpinned)",
                f.advisory,
                ", ".join(f.aliases[:2]),
                ", ".join(f.fixed_in) or "none",
                _level(f.severity),
                f"{f.file}:{f.line}",
            ]
            for f in report.findings
        ]
        head = ["package", "version", "advisory", "aliases", "fixed in", "severity", "where"]
        lines += _grid(head, rows)
    packages = len({f.package for f in report.findings})
    lines.append(
        f"\n{len(report.findings)} findings in {packages} packages "
        f"({report.dependencies} dependencies, {len(report.manifests)} manifests)"
    )
    for i in report.errors:
        lines.append(f"error: {i.file}:{i.line}: {i.message}")
    for i in report.skipped:
        lines.append(f"skipped: {i.file}:{i.line}: {i.message}")
    for n in report.notes:
        lines.append(f"note: {n}")
    if plan is not None:
        lines.append("")
        lines.append(plan_markdown(plan))
    return "\n".join(lines)


def plan_markdown(plan: FixPlan) -> str:
    """The plan as Markdown: the table a PR body shows."""
    out = ["| package | from | to | advisories |", "|---|---|---|---|"]
    for u in plan.upgrades:
        advs = ", ".join(
            f"[{a.id}]({a.url})"
            + (f" ({', '.join(a.aliases)})" if a.aliases else "")
            + (f" {a.severity.level}" if a.severity and a.severity.level else "")
            for a in u.advisories
        )
        out.append(f"| {u.package} | {u.from_version} | {u.to_version} | {advs} |")
    if not plan.upgrades:
        out.append("| - | - | - | no upgrade planned |")
    for s in plan.unfixable:
        ids = ", ".join(a.id for a in s.advisories)
        out.append(
            f"\n**Not fixable by upgrade:** {s.package} {s.version} ({ids}): {s.reason}. "
            f"Options: {', '.join(s.options)} (accept needs a written reason)."
        )
    for n in plan.notes:
        out.append(f"\n_{n}_")
    return "\n".join(out)
