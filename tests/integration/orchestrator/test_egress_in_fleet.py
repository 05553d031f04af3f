"""A task's egress profile opens the network to its allowlist only, audited under that
task's attempt; a task on the default profile in the same campaign stays closed. The
same for bwrap and docker."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from tests.integration.conftest import docs_profile, fetch_command
from tests.integration.orchestrator.conftest import campaign_file, make_repo
from tests.security.docker_support import require_docker

from corral.domain import Observed
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.policy.audit import AuditStore
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store


@pytest.mark.parametrize("sandbox", ["bwrap", "docker"])
async def test_profile_opens_only_its_allowlist(
    sandbox: str, tmp_path: Path, docs_server: int
) -> None:
    if sandbox == "docker":
        require_docker()
    home = tmp_path / ".corral"
    url = docs_profile(home, docs_server)
    script = tmp_path / "fetch.json"
    script.write_text(json.dumps([
        {"tool_calls": [{"tool": "bash", "args": {"command": fetch_command(url)}}]},
        {"tool_calls": [{"tool": "finish", "args": {"message": "read"}}]},
    ]))  # fmt: skip
    tasks = [
        {"id": key, "repo": str(make_repo(tmp_path / key)), "instructions": "read the guide",
         "model": f"scripted:{script}", "profile": profile, "sandbox": sandbox}
        for key, profile in (("open", "docs"), ("closed", "default"))
    ]  # fmt: skip
    store = await Store.open(home=home)
    try:
        cid = await create_from_file(
            store, campaign_file(tmp_path / "c.yaml", {"name": "e", "tasks": tasks})
        )
        status = await run_campaign(store, cid, WorkerSettings(home=home, poll_s=0.05))
        outputs: dict[str, str] = {}
        attempts: dict[str, str] = {}
        for t in status["tasks"]:
            attempt = (await store.attempts_of(t["id"]))[0]
            attempts[t["key"]] = attempt["id"]
            obs = [e for e in await store.events(attempt["id"]) if isinstance(e, Observed)]
            outputs[t["key"]] = obs[0].output
        assert "the answer is 42" in outputs["open"], outputs["open"]
        assert "the answer is 42" not in outputs["closed"]
        assert "error" in outputs["closed"].lower()
        entries = [e async for e in AuditStore(store).entries(kind="egress")]
        assert entries and all(e.attempt_id == attempts["open"] for e in entries)
        host = url.split("/")[2].split(":")[0].lower()
        assert any(e.detail.get("host") == host and e.detail.get("allowed") for e in entries)
    finally:
        await store.close()
