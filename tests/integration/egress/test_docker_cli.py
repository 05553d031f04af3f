"""`corral run --sandbox docker --profile NAME` (and bwrap), through the real command: the
profile in HOME/egress.yaml opens its allowlist to bash and browse, every request is
audited, and without the profile the sandbox has no network."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.integration.conftest import docs_profile, fetch_command
from tests.security.docker_support import require_docker

CORRAL = str(Path(sys.executable).parent / "corral")


def _corral(home: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CORRAL_")}
    return subprocess.run(
        [CORRAL, *args, "--home", str(home)], capture_output=True, text=True, timeout=100,
        env=env, cwd=home.parent,
    )  # fmt: skip


@pytest.mark.parametrize("sandbox", ["docker", "bwrap"])
def test_corral_run_with_a_profile(sandbox: str, tmp_path: Path, docs_server: int) -> None:
    if sandbox == "docker":
        require_docker()
    home = tmp_path / ".corral"
    url = docs_profile(home, docs_server)
    name = url.split("/")[2].split(":")[0]
    fetch = fetch_command(url)
    script = tmp_path / "agent.json"
    script.write_text(json.dumps([
        {"tool_calls": [{"tool": "bash", "args": {"command": fetch}}]},
        {"tool_calls": [{"tool": "browse", "args": {"url": url}}]},
        {"tool_calls": [{"tool": "browse", "args": {"url": "http://example.com/"}}]},
        {"tool_calls": [{"tool": "finish", "args": {"message": "read"}}]},
    ]))  # fmt: skip
    repo = tmp_path / "repo"
    repo.mkdir()
    (repo / "README.md").write_text("# demo\n")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    run = ["run", "read the guide", "--repo", str(repo), "--model", f"scripted:{script}",
           "--sandbox", sandbox, "--json"]  # fmt: skip

    p = _corral(home, *run, "--profile", "docs")
    assert p.returncode == 0, p.stderr + p.stdout
    out = json.loads(p.stdout)
    obs = [e["output"] for e in out["events"] if e["type"] == "observation"]
    assert "the answer is 42" in obs[0] and "the answer is 42" in obs[1]
    assert "not on this task's egress allowlist" in obs[2]
    export = _corral(home, "audit", "export")
    entries = [json.loads(line) for line in export.stdout.splitlines() if line.strip()]
    egress = [e for e in entries if e["kind"] == "egress"]
    assert {(e["detail"]["host"], e["detail"]["allowed"]) for e in egress} == {
        (name.lower(), True),
        ("example.com", False),
    }
    assert all(e["attempt_id"] == out["attempt_id"] for e in egress) and len(egress) == 3

    closed = _corral(home, *run)  # no profile: no network, browse says so
    out = json.loads(closed.stdout)
    obs = [e["output"] for e in out["events"] if e["type"] == "observation"]
    assert "the answer is 42" not in obs[0] and "network is closed" in obs[1]

    bad = _corral(home, *run, "--profile", "nope")
    assert bad.returncode != 0 and "no egress profile named 'nope'" in bad.stderr
    assert len(bad.stderr.strip().splitlines()) == 1
