"""What a successful task leaves behind, done exactly once per task (idempotency key).

The default delivery writes the task's patch to `HOME/results/CAMPAIGN/TASK.patch`.
Workflows (CVE PRs) register their own delivery under the same key discipline.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from corral.orchestrator.hooks import delivery_for
from corral.store import Store, TaskRow


def delivery_key(task: TaskRow) -> str:
    return f"deliver:{task.id}"


async def deliver(
    store: Store, task: TaskRow, *, attempt_id: str, diff: str, home: Path
) -> dict[str, Any]:
    """Idempotent: a second call (after a crash, or by a second worker) changes nothing."""
    key = delivery_key(task)
    done = await store.side_effect(key)
    if done is not None:
        return done
    custom = delivery_for(task.kind)
    if custom is not None:
        result = await custom(store, task, attempt_id, diff, home)
        return await store.record_side_effect(
            key, kind=task.kind, attempt_id=attempt_id, result=result
        )
    out = home / "results" / task.campaign_id / f"{task.key}.patch"
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".patch.tmp")
    tmp.write_text(diff)
    tmp.replace(out)  # atomic: a crash never leaves half a patch
    result = {
        "patch": str(out),
        "sha256": hashlib.sha256(diff.encode()).hexdigest(),
        "empty": not diff,
    }
    return await store.record_side_effect(key, kind="patch", attempt_id=attempt_id, result=result)
