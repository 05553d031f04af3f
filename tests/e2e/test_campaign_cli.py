"""`corral campaign ...`, `tasks`, `review`, `cancel`, `retry` through the real CLI."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import yaml
from tests.e2e.conftest import DEMO, Cli, make_repo, write_script


def _campaign(tmp_path: Path, tasks: list[dict[str, Any]], **top: Any) -> Path:
    f = tmp_path / "campaign.yaml"
    f.write_text(yaml.safe_dump({"name": "fix-pricing", "team": "platform", **top, "tasks": tasks}))
    return f


def test_campaign_run_status_and_tasks(cli: Cli, tmp_path: Path) -> None:
    tasks = [
        {"id": f"shop{i}", "repo": str(make_repo(tmp_path / f"shop{i}")),
         "instructions": "fix the pricing bug", "model": f"scripted:{DEMO / 'agent.yaml'}",
         "max_attempts": 2, "priority": i}
        for i in range(3)
    ]  # fmt: skip
    code, out = cli.json("campaign", "run", str(_campaign(tmp_path, tasks)), "--concurrency", "2")
    assert code == 0, out
    assert out["state"] == "finished" and out["counts"] == {"succeeded": 3}
    assert [(t["key"], t["state"], t["attempts"]) for t in out["tasks"]] == [
        (f"shop{i}", "succeeded", 1) for i in range(3)
    ]
    cid = out["id"]
    code, st = cli.json("campaign", "status", cid[:12])
    assert code == 0 and st["tasks"] == out["tasks"]
    p = cli("tasks", "ls", "--campaign", cid, "--state", "succeeded", "--json")
    assert p.returncode == 0 and len(json.loads(p.stdout)) == 3
    patch = cli.home / "results" / cid / "shop2.patch"
    assert "(100 - percent)" in patch.read_text()
    # the attempt's events are in the same store
    attempt_events = cli("attempts", "--json")
    assert attempt_events.returncode == 0 and len(json.loads(attempt_events.stdout)) == 3


def test_review_approval_after_restart(cli: Cli, tmp_path: Path) -> None:
    tasks = [
        {"id": k, "repo": str(make_repo(tmp_path / k)), "instructions": "fix pricing",
         "model": f"scripted:{DEMO / 'agent.yaml'}", "require_approval": True}
        for k in ("a", "b")
    ]  # fmt: skip
    code, out = cli.json("campaign", "run", str(_campaign(tmp_path, tasks)))
    assert code == 1 and out["counts"] == {"needs_review": 2}, out
    cid = out["id"]
    assert not (cli.home / "results" / cid).exists(), "nothing is delivered before approval"
    p = cli("review", "list", "--json")
    reviews = json.loads(p.stdout)
    assert len(reviews) == 2
    shown = json.loads(cli("review", "show", reviews[0]["id"], "--json").stdout)
    assert "(100 - percent)" in shown["diff"]
    keys = {r["task_id"]: r["id"] for r in reviews}
    a_id = next(t["id"] for t in out["tasks"] if t["key"] == "a")
    b_id = next(t["id"] for t in out["tasks"] if t["key"] == "b")
    assert cli("review", "approve", keys[a_id], "--comment", "lgtm").returncode == 0
    assert cli("review", "reject", keys[b_id], "--comment", "no").returncode == 0
    again = cli("review", "approve", keys[b_id])
    assert again.returncode == 2 and "already decided" in again.stderr
    # a new process picks the decisions up and finishes the campaign
    code, done = cli.json("campaign", "resume", cid)
    states = {t["key"]: t["state"] for t in done["tasks"]}
    assert states == {"a": "succeeded", "b": "rejected"} and code == 1
    assert (cli.home / "results" / cid / "a.patch").is_file()
    assert not (cli.home / "results" / cid / "b.patch").exists()


def test_cancel_and_retry(cli: Cli, tmp_path: Path) -> None:
    turns = [{"tool_calls": [{"tool": "bash", "args": {"command": "echo no"}}]}] * 5
    script = write_script(tmp_path / "stuck.json", turns)
    tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
              "model": f"scripted:{script}"}]  # fmt: skip
    code, out = cli.json("campaign", "run", str(_campaign(tmp_path, tasks)))
    assert code == 1 and out["tasks"][0]["state"] == "failed"
    tid = out["tasks"][0]["id"]
    assert cli("retry", tid).returncode == 0
    p = cli("tasks", "ls", "--state", "ready", "--json")
    assert [t["id"] for t in json.loads(p.stdout)] == [tid]
    assert cli("cancel", tid).returncode == 0
    p = cli("tasks", "ls", "--state", "cancelled", "--json")
    assert [t["id"] for t in json.loads(p.stdout)] == [tid]


def test_malformed_campaign_file_names_file_line_and_field(cli: Cli, tmp_path: Path) -> None:
    f = tmp_path / "bad.yaml"
    f.write_text(
        "name: x\ntasks:\n  - id: t1\n    repo: .\n    instructions: go\n    max_attempts: zero\n"
    )
    p = cli("campaign", "run", str(f))
    assert p.returncode == 2
    assert p.stderr.strip().startswith(f"error: {f}:6: tasks[0].max_attempts:"), p.stderr
    f.write_text("name: x\ntasks: [\n")
    p = cli("campaign", "run", str(f))
    assert (
        p.returncode == 2 and "invalid YAML" in p.stderr and len(p.stderr.strip().splitlines()) == 1
    )
    p = cli("tasks", "ls", "--state", "sleeping")
    assert p.returncode == 2 and "unknown state" in p.stderr
