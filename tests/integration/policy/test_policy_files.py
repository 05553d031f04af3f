"""Campaign and task policy files decide real attempts (scripted agents, bwrap, SQLite),
and the rules a task was created with are the rules it resumes with."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import pytest
from tests.integration.orchestrator.conftest import campaign_file, make_repo, script
from typer.testing import CliRunner

from corral.cli.main import app
from corral.domain import ActionTaken, Observed
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.run import replay_attempt
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store
from corral.store.audit import AuditStore

INDEX = "echo pip install --index-url https://pkgs.internal.example/simple foo > pip.txt"
FAST = WorkerSettings(poll_s=0.05, heartbeat_s=0.2, lease_ttl_s=5)


@pytest.fixture
async def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = await Store.open(home=tmp_path / ".corral")
    yield s
    await s.close()


def _settings(tmp_path: Path) -> WorkerSettings:
    return FAST.model_copy(update={"home": tmp_path / ".corral"})


async def _read(path: str) -> str:
    return await asyncio.to_thread(Path(path).read_text)


async def _outputs(store: Store, task_id: str, n: int = -1) -> list[str]:
    attempt = (await store.attempts_of(task_id))[n]
    return [e.output for e in await store.events(attempt["id"]) if isinstance(e, Observed)]


async def test_campaign_and_task_files_change_decisions(store: Store, tmp_path: Path) -> None:
    # The installation trusts any index; campaign "strict" asks before using one, and in
    # campaign "loose" one task denies writing `secret.txt` while its sibling may.
    (tmp_path / ".corral" / "policy.yaml").write_text("disable: [unknown-index]\n")
    (tmp_path / "strict.yaml").write_text(
        "rules: [{name: internal-index, decision: require_approval, tools: [bash],"
        " command: '--index-url'}]\n"
    )
    (tmp_path / "deny.yaml").write_text(
        "rules: [{name: no-secret-file, decision: deny, command: 'secret\\.txt'}]\n"
    )
    repo = str(make_repo(tmp_path / "r"))
    pip = script(tmp_path / "pip.json", [INDEX])
    touch = script(tmp_path / "touch.json", ["echo x > secret.txt", "echo y > other.txt"])

    def task(tid: str, s: Path, **kw: Any) -> dict[str, Any]:
        return {"id": tid, "repo": repo, "instructions": "x", "model": f"scripted:{s}",
                "sandbox": "bwrap"} | kw  # fmt: skip

    strict = campaign_file(
        tmp_path / "strict-c.yaml",
        {"name": "strict", "policy": "strict.yaml", "tasks": [task("pip", pip)]},
    )
    loose = campaign_file(
        tmp_path / "loose-c.yaml",
        {"name": "loose", "tasks": [task("pip", pip), task("deny", touch, policy="deny.yaml"),
                                    task("free", touch)]},
    )  # fmt: skip
    home = tmp_path / ".corral"
    c1 = await create_from_file(store, strict, home=home)
    c2 = await create_from_file(store, loose, home=home)
    s1 = await run_campaign(store, c1, _settings(tmp_path))
    s2 = await run_campaign(store, c2, _settings(tmp_path))

    (held,) = s1["tasks"]
    assert held["state"] == "needs_review", s1
    (review,) = await store.reviews()
    assert review.reason.startswith("approval required: internal-index: echo pip install")
    by_key = {t["key"]: t for t in s2["tasks"]}
    assert {k: t["state"] for k, t in by_key.items()} == dict.fromkeys(
        ("pip", "deny", "free"), "succeeded"
    )
    denied = await _outputs(store, by_key["deny"]["id"])
    assert "denied by rule 'no-secret-file'" in denied[0] and "policy" not in denied[1]
    for key, has_secret in (("deny", False), ("free", True)):
        (attempt,) = await store.attempts_of(by_key[key]["id"])
        patch = await _read(attempt["patch_path"])
        assert "other.txt" in patch and ("secret.txt" in patch) is has_secret
    (pip_attempt,) = await store.attempts_of(by_key["pip"]["id"])
    assert "pip.txt" in await _read(pip_attempt["patch_path"])

    # every audit entry names the rules that applied; the two campaigns' differ
    entries = [e async for e in AuditStore(store).entries()]
    digests = {e.detail["rule"]: e.detail["policy"] for e in entries if e.kind == "policy"}
    assert set(digests) == {"internal-index", "no-secret-file"}
    assert digests["internal-index"] != digests["no-secret-file"]

    # `corral replay` of the denied task's attempt runs under that task's rules too
    (attempt,) = await store.attempts_of(by_key["deny"]["id"])
    replayed = await replay_attempt(attempt["id"], store=store, home=home)
    assert replayed.same_actions and replayed.same_diff
    again = [e.output for e in replayed.run.events if isinstance(e, Observed)]
    assert again[0] == denied[0]


async def test_resume_after_approval_uses_the_rules_the_campaign_was_created_with(
    store: Store, tmp_path: Path
) -> None:
    turns = [
        {"tool_calls": [{"tool": "bash", "args": {"command": "echo one > a.txt"}}]},
        {"tool_calls": [{"tool": "bash", "args": {"command": "make release"}}]},
        {"tool_calls": [{"tool": "bash", "args": {"command": "echo two > deploy.txt"}}]},
        {"tool_calls": [{"tool": "finish", "args": {"message": "done"}}]},
    ]
    s = tmp_path / "s.json"
    s.write_text(json.dumps(turns))
    policy = tmp_path / "p.yaml"
    policy.write_text(
        "rules:\n"
        "  - {name: ask-release, decision: require_approval, command: 'make release'}\n"
        "  - {name: no-deploy, decision: deny, command: deploy}\n"
    )
    tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
              "model": f"scripted:{s}", "sandbox": "bwrap"}]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "p", "policy": "p.yaml", "tasks": tasks})
    cid = await create_from_file(store, f)
    policy.write_text("rules: []\n")  # edited after creation: changes nothing

    status = await run_campaign(store, cid, _settings(tmp_path))
    assert status["tasks"][0]["state"] == "needs_review", status
    (review,) = await store.reviews()
    assert "ask-release" in review.reason
    policy.unlink()  # gone before the resume: the snapshot still applies
    assert await store.decide_review(review.id, approve=True, comment=None, by="ann")
    status = await asyncio.wait_for(run_campaign(store, cid, _settings(tmp_path)), 120)
    assert status["tasks"][0]["state"] == "succeeded", status
    second = (await store.attempts_of(status["tasks"][0]["id"]))[1]
    events = await store.events(second["id"])
    actions = [e.args.get("command") for e in events if isinstance(e, ActionTaken)]
    assert actions == ["echo one > a.txt", "make release", "echo two > deploy.txt", None]
    outs = [e.output for e in events if isinstance(e, Observed)]
    assert "make" in outs[1] and "policy:" not in outs[1]  # the approved action ran
    assert "denied by rule 'no-deploy'" in outs[2]
    patch = await _read(second["patch_path"])
    assert "a.txt" in patch and "deploy.txt" not in patch


async def test_a_bad_policy_file_stops_campaign_run_before_anything_runs(tmp_path: Path) -> None:
    repo = str(make_repo(tmp_path / "r"))
    s = script(tmp_path / "s.json", ["echo hi > x.txt"])
    (tmp_path / "p.yaml").write_text("rules: [{name: x, decision: denyy, command: x}]\n")
    tasks = [{"id": "t", "repo": repo, "instructions": "x", "model": f"scripted:{s}",
              "sandbox": "bwrap", "policy": "p.yaml"}]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "bad", "tasks": tasks})
    home = tmp_path / ".corral"
    runner = CliRunner()
    out = await asyncio.to_thread(
        runner.invoke, app, ["campaign", "run", str(f), "--home", str(home)]
    )
    assert out.exit_code == 2, out.output
    (line,) = out.output.strip().splitlines()
    assert line.startswith(f"error: {f}:8: tasks[0].policy: {tmp_path / 'p.yaml'}: rule #1:")
    # a bad installation policy is caught there too, naming its file
    (tmp_path / "p.yaml").write_text("rules: []\n")
    (home / "policy.yaml").write_text("disable: [no-such-rule]\n")
    out = await asyncio.to_thread(
        runner.invoke, app, ["campaign", "run", str(f), "--home", str(home)]
    )
    assert out.exit_code == 2, out.output
    assert out.output.strip() == (
        f"error: {home / 'policy.yaml'}: cannot disable unknown rule 'no-such-rule'"
    )
    store = await Store.open(home=home)
    try:
        assert await store.list_campaigns(10) == []
    finally:
        await store.close()


async def test_corral_run_refuses_a_repo_that_ships_a_looser_policy(tmp_path: Path) -> None:
    """`corral run --repo .` with the default home `./.corral`: a `.corral/policy.yaml`
    the repository carries may not switch a rule off; one line, before anything runs."""
    repo = make_repo(tmp_path / "r")
    home = repo / ".corral"
    home.mkdir()
    (home / "policy.yaml").write_text("disable: [git-push]\n")
    s = script(tmp_path / "s.json", ["git push origin main"])
    args = ["run", "push", "--repo", str(repo), "--model", f"scripted:{s}", "--home", str(home)]
    out = await asyncio.to_thread(CliRunner().invoke, app, args)
    assert out.exit_code == 2, out.output
    assert out.output.strip() == (
        f"error: {home / 'policy.yaml'} (inside the repository under work, so it may only add "
        "rules): `disable` is not allowed: a campaign, task or in-repository policy may only "
        "add rules (only the installation's policy.yaml may relax one)"
    )
    assert not (home / "corral.db").exists()
