"""A secret the agent writes into a file leaks through no diff: not through the review
queue, a stored row, a file under `.corral/` or any CLI output, and it is never
delivered. A secret the repository already had (next to a change) is redacted the same
way, yet the change around it is delivered. The real `corral` command, bwrap, SQLite."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import yaml

CORRAL = str(Path(sys.executable).parent / "corral")
VALUE = "deploy-canary-3b9f2e7a1d"  # a host secret: known by value (env name has TOKEN)
SHAPED = "ghp_" + "C4n4ry" * 6  # a token shape the agent makes up
OLD = "sk-" + "0ldRepoFixture" * 2  # a token shape the repository already holds
SECRETS = (VALUE, SHAPED, OLD)


def _turns(*commands: str, message: str = "done") -> list[dict[str, Any]]:
    turns: list[dict[str, Any]] = [
        {"tool_calls": [{"tool": "bash", "args": {"command": c}}]} for c in commands
    ]
    return [*turns, {"tool_calls": [{"tool": "finish", "args": {"message": message}}]}]


class _Cli:
    def __init__(self, home: Path) -> None:
        self.home = home
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
        self.env["CORRAL_DEPLOY_TOKEN"] = VALUE
        self.seen: list[str] = []

    def __call__(self, *args: str) -> subprocess.CompletedProcess[str]:
        p = subprocess.run(
            [CORRAL, *args, "--home", str(self.home)], capture_output=True, text=True,
            timeout=180, env=self.env, cwd=self.home.parent,
        )  # fmt: skip
        self.seen += [p.stdout, p.stderr]
        return p


def _leaks(text: str | bytes) -> list[str]:
    data = text.encode() if isinstance(text, str) else text
    return [s for s in SECRETS if s.encode() in data]


def test_secrets_in_diffs_never_leak_and_are_never_delivered(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "settings.py").write_text(f"A = 1\nKEY = '{OLD}'\nB = 2\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"],
                   cwd=repo, check=True)  # fmt: skip
    scripts = {
        "leak": _turns(f"echo DEPLOY={VALUE} > deploy.env", f"echo \"GH = '{SHAPED}'\" >> x.py",
                       message=f"wrote {VALUE} and {SHAPED}"),
        "near": _turns("sed -i 's/^A = 1$/A = 2/' settings.py"),
        "near-review": _turns("sed -i 's/^B = 2$/B = 3/' settings.py"),
    }  # fmt: skip
    tasks = []
    for key, turns in scripts.items():
        (tmp_path / f"{key}.json").write_text(json.dumps(turns))
        tasks.append({"id": key, "repo": str(repo), "instructions": "edit",
                      "model": f"scripted:{tmp_path / f'{key}.json'}", "sandbox": "bwrap",
                      "require_approval": key == "near-review"})  # fmt: skip
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump({"name": "canary", "tasks": tasks}))
    cli = _Cli(tmp_path / ".corral")

    run = cli("campaign", "run", str(camp), "--json")
    status = json.loads(run.stdout)
    states = {t["key"]: t for t in status["tasks"]}
    assert {k: t["state"] for k, t in states.items()} == {
        "leak": "needs_review", "near": "succeeded", "near-review": "needs_review",
    }, run.stderr  # fmt: skip
    reason = states["leak"]["reason"]
    assert reason.startswith("diff contains a secret-shaped value at deploy.env:1 (env:")
    assert "not delivered" in reason

    reviews = json.loads(cli("review", "list", "--json").stdout)
    by_task = {r["task_id"]: r for r in reviews}
    leak, near_review = by_task[states["leak"]["id"]], by_task[states["near-review"]["id"]]
    shown = cli("review", "show", leak["id"]).stdout
    assert "deploy.env" in shown and "[REDACTED:env:CORRAL_DEPLOY_TOKEN]" in shown
    assert "[REDACTED:github_token]" in shown
    near_shown = json.loads(cli("review", "show", near_review["id"], "--json").stdout)
    assert "[REDACTED:api_key]" in near_shown["diff"] and "+B = 3" in near_shown["diff"]

    # approving the leak cannot deliver it; approving the other delivers it
    assert cli("review", "approve", leak["id"]).returncode == 0
    assert cli("review", "approve", near_review["id"]).returncode == 0
    resumed = json.loads(cli("campaign", "resume", status["id"], "--json").stdout)
    after = {t["key"]: t for t in resumed["tasks"]}
    assert after["leak"]["state"] == "failed"
    assert after["leak"]["reason"].startswith(
        "not delivered: the approved diff holds a secret at deploy.env:1"
    )
    assert after["near-review"]["state"] == "succeeded"
    results = cli.home / "results" / status["id"]
    assert sorted(p.name for p in results.iterdir()) == ["near-review.patch", "near.patch"]
    near_patch = (results / "near.patch").read_text()
    assert "+A = 2" in near_patch and "[REDACTED:api_key]" in near_patch

    for args in (
        ("campaign", "status", status["id"], "--json"),
        ("tasks", "ls"),
        ("attempts",),
        ("audit", "export"),
        ("review", "list", "--all", "--json"),
    ):
        assert cli(*args).returncode == 0  # fmt: skip
    attempt_ids = [a["id"] for a in json.loads(cli("attempts", "--json").stdout)]
    assert len(attempt_ids) == 3
    for a in attempt_ids:
        assert cli("events", a, "--json").returncode == 0

    # nowhere: CLI output, any stored row, any file under a `.corral/`
    assert [(i, _leaks(o)) for i, o in enumerate(cli.seen) if _leaks(o)] == []
    db = sqlite3.connect(cli.home / "corral.db")
    assert _leaks("\n".join(db.iterdump())) == []
    db.close()
    for d in (cli.home, repo / ".corral"):
        for f in d.rglob("*") if d.exists() else []:
            if f.is_file():
                assert _leaks(f.read_bytes()) == [], f
    # and the repository got nothing from the leak (the default delivery writes patches)
    assert not (repo / "deploy.env").exists() and not (repo / "x.py").exists()


def _leaks_decoded(text: str | bytes) -> list[str]:
    """Secrets carried in the text, git binary patches decoded too."""
    from corral.orchestrator.policy.binary_patch import hunks

    raw = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return _leaks(text) + [s for h in hunks(raw) for s in SECRETS if s in (h.text or "")]


def test_a_secret_in_a_binary_file_is_held_and_stored_nowhere(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "a.py").write_text("A = 1\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "i"],
                   cwd=repo, check=True)  # fmt: skip
    # The value comes from the sandbox's own file, so no command or event spells it.
    turns = _turns(
        f"printf 'weights\\000%s\\000%s' \"$(cat .v)\" '{SHAPED[:4]}'\"$(cat .s)\" > model.bin"
        " && rm .v .s"
    )
    (tmp_path / "t.json").write_text(json.dumps(turns))
    (repo / ".v").write_text(VALUE)
    (repo / ".s").write_text(SHAPED[4:])
    subprocess.run(["git", "add", "-A"], cwd=repo, check=True)
    subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "v"],
                   cwd=repo, check=True)  # fmt: skip
    camp = tmp_path / "c.yaml"
    camp.write_text(yaml.safe_dump({"name": "bin", "tasks": [
        {"id": "bin", "repo": str(repo), "instructions": "edit",
         "model": f"scripted:{tmp_path / 't.json'}", "sandbox": "bwrap"}]}))  # fmt: skip
    cli = _Cli(tmp_path / ".corral")

    status = json.loads(cli("campaign", "run", str(camp), "--json").stdout)
    (task,) = status["tasks"]
    assert task["state"] == "needs_review", task
    assert task["reason"].startswith("diff contains a secret-shaped value at model.bin (binary)")
    (review,) = json.loads(cli("review", "list", "--json").stdout)
    assert "[REDACTED:binary]" in cli("review", "show", review["id"]).stdout
    attempt = json.loads(cli("attempts", "--json").stdout)[0]["id"]
    assert cli("events", attempt, "--json").returncode == 0

    assert [o for o in cli.seen if _leaks_decoded(o)] == []
    db = sqlite3.connect(cli.home / "corral.db")
    assert _leaks_decoded("\n".join(db.iterdump())) == []
    db.close()
    for f in cli.home.rglob("*"):
        if f.is_file():
            assert _leaks_decoded(f.read_bytes()) == [], f
