"""The Python API over the real HTTP model path: corral.run_task against the fake provider."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import corral
from corral.domain import Completion, ModelCalled, Observed, RunStatus, ToolCall, Usage
from corral.store import Store
from corral.testing import FakeProvider


def _repo(path: Path) -> Path:
    path.mkdir()
    (path / "app.py").write_text("def greet(name):\n    return 'Hello ' + nam\n")
    (path / "test_app.py").write_text(
        "import unittest\nfrom app import greet\n\n"
        "class T(unittest.TestCase):\n"
        "    def test_greet(self):\n        self.assertEqual(greet('Ann'), 'Hello Ann')\n"
    )
    return path


def _call(i: int, name: str, **args: object) -> ToolCall:
    return ToolCall(id=f"call_{i}", name=name, arguments=dict(args))


SCRIPT = [
    Completion(
        content="run the tests",
        tool_calls=(_call(1, "bash", command="python3 -m unittest 2>&1 | tail -12"),),
        usage=Usage(input_tokens=900, output_tokens=20),
    ),
    Completion(
        tool_calls=(
            _call(2, "editor", command="str_replace", path="app.py", old="+ nam\n", new="+ name\n"),
        ),
        usage=Usage(input_tokens=1000, output_tokens=30),
    ),
    Completion(
        tool_calls=(_call(3, "bash", command="python3 -m unittest 2>&1 | tail -1"),),
        usage=Usage(input_tokens=1100, output_tokens=20),
    ),
    Completion(tool_calls=(_call(4, "finish", message="fixed the typo"),)),
]


async def test_run_task_over_http(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    with FakeProvider(script=SCRIPT, api_key="sk-local") as fp:
        result = await corral.run_task(
            "greet() raises NameError; fix it",
            repo,
            model=f"openai-compatible:{fp.base_url}#fake-model",
            env={"OPENAI_COMPATIBLE_API_KEY": "sk-local"},
            home=tmp_path / ".corral",
        )
        bodies = fp.bodies
    assert result.status is RunStatus.finished, result.reason
    assert result.reason == "fixed the typo" and result.steps == 4
    assert "+    return 'Hello ' + name" in result.diff
    obs = [e for e in result.events if isinstance(e, Observed)]
    assert "NameError" in obs[0].output and obs[-2].output.strip().endswith("OK")
    calls = [e for e in result.events if isinstance(e, ModelCalled)]
    assert [c.completion.usage.input_tokens for c in calls][:3] == [900, 1000, 1100]
    # what the provider saw: tool schemas, the repo map in the first prompt, then tool results
    assert {t["function"]["name"] for t in bodies[0]["tools"]} >= {"bash", "editor", "finish"}
    first_user = next(m for m in bodies[0]["messages"] if m["role"] == "user")["content"]
    assert "app.py" in first_user and "greet" in first_user
    tool_msgs = [m for m in bodies[1]["messages"] if m["role"] == "tool"]
    assert tool_msgs and "NameError" in tool_msgs[0]["content"]
    # the store holds the same events, in order, and the original repo is unchanged
    store = await Store.open(home=tmp_path / ".corral")
    try:
        assert await store.events(result.attempt_id) == result.events
    finally:
        await store.close()
    assert "+ nam\n" in (repo / "app.py").read_text()


async def test_provider_outage_fails_the_attempt_and_keeps_the_log(tmp_path: Path) -> None:
    repo = _repo(tmp_path / "repo")
    with FakeProvider(script=SCRIPT[:1], failures=[503] * 6) as fp:  # a persistent outage
        result = await corral.run_task(
            "fix it",
            repo,
            model=f"openai-compatible:{fp.base_url}#fake-model",
            home=tmp_path / ".corral",
        )
    assert result.status is RunStatus.failed and "503" in result.reason
    assert result.events[0].type == "attempt_started"
    assert result.events[-1].type == "attempt_ended"


def test_patch_file_applies(tmp_path: Path) -> None:
    """The patch written under .corral/ is a plain git patch of the agent's change."""
    import asyncio

    repo = _repo(tmp_path / "repo")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
    with FakeProvider(script=SCRIPT) as fp:
        result = asyncio.run(
            corral.run_task(
                "fix",
                repo,
                model=f"openai-compatible:{fp.base_url}#fake-model",
                home=tmp_path / ".corral",
            )
        )
    assert result.patch_path is not None
    subprocess.run(["git", "apply", result.patch_path], cwd=repo, check=True)
    out = subprocess.run(["python3", "-m", "unittest"], cwd=repo, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert json.loads(json.dumps(result.diff)) == result.diff
