"""What a successful task leaves behind, done exactly once per task (idempotency key).

The default delivery writes the task's patch to `HOME/results/CAMPAIGN/TASK.patch`.
Workflows (CVE PRs) register their own delivery under the same key discipline.

Secrets: a diff that adds a secret value or token shape is never delivered (the task
waits in review, saying where; see `secret_hold`), since pushing it would publish the
secret and redacting it would silently change the code. What corral writes itself (the
patch file, the delivery's record) is redacted.
"""

from __future__ import annotations

import asyncio
import hashlib
from pathlib import Path
from typing import Any

from corral.domain import CorralError
from corral.orchestrator.hooks import delivery_for
from corral.orchestrator.policy import default_redactor
from corral.orchestrator.policy.diffs import added_secret, restore_redacted
from corral.store import Store, TaskRow


class DeliveryRefused(CorralError):
    """The diff cannot be delivered as it is (a secret in it, a change that no longer
    fits): the task waits in review with the message, instead of being retried."""


def delivery_key(task: TaskRow) -> str:
    return f"deliver:{task.id}"


def secret_hold(diff: str) -> str | None:
    """Why a finished task's diff waits in review instead of being delivered, or None."""
    where = added_secret(diff, default_redactor())
    if where is None:
        return None
    return (
        f"diff contains a secret-shaped value at {where}: not delivered (corral keeps no "
        "copy of secrets, so approving cannot deliver it; reject, or retry without it)"
    )


async def deliver(
    store: Store, task: TaskRow, *, attempt_id: str, diff: str, home: Path
) -> dict[str, Any]:
    """Idempotent: a second call (after a crash, or by a second worker) changes nothing.
    Raises DeliveryRefused for a diff that adds a secret."""
    key = delivery_key(task)
    done = await store.side_effect(key)
    if done is not None:
        return done
    why = secret_hold(diff)
    if why is not None:
        raise DeliveryRefused(why)
    redactor = default_redactor()
    custom = delivery_for(task.kind)
    if custom is not None:
        result = await custom(store, task, attempt_id, diff, home)
        kind, result = task.kind, redactor.redact_obj(result)
    else:
        kind, result = "patch", write_patch(home, task, diff)
    # Done is done: a cancel arriving now must not lose the record of a PR already open
    # (the stopped attempt reads it back, see `_Runner._stopped`).
    return await asyncio.shield(
        store.record_side_effect(key, kind=kind, attempt_id=attempt_id, result=result)
    )


def write_patch(home: Path, task: TaskRow, diff: str) -> dict[str, Any]:
    """`HOME/results/CAMPAIGN/TASK.patch`, redacted; what a plain task's delivery is."""
    text = default_redactor().redact(diff)
    out = home / "results" / task.campaign_id / f"{task.key}.patch"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".patch.tmp")
    tmp.write_text(text)
    tmp.replace(out)  # atomic: a crash never leaves half a patch
    return {"patch": str(out), "sha256": hashlib.sha256(text.encode()).hexdigest(),
            "empty": not diff}  # fmt: skip


async def deliver_reviewed(
    store: Store, task: TaskRow, *, attempt_id: str, diff: str, home: Path
) -> dict[str, Any]:
    """Deliver an approved review's diff, which the store holds redacted: text redacted
    on an added line cannot be delivered (DeliveryRefused); redacted lines the repository
    already has are put back from it first."""
    done = await store.side_effect(delivery_key(task))
    if done is not None:
        return done
    redactor = default_redactor()
    where = added_secret(diff, redactor, redacted=True)
    if where is not None:
        raise DeliveryRefused(
            f"not delivered: the approved diff holds a secret at {where}, and corral keeps "
            "no copy of secrets; retry the task without it"
        )
    full = restore_redacted(diff, Path(task.spec.repo), redactor)
    if full is None:
        if delivery_for(task.kind) is not None:
            raise DeliveryRefused(
                "not delivered: the approved diff has redacted lines around the change that "
                f"no longer match the files of {task.spec.repo}; retry the task"
            )
        full = diff  # the default delivery writes a redacted patch anyway
    return await deliver(store, task, attempt_id=attempt_id, diff=full, home=home)
