"""The campaign's final report: per repo the findings, what was fixed, the PR and the
status; as JSON (for machines) and Markdown (for people), under HOME/cve/CAMPAIGN/."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

from corral.domain import ConfigError
from corral.orchestrator.campaigns import reopen_campaign, run_campaign
from corral.orchestrator.delivery import delivery_key
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store
from corral.workflows.cve.campaign import CampaignOptions, Triaged, campaign_spec
from corral.workflows.cve.report import finding_json
from corral.workflows.cve.resume import adopt, load_triage, owners_of, save_pending

Progress = Callable[[dict[str, Any]], Awaitable[None] | None]
_OUTCOME = {
    "succeeded": "fixed",
    "needs_review": "needs review",
    "approved": "approved",
    "failed": "failed",
    "rejected": "rejected",
    "cancelled": "cancelled",
}


async def run_cve_campaign(
    store: Store,
    triaged: Sequence[Triaged],
    opts: CampaignOptions,
    settings: WorkerSettings,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Create and run the campaign (if any repo needs a change), then write the report."""
    spec = campaign_spec(triaged, opts)
    status: dict[str, Any] | None = None
    cid: str | None = None
    if spec is not None:
        pending = save_pending(settings.home, spec, triaged)
        try:
            cid = await store.create_campaign(spec)
        except ConfigError as e:
            pending.unlink(missing_ok=True)
            owners = owners_of(settings.home, [t.unique_key or "" for t in spec.tasks])
            if not owners:
                raise
            raise ConfigError(
                f"campaign {owners[-1]} already ran the same upgrades on some of these repos "
                f"(one PR per repo and plan); `corral cve campaign --resume {owners[-1]}` "
                "reports on it"
            ) from e
        except BaseException:
            pending.unlink(missing_ok=True)
            raise
        adopt(settings.home, cid, pending)
        status = await run_campaign(store, cid, settings, progress=progress)
    report = await build_report(store, cid, triaged, status)
    write_report(settings.home, report)
    return report


async def open_cve_campaign(store: Store, ref: str, home: Path) -> tuple[str, list[Triaged]]:
    """The campaign an id (or prefix) names, with its saved triage; clear errors if none."""
    cid = await store.resolve_campaign_id(ref)
    return cid, await load_triage(home, store, cid)


async def resume_cve_campaign(
    store: Store,
    cid: str,
    triaged: Sequence[Triaged],
    settings: WorkerSettings,
    *,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Carry on a CVE campaign after a crash, then report on every repo it covered."""
    await reopen_campaign(store, cid)
    status = await run_campaign(store, cid, settings, progress=progress)
    report = await build_report(store, cid, triaged, status)
    write_report(settings.home, report)
    return report


async def build_report(
    store: Store, cid: str | None, triaged: Sequence[Triaged], status: dict[str, Any] | None
) -> dict[str, Any]:
    tasks = {t["key"]: t for t in (status or {}).get("tasks", [])}
    ids = {t["key"]: t["id"] for t in tasks.values()}
    repos = []
    for t in triaged:
        row: dict[str, Any] = {
            "repo": str(t.entry.path),
            "key": t.key,
            "findings": [finding_json(f) for f in t.report.findings] if t.report else [],
            "planned": [
                {
                    "package": u.package,
                    "from": u.from_version,
                    "to": u.to_version,
                    "advisories": [a.id for a in u.advisories],
                }
                for u in (t.plan.upgrades if t.plan else ())
            ],
            "not_fixed": [
                {
                    "package": s.package,
                    "version": s.version,
                    "reason": s.reason,
                    "advisories": [a.id for a in s.advisories],
                    "options": list(s.options),
                }
                for s in (t.plan.unfixable if t.plan else ())
            ],
            "fixed": [],
            "pr": None,
            "branch": None,
            "tests": None,
            "task": None,
            "reason": "",
        }
        row["not_fixed"] += [{"problem": p} for p in _problems(t)]
        task = tasks.get(t.key)
        if t.error:
            row["status"] = "error"
            row["reason"] = t.error
        elif task is None:
            row["status"] = (
                "clean" if not row["findings"] else "not fixable" if not row["planned"] else "error"
            )
        else:
            row["task"] = task["id"]
            row["status"] = _OUTCOME.get(task["state"], task["state"])
            row["reason"] = task["reason"]
            done = await store.side_effect(delivery_key(await store.get_task(ids[t.key])))
            if done:
                row.update(
                    fixed=done.get("fixed", []), pr=done.get("pr"), branch=done.get("branch"),
                    tests=done.get("tests"), pr_md=done.get("pr_md"),
                )  # fmt: skip
            elif "corral-cve-result" in row["reason"]:
                row["tests"] = _tests_from_reason(row["reason"])
        repos.append(row)
    counts: dict[str, int] = {}
    for r in repos:
        counts[r["status"]] = counts.get(r["status"], 0) + 1
    return {
        "campaign": cid,
        "state": (status or {}).get("state", "nothing to do"),
        "cost_usd": (status or {}).get("cost_usd", 0.0),
        "counts": counts,
        "repos": repos,
    }


def _problems(t: Triaged) -> list[str]:
    if t.payload is None:
        return []
    return [*t.payload.hash_problems, *t.payload.problems, *t.payload.wheel_problems]


def _tests_from_reason(reason: str) -> str | None:
    from corral.workflows.cve.pr import result_from_reason

    return str(result_from_reason(reason).get("tests"))


def write_report(home: Path, report: dict[str, Any]) -> tuple[Path, Path]:
    d = home / "cve" / (report["campaign"] or "no-campaign")
    d.mkdir(parents=True, exist_ok=True)
    js, md = d / "report.json", d / "report.md"
    js.write_text(json.dumps(report, indent=2) + "\n")
    md.write_text(report_markdown(report))
    report["files"] = {"json": str(js), "markdown": str(md)}
    return js, md


def report_markdown(report: dict[str, Any]) -> str:
    out = [f"# CVE campaign {report['campaign'] or '(nothing to fix)'}", ""]
    out.append(" · ".join(f"{k}: {v}" for k, v in sorted(report["counts"].items())))
    out += [
        "",
        "| repo | status | findings | fixed | PR / branch | tests |",
        "|---|---|---|---|---|---|",
    ]
    for r in report["repos"]:
        fixed = ", ".join(f"{p} {a}" for p, a in r["fixed"]) or "-"
        pr = r["pr"]["url"] if r.get("pr") else (r.get("branch") or "-")
        out.append(
            f"| {r['key']} | {r['status']} | {len(r['findings'])} | {fixed} | {pr} "
            f"| {r.get('tests') or '-'} |"
        )
    for r in report["repos"]:
        notes = [n.get("problem") or f"{n['package']} {n['version']}: {n['reason']}"
                 for n in r["not_fixed"]]  # fmt: skip
        if r["status"] in ("needs review", "failed", "error") and r["reason"]:
            notes.insert(0, r["reason"].split("\n")[0][:300])
        if notes:
            out += ["", f"### {r['key']}", *[f"- {n}" for n in notes]]
    return "\n".join(out) + "\n"
