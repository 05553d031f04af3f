"""An approved review's diff is stored redacted; a delivery that applies it to the repo
(as the CVE pull request does) still gets the exact change: redacted lines the repo
already holds are put back, and a diff that no longer matches is refused, not mangled."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from tests.integration.orchestrator.conftest import GIT, campaign_file, script

from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.hooks import register_delivery
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store, TaskRow

OLD = "sk-" + "0ldRepoFixture" * 2
KIND = "test-apply"
applied: list[str] = []


async def _apply(store: Store, task: TaskRow, attempt_id: str, diff: str, home: Path) -> Any:
    proc = await asyncio.create_subprocess_exec(
        "git", "-C", task.spec.repo, "apply", "--check", "-", stdin=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    _, err = await proc.communicate(diff.encode())
    assert proc.returncode == 0, err.decode()
    applied.append(diff)
    return {"applied": True}


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    register_delivery(KIND, _apply)
    applied.clear()
    s = await Store.open(home=tmp_path / ".corral")
    yield s
    await s.close()


def _repo(path: Path) -> Path:
    path.mkdir()
    (path / "settings.py").write_text(f"A = 1\nKEY = '{OLD}'\nB = 2\n")
    subprocess.run(["git", "init", "-q"], cwd=path, check=True)
    subprocess.run([*GIT, "add", "-A"], cwd=path, check=True)
    subprocess.run([*GIT, "commit", "-qm", "init"], cwd=path, check=True)
    return path


async def _approve_and_run(store: Store, tmp_path: Path, *, edit_repo: bool) -> dict[str, Any]:
    repo = _repo(tmp_path / "r")
    s = script(tmp_path / "s.json", ["sed -i 's/^B = 2$/B = 3/' settings.py"])
    tasks = [{"id": "t", "repo": str(repo), "instructions": "x", "model": f"scripted:{s}",
              "sandbox": "bwrap", "kind": KIND, "require_approval": True}]  # fmt: skip
    cid = await create_from_file(store, campaign_file(tmp_path / "c.yaml",
                                                      {"name": "a", "tasks": tasks}))  # fmt: skip
    settings = WorkerSettings(home=tmp_path / ".corral", poll_s=0.05, heartbeat_s=0.2)
    status = await run_campaign(store, cid, settings)
    assert status["tasks"][0]["state"] == "needs_review", status
    (review,) = await store.reviews()
    assert OLD not in review.diff and "[REDACTED:api_key]" in review.diff
    if edit_repo:
        (repo / "settings.py").write_text("A = 1\nKEY = 'rotated'\nB = 2\n")
    assert await store.decide_review(review.id, approve=True, comment=None, by="ann")
    return (await asyncio.wait_for(run_campaign(store, cid, settings), 60))["tasks"][0]


async def test_an_approved_diff_is_delivered_as_the_agent_made_it(
    store: Store, tmp_path: Path
) -> None:
    task = await _approve_and_run(store, tmp_path, edit_repo=False)
    assert task["state"] == "succeeded", task
    (diff,) = applied
    assert f" KEY = '{OLD}'" in diff and "+B = 3" in diff  # checked by `git apply --check`


async def test_a_redacted_line_that_no_longer_matches_is_refused(
    store: Store, tmp_path: Path
) -> None:
    task = await _approve_and_run(store, tmp_path, edit_repo=True)
    assert task["state"] == "failed" and applied == []
    assert "redacted lines around the change that no longer match" in task["reason"]
