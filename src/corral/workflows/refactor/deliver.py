"""The `refactor` delivery and the `playbook:refactor` model, plugged into the fleet.

`register()` runs when the `corral` CLI starts, so every worker knows both. A part's
delivery writes its patch where plain tasks write theirs (`HOME/results/CAMPAIGN/ID.patch`)
and stacks it (`stack.deliver_part`): a branch per part in the repo, and the base of the
parts that depend on it. With a forge token for the repo's remote (as for CVE pull
requests: GITHUB_TOKEN or GITLAB_TOKEN) each part also gets a pull request, stacked on
its parent's.
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

from corral.orchestrator.delivery import DeliveryRefused, write_patch
from corral.orchestrator.hooks import register_delivery, register_model
from corral.store import Store, TaskRow
from corral.workflows.forge import ForgeError, detect, open_or_update
from corral.workflows.hostgit import GitError, current_branch, git, push, remote_url
from corral.workflows.refactor.playbook import PAYLOAD_FENCE, PREFIX, factory, parse_payload
from corral.workflows.refactor.stack import KIND, Stack, StackError, deliver_part


async def deliver(
    store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path
) -> dict[str, Any]:
    payload = parse_payload(task.spec.instructions)
    outside = sorted(set(diff_paths(diff)) - set(payload["files"]))
    if outside:  # an agent's word is not enough: the diff says what it touched
        raise DeliveryRefused(
            f"the change touches files outside this part: {', '.join(outside[:5])}"
            + (f" and {len(outside) - 5} more" if len(outside) > 5 else "")
        )
    result = write_patch(home, task, diff)
    if not payload.get("stack"):
        return result
    stack = Stack.from_payload(payload["stack"])
    part = str(payload["part"])
    title = f"refactor {stack.name}: part {part}"
    try:
        result |= await asyncio.to_thread(
            deliver_part, stack, part, diff, f"{title}\n\n{payload['goal']}"
        )
    except (StackError, GitError) as exc:
        raise DeliveryRefused(f"part {part} cannot be stacked: {exc}") from None
    try:
        return result | await open_pr(stack, part, task.spec.depends_on, result, title,
                                      _prose(task.spec.instructions))  # fmt: skip
    except (GitError, ForgeError) as exc:  # the part is stacked: never redo it for a PR
        return result | {"pr": None, "pr_error": str(exc)}


async def open_pr(
    stack: Stack, part: str, deps: tuple[str, ...], done: dict[str, Any], title: str, body: str
) -> dict[str, Any]:
    """Push the part's branch and open (or update) its pull request, stacked on its
    parent's: one parent - its branch; several - a `-base` branch holding their merge."""
    remote = os.environ.get("CORRAL_PR_REMOTE", "origin")
    url = await remote_url(stack.repo, remote)
    forge = detect(url, dict(os.environ)) if url else None
    if forge is None:
        return {"pr": None, "note": "no GITHUB_TOKEN/GITLAB_TOKEN for this remote: branches "
                "left locally"}  # fmt: skip
    auth = forge.auth_header_for_git()
    if not deps:
        base = os.environ.get("CORRAL_PR_BASE") or await current_branch(stack.repo)
    elif len(deps) == 1:
        base = stack.branch(deps[0])
    else:
        base = f"{stack.branch(part)}-base"
        await asyncio.to_thread(git, stack.repo, "update-ref", f"refs/heads/{base}", done["base"])
        await push(stack.repo, remote, base, auth)
    await push(stack.repo, remote, stack.branch(part), auth)
    if deps:
        body += f"\nStacked on {', '.join(deps)}: merge those first.\n"
    pr = await open_or_update(forge, branch=stack.branch(part), base=base, title=title, body=body)
    return {"pr": pr, "pr_base": base}


def _prose(instructions: str) -> str:
    """The task's words without the JSON block the playbook reads (the last one)."""
    return instructions.rsplit(PAYLOAD_FENCE, 1)[0].rstrip() + "\n"


_DIFF_HEAD = re.compile(r"^diff --git a/(.+?) b/(.+)$", re.MULTILINE)


def diff_paths(diff: str) -> list[str]:
    """Every path a git diff touches (both sides of a rename)."""
    paths: list[str] = []
    for m in _DIFF_HEAD.finditer(diff):
        paths += [m.group(1), m.group(2)]
    for m in re.finditer(r"^(?:rename|copy) (?:from|to) (.+)$", diff, re.MULTILINE):
        paths.append(m.group(1))
    return paths


_done = False


def register() -> None:
    """Idempotent: `playbook:refactor` as a model spec, `refactor` tasks' delivery."""
    global _done
    if not _done:
        register_model(PREFIX, factory)
        register_delivery(KIND, deliver)
        _done = True
