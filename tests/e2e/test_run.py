"""`corral run`, `events`, `replay`, `demo` end to end through the real CLI and bwrap."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tests.e2e.conftest import DEMO, Cli, make_repo, write_script


def test_scripted_agent_fixes_a_failing_test(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    code, out = cli.json(
        "run",
        "The discount tests fail; fix the pricing code.",
        "--repo",
        str(repo),
        "--model",
        f"scripted:{DEMO / 'agent.yaml'}",
    )
    assert code == 0, out["reason"]
    assert out["status"] == "finished" and out["steps"] == 5
    assert "+    return round(price * (100 - percent) / 100, 2)" in out["diff"]
    obs = [e for e in out["events"] if e["type"] == "observation"]
    assert obs and all({"tool", "output", "exit_code"} <= e.keys() for e in obs)
    # the first test run failed inside the sandbox, the last one passed
    bash = [e for e in obs if e["tool"] == "bash"]
    assert "FAILED" in bash[0]["output"] and "OK" in bash[-1]["output"]
    # the original repo is untouched; the patch applies to it and makes the tests pass
    assert "percent / 100, 2)" in (repo / "pricing.py").read_text()
    patch = Path(out["patch"])
    assert patch.is_file() and patch.read_text() == out["diff"]
    check = tmp_path / "check"
    shutil.copytree(repo, check)
    subprocess.run(["git", "apply", str(patch)], cwd=check, check=True)
    tests = subprocess.run(["python3", "-m", "unittest", "-q"], cwd=check, capture_output=True)
    assert tests.returncode == 0, tests.stderr


def test_events_and_replay_reproduce_the_attempt(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    _, first = cli.json(
        "run", "fix pricing", "--repo", str(repo), "--model", f"scripted:{DEMO / 'agent.yaml'}"
    )
    aid = first["attempt_id"]
    code, ev = cli.json("events", aid[:14])
    assert code == 0 and ev["attempt_id"] == aid
    assert [e["seq"] for e in ev["events"]] == list(range(len(ev["events"])))
    assert ev["events"][0]["type"] == "attempt_started"
    assert ev["events"][-1]["type"] == "attempt_ended"
    code, rep = cli.json("replay", aid)
    assert code == 0, rep
    assert rep["reproduced"] and rep["same_actions"] and rep["same_diff"]
    assert rep["attempt_id"] != aid and rep["diff"] == first["diff"]


def test_human_output_streams_events(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    p = cli("run", "fix pricing", "--repo", str(repo), "--model", f"scripted:{DEMO / 'agent.yaml'}")
    assert p.returncode == 0, p.stderr
    assert "act    bash" in p.stdout and "finished:" in p.stdout


def test_stuck_agent_exits_non_zero(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    turns = [{"tool_calls": [{"tool": "bash", "args": {"command": "echo same"}}]}] * 6
    script = write_script(tmp_path / "loop.json", turns)
    code, out = cli.json("run", "loop", "--repo", str(repo), "--model", f"scripted:{script}")
    assert code == 1 and out["status"] == "stuck"


def test_step_limit_status(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    turns = [{"tool_calls": [{"tool": "bash", "args": {"command": f"echo {i}"}}]} for i in range(9)]
    script = write_script(tmp_path / "steps.json", turns)
    code, out = cli.json(
        "run", "count", "--repo", str(repo), "--model", f"scripted:{script}", "--max-steps", "3"
    )
    assert code == 1 and out["status"] == "limit" and out["steps"] == 3


def test_script_running_out_is_failed(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "shop")
    script = write_script(
        tmp_path / "short.json", [{"tool_calls": [{"tool": "bash", "args": {"command": "ls"}}]}]
    )
    code, out = cli.json("run", "x", "--repo", str(repo), "--model", f"scripted:{script}")
    assert code == 1 and out["status"] == "failed" and "ran out" in out["reason"]


def test_demo(cli: Cli) -> None:
    """`make demo`: a CVE campaign over generated repos, no API key, real advisories."""
    code, out = cli.json("demo", timeout=400)
    assert code == 0, out
    status = {r["key"]: (r["status"], r.get("tests")) for r in out["repos"]}
    assert status["up-to-date"][0] == "clean"
    assert status["legacy-progress"] == ("needs review", "failed"), "a bump that breaks tests"
    assert status["no-tests"] == ("fixed", "no tests found"), "never reported as passed"
    fixed = [k for k, (st, tests) in status.items() if st == "fixed" and tests == "passed"]
    assert len(fixed) >= 9
    assert Path(out["files"]["markdown"]).is_file()
    # `make demo` again in the same home: a fresh demo, not "already ran these upgrades"
    code, again = cli.json("demo", timeout=400)
    assert code == 0, again
    assert {r["key"]: (r["status"], r.get("tests")) for r in again["repos"]} == status
