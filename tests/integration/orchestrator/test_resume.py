"""An action held for approval pauses the attempt into review; approval resumes it from
its event log: recorded turns replayed (no model call), the approved action run, then
the live model carries on from where it stopped."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from tests.integration.orchestrator.conftest import campaign_file, make_repo

from corral.domain import ActionTaken, ModelCalled, Observed, TaskState
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store

TURNS = [
    {"tool_calls": [{"tool": "bash", "args": {"command": "echo hello > note.txt"}}]},
    {"tool_calls": [{"tool": "bash", "args": {"command": "git push origin HEAD"}}]},
    {"tool_calls": [{"tool": "finish", "args": {"message": "pushed"}}]},
]


async def test_approval_resumes_the_attempt_where_it_stopped(tmp_path: Path) -> None:
    store = await Store.open(home=tmp_path / ".corral")
    script = tmp_path / "push.json"
    script.write_text(json.dumps(TURNS))
    tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
              "model": f"scripted:{script}", "sandbox": "local"}]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "p", "unsafe_local": True, "tasks": tasks})
    cid = await create_from_file(store, f)
    settings = WorkerSettings(home=tmp_path / ".corral", poll_s=0.05, heartbeat_s=0.2)

    status = await run_campaign(store, cid, settings)
    task = status["tasks"][0]
    assert task["state"] == "needs_review", status
    review = next(r for r in await store.reviews() if r.task_id == task["id"])
    assert "approval required" in review.reason and "git push" in review.reason
    first = (await store.attempts_of(task["id"]))[0]
    outputs = [e.output for e in await store.events(first["id"]) if isinstance(e, Observed)]
    assert not any("does not appear to be a git repository" in o for o in outputs), outputs

    assert await store.decide_review(review.id, approve=True, comment="ok", by="ann")
    status = await asyncio.wait_for(run_campaign(store, cid, settings), 120)
    assert status["tasks"][0]["state"] == TaskState.succeeded.value, status
    second = (await store.attempts_of(task["id"]))[1]
    events = await store.events(second["id"])
    actions = [e.args.get("command") for e in events if isinstance(e, ActionTaken)]
    assert actions == ["echo hello > note.txt", "git push origin HEAD", None]
    # the approved push ran this time (and failed for want of a remote: that is its output)
    push = [e for e in events if isinstance(e, Observed) and e.tool == "bash"][1]
    assert "does not appear to be a git repository" in push.output, push.output
    # replayed turns cost nothing and the script carried on at its third turn
    calls = [e for e in events if isinstance(e, ModelCalled)]
    assert len(calls) == 3 and all(c.completion.cost_usd == 0 for c in calls)
    patch = await asyncio.to_thread(Path(second["patch_path"]).read_text)
    assert "note.txt" in patch
    await store.close()
