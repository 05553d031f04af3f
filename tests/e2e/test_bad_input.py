"""Each bad input gets one clear line on stderr, exit code 2, and nothing is recorded."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.e2e.conftest import DEMO, Cli, make_repo

SCRIPT = f"scripted:{DEMO / 'agent.yaml'}"


@pytest.mark.parametrize(
    ("args", "extra_env", "expected"),
    [
        (["--model", SCRIPT, "--repo", "{tmp}/nope"], {}, "does not exist"),
        (["--model", "gpt-9000", "--repo", "{repo}"], {}, "gpt-9000"),
        (["--model", "openai/gpt-4o", "--repo", "{repo}"], {}, "OPENAI_API_KEY"),
        (["--model", "anthropic/claude-sonnet-4-5", "--repo", "{repo}"], {}, "ANTHROPIC_API_KEY"),
        (["--model", "scripted:{tmp}/missing.yaml", "--repo", "{repo}"], {}, "missing.yaml"),
        (["--model", "scripted:{tmp}/bad.yaml", "--repo", "{repo}"], {}, "bad.yaml"),
        (
            ["--model", "openai-compatible:localhost:8000", "--repo", "{repo}"],
            {},
            "openai-compatible",
        ),
        (["--model", SCRIPT, "--repo", "{repo}", "--sandbox", "vm"], {}, "vm"),
        (["--model", SCRIPT, "--repo", "{repo}", "--sandbox", "local"], {}, "--unsafe-local"),
        (["--repo", "{repo}"], {}, "--model"),
    ],
)
def test_bad_input_is_one_line(
    cli: Cli, tmp_path: Path, args: list[str], extra_env: dict[str, str], expected: str
) -> None:
    repo = make_repo(tmp_path / "repo")
    (tmp_path / "bad.yaml").write_text("- tool_calls: [ {tool: bash, args: {command: ls}\n")
    argv = [a.replace("{tmp}", str(tmp_path)).replace("{repo}", str(repo)) for a in args]
    p = cli("run", "fix it", *argv, extra_env=extra_env)
    assert p.returncode == 2, p.stdout + p.stderr
    lines = p.stderr.strip().splitlines()
    assert len(lines) == 1, p.stderr
    assert lines[0].startswith("error: ") and expected in lines[0]
    assert "Traceback" not in p.stderr
    # nothing ran: no attempt was recorded
    listed = cli("attempts", "--json")
    assert listed.returncode == 0 and listed.stdout.strip() in ("", "[]")


def test_empty_task(cli: Cli, tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    p = cli("run", "  ", "--repo", str(repo), "--model", SCRIPT)
    assert p.returncode == 2 and "task is empty" in p.stderr


def test_unknown_attempt(cli: Cli) -> None:
    p = cli("events", "att_nothing")
    assert p.returncode == 2 and p.stderr.strip() == "error: no attempt with id 'att_nothing'"
