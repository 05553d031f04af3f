"""The pull request a CVE task delivers: one branch, one commit, a Markdown body.

The commit is made on the host against the user's repository without touching its
checkout (`workflows.hostgit.commit_branch`). The branch name comes from the task id, so
a retry rewrites the same branch and finds the same PR.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corral.workflows.cve.models import AdvisoryRef
from corral.workflows.cve.tasks import CvePayload
from corral.workflows.cve.wheels import ignore_corral_dir


def branch_name(task_id: str) -> str:
    return f"corral/cve-{task_id.replace('_', '-')[-10:].strip('-')}"


def _adv(a: AdvisoryRef) -> str:
    head = f"[{a.id}]({a.url})" if a.url else a.id
    aliases = f" ({', '.join(a.aliases)})" if a.aliases else ""
    level = a.severity.level if a.severity and a.severity.level else None
    score = f" {a.severity.score:.1f}" if a.severity and a.severity.score is not None else ""
    return head + aliases + (f" **{level}**{score}" if level else "")


def pr_title(p: CvePayload) -> str:
    names = ", ".join(u.package for u in p.plan.upgrades[:4])
    more = f" and {len(p.plan.upgrades) - 4} more" if len(p.plan.upgrades) > 4 else ""
    return f"Security: upgrade {names}{more}" if names else "Security: dependency advisories"


def pr_body(p: CvePayload, result: Mapping[str, Any]) -> str:
    """Table of upgrades, the test result, and what was not fixed and why."""
    out = ["## Vulnerable dependencies upgraded by corral", ""]
    out += ["| package | from → to | advisories | where |", "|---|---|---|---|"]
    for u in p.plan.upgrades:
        where = ", ".join(f"`{loc.file}:{loc.line}`" for loc in u.locations)
        advs = "<br>".join(_adv(a) for a in u.advisories)
        out.append(f"| {u.package} | {u.from_version} → **{u.to_version}** | {advs} | {where} |")
    tests = str(result.get("tests", "not run"))
    cmd = result.get("test_command") or p.tests.command
    out += ["", "## Verification", ""]
    if tests == "passed":
        out.append(f"- Tests: **passed** (`{cmd}`)")
    elif tests == "no tests found":
        out.append("- Tests: **no tests found** — nothing ran; review the upgrade by hand")
    else:
        out.append(f"- Tests: **{tests}** (`{cmd}`)" if cmd else f"- Tests: **{tests}**")
    if result.get("failure"):
        out.append(f"- Verification failed: {result['failure']} (approved by a reviewer)")
    fixed = result.get("fixed") or []
    out.append(
        "- Re-scan: "
        + (f"cleared {', '.join(f'{a} ({b})' for a, b in fixed)}" if fixed else "not confirmed")
    )
    for a, b in result.get("added") or []:
        out.append(f"- ⚠ newly vulnerable after the change: {a} {b}")
    for n in result.get("notes") or []:
        out.append(f"- {n}")
    gaps = _not_fixed(p, result)
    if gaps:
        out += ["", "## Not fixed", ""] + [f"- {g}" for g in gaps]
    out += ["", f"_{p.findings} findings in this repository; made by `corral cve campaign`._"]
    return "\n".join(out) + "\n"


def _not_fixed(p: CvePayload, result: Mapping[str, Any]) -> list[str]:
    gaps: list[str] = []
    for s in p.plan.unfixable:
        ids = ", ".join(a.id for a in s.advisories)
        gaps.append(
            f"{s.package} {s.version} ({ids}): {s.reason}. Options: {', '.join(s.options)}."
        )
    for a, b in result.get("remaining") or []:
        gaps.append(f"{a} ({b}): still present after the upgrade")
    gaps += list(p.hash_problems) + list(p.problems) + list(p.wheel_problems)
    locks = [e for e in p.edits if e.lock]
    if any(not e.hashes for e in locks):
        gaps.append(
            "lock files were updated in place (versions only); refresh their hashes with the "
            "project's locker (e.g. `poetry lock --no-update`, `uv lock`)"
        )
    elif locks:
        gaps.append(
            "lock entries were updated in place (version and file hashes, checked by pip in "
            "the sandbox); the upgraded packages' own dependencies were not re-resolved, so "
            "re-lock with the project's locker if they changed"
        )
    return gaps


@dataclass(frozen=True)
class LocalPR:
    """What is left in the repo when no forge is configured."""

    pr_md: str
    patch: str


def write_local(repo: Path, branch: str, body: str, diff: str) -> LocalPR:
    d = ignore_corral_dir(repo)
    slug = branch.replace("/", "-")
    md, patch = d / "PR.md", d / f"{slug}.patch"
    for path, text in ((md, body), (patch, diff)):
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(text)
        tmp.replace(path)
    return LocalPR(str(md), str(patch))


def result_from_reason(reason: str) -> dict[str, Any]:
    """The structured verification result the playbook appended to its final message."""
    from corral.workflows.cve.playbook import RESULT_MARK

    for line in reversed(reason.splitlines()):
        if line.startswith(RESULT_MARK):
            try:
                data = json.loads(line[len(RESULT_MARK) :])
            except ValueError:
                break
            return data if isinstance(data, dict) else {}
    return {"tests": "unknown (not verified by the playbook)"}


def env_token(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None
