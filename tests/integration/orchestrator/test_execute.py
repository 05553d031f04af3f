"""The body of one attempt (`execute_attempt`) on a real sandbox and store."""

from __future__ import annotations

from pathlib import Path

from tests.integration.orchestrator.conftest import make_repo

from corral.agent.config import AgentConfig
from corral.domain import AttemptEnded, RunStatus, SandboxError
from corral.models import ScriptedModel
from corral.orchestrator.execute import execute_attempt
from corral.sandbox.local import LocalSandbox
from corral.store import Store


class _DiffBreaks(LocalSandbox):
    """A sandbox whose workspace diff cannot be read (git failing under load, say)."""

    async def diff(self) -> str:
        raise SandboxError("git failed: fork: Resource temporarily unavailable")


async def test_a_finished_run_whose_diff_cannot_be_read_is_a_failed_attempt(
    tmp_path: Path,
) -> None:
    repo = make_repo(tmp_path / "r")
    model = ScriptedModel.from_turns(
        [
            {"tool_calls": [{"tool": "bash", "args": {"command": "echo 2 > app.py"}}]},
            {"tool_calls": [{"tool": "finish", "args": {"message": "done"}}]},
        ]
    )
    store = await Store.open(home=tmp_path / ".corral")
    await store.create_attempt("att-1", task="t", repo=str(repo), model="scripted", sandbox="local")
    try:
        out = await execute_attempt(
            attempt_id="att-1", task="change app.py", repo=repo, model=model,
            box=_DiffBreaks(repo), config=AgentConfig(), store=store, home=tmp_path / ".corral",
        )  # fmt: skip
        ended = [e for e in await store.events("att-1") if isinstance(e, AttemptEnded)]
    finally:
        await store.close()
    # not "finished with an empty diff", which would deliver nothing and call it done
    assert out.outcome.status is RunStatus.failed
    assert out.outcome.reason.startswith("cannot read the workspace diff: SandboxError: git failed")
    assert isinstance(out.outcome.error, SandboxError)
    assert out.diff == "" and out.patch_path is None
    assert [e.status for e in ended] == [RunStatus.failed]
