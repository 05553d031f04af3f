"""The `refactor` delivery and the `playbook:refactor` model, plugged into the fleet.

`register()` runs when the `corral` CLI starts, so every worker knows both. A part's
delivery writes its patch where plain tasks write theirs (`HOME/results/CAMPAIGN/ID.patch`)
and stacks it (`stack.deliver_part`): a branch per part in the repo, and the base of the
parts that depend on it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from corral.orchestrator.delivery import write_patch
from corral.orchestrator.hooks import register_delivery, register_model
from corral.store import Store, TaskRow
from corral.workflows.refactor.playbook import PREFIX, factory, parse_payload
from corral.workflows.refactor.stack import KIND, Stack, deliver_part_async


async def deliver(
    store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path
) -> dict[str, Any]:
    payload = parse_payload(task.spec.instructions)
    result = write_patch(home, task, diff)
    stack = payload.get("stack")
    if stack:
        part = str(payload["part"])
        message = f"refactor {stack['name']}: part {part}\n\n{payload.get('goal', '')}".strip()
        result |= await deliver_part_async(Stack.from_payload(stack), part, diff, message)
    return result


_done = False


def register() -> None:
    """Idempotent: `playbook:refactor` as a model spec, `refactor` tasks' delivery."""
    global _done
    if not _done:
        register_model(PREFIX, factory)
        register_delivery(KIND, deliver)
        _done = True
