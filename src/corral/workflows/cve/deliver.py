"""The `cve` delivery and the `playbook:cve` model, plugged into the orchestrator's hooks.

`register()` is called when this package's campaign or CLI is imported, so any worker
running `corral` knows both. The orchestrator wraps the delivery in an idempotency key;
on top of that every step here is itself safe to repeat (same branch, same commit,
PR found by branch and updated), so a crash between "PR opened" and "recorded" is fine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from corral.domain import AttemptEnded
from corral.orchestrator.hooks import build_model, register_delivery, register_model
from corral.orchestrator.policy import default_redactor
from corral.store import Store, TaskRow
from corral.workflows.cve.playbook import PREFIX, playbook_factory
from corral.workflows.cve.pr import branch_name, pr_body, pr_title, result_from_reason, write_local
from corral.workflows.cve.tasks import parse_instructions
from corral.workflows.forge import detect, open_or_update
from corral.workflows.hostgit import commit_branch, current_branch, is_git_repo, push, remote_url

KIND = "cve"


async def final_reason(store: Store, attempt_id: str) -> str:
    for event in reversed(await store.events(attempt_id)):
        if isinstance(event, AttemptEnded):
            return event.reason
    return ""


async def deliver_pr(
    store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path
) -> dict[str, Any]:
    """Branch + commit on the repo; PR through the forge API if a token is set; else
    PR.md and the patch in the repo's `.corral/`."""
    payload = parse_instructions(task.spec.instructions)
    result = result_from_reason(await final_reason(store, attempt_id))
    repo = Path(task.spec.repo)
    out: dict[str, Any] = {
        "tests": result.get("tests"),
        "fixed": result.get("fixed", []),
        "branch": None,
        "commit": None,
        "pr": None,
    }
    if not diff.strip():
        return out | {"empty": True, "note": "the run changed nothing; no pull request"}
    branch = branch_name(task.id)
    title, body = pr_title(payload), pr_body(payload, result)
    r = default_redactor()  # the files left in `.corral/` are redacted; the commit is not
    local = write_local(repo, branch, r.redact(body), r.redact(diff))
    out |= {"pr_md": local.pr_md, "patch": local.patch}
    if not await is_git_repo(repo):
        return out | {"note": "not a git repository: no branch; see PR.md and the patch"}
    out["commit"] = await commit_branch(repo, diff, branch, f"{title}\n\n{body}")
    out["branch"] = branch
    remote = os.environ.get("CORRAL_PR_REMOTE", "origin")
    url = await remote_url(repo, remote)
    forge = detect(url, dict(os.environ)) if url else None
    if forge is None:
        return out | {"note": "no GITHUB_TOKEN/GITLAB_TOKEN for this remote: branch left locally"}
    await push(repo, remote, branch, forge.auth_header_for_git())
    base = os.environ.get("CORRAL_PR_BASE") or await current_branch(repo)
    out["pr"] = await open_or_update(forge, branch=branch, base=base, title=title, body=body)
    return out


_done = False


def register() -> None:
    """Idempotent: plug the playbook model and the PR delivery into the orchestrator."""
    global _done
    if _done:
        return
    register_model(PREFIX, playbook_factory(build_model))
    register_delivery(KIND, deliver_pr)
    _done = True
