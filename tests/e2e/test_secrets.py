"""No secret of the host reaches the sandbox, an observation, or anything stored."""

from __future__ import annotations

from pathlib import Path

from tests.e2e.conftest import Cli, make_repo, write_script

CANARY = "canary-7f3a9c1e5b"
KEY = "sk-proj-canaryKEY0123456789abcdef"


def test_canary_never_appears(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    commands = [
        "env",
        "cat /proc/self/environ | tr '\\0' '\\n'",
        "cat /proc/1/environ | tr '\\0' '\\n'",
        "for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null | tr '\\0' '\\n'; done",
        "cat ~/.bashrc /root/.bashrc 2>&1; ls -la / /root 2>&1 | head -50",
    ]
    turns = [{"tool_calls": [{"tool": "bash", "args": {"command": c}}]} for c in commands]
    turns.append({"tool_calls": [{"tool": "finish", "args": {"message": "looked"}}]})
    script = write_script(tmp_path / "snoop.json", turns)
    env = {"OPENAI_API_KEY": KEY, "CORRAL_CANARY": CANARY, "GITHUB_TOKEN": CANARY + "gh"}
    code, out = cli.json(
        "run", "look around", "--repo", str(repo), "--model", f"scripted:{script}", extra_env=env
    )
    assert code == 0, out
    obs = [e["output"] for e in out["events"] if e["type"] == "observation"]
    assert len(obs) == 6
    assert "PATH=" in obs[0]  # the commands really ran and printed an environment
    for text in obs:
        assert CANARY not in text and KEY not in text
    # nothing stored anywhere under the home directory carries the secrets either
    for f in cli.home.rglob("*"):
        if f.is_file():
            data = f.read_bytes()
            assert CANARY.encode() not in data and KEY.encode() not in data, f
