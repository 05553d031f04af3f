"""A campaign task with `sandbox: docker` and an egress profile: the worker opens the
task's channel and the container reaches the allowlist (audited); a task on the default
profile in the same campaign stays without network."""

from __future__ import annotations

import json
import socket
from pathlib import Path

from tests.integration.orchestrator.conftest import campaign_file, make_repo
from tests.security.docker_support import require_docker

from corral.domain import Observed
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.policy.audit import AuditStore
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store


async def test_docker_task_gets_its_profile(tmp_path: Path, docs_server: int) -> None:
    require_docker()
    home = tmp_path / ".corral"
    home.mkdir()
    name = socket.gethostname()  # `localhost` is in no_proxy; test-only private override
    (home / "egress.yaml").write_text(
        f"profiles:\n  docs:\n    allow: [{name}]\n"
        f"    ports: [{docs_server}]\n    allow_private_addresses: true\n"
    )
    url = f"http://{name}:{docs_server}/guide.txt"
    fetch = f"python3 -c \"import urllib.request as u; print(u.urlopen('{url}').read().decode())\""
    script = tmp_path / "fetch.json"
    script.write_text(json.dumps([
        {"tool_calls": [{"tool": "bash", "args": {"command": fetch}}]},
        {"tool_calls": [{"tool": "finish", "args": {"message": "read"}}]},
    ]))  # fmt: skip
    tasks = [
        {"id": key, "repo": str(make_repo(tmp_path / key)), "instructions": "read the guide",
         "model": f"scripted:{script}", "profile": profile, "sandbox": "docker"}
        for key, profile in (("open", "docs"), ("closed", "default"))
    ]  # fmt: skip
    store = await Store.open(home=home)
    try:
        cid = await create_from_file(
            store, campaign_file(tmp_path / "c.yaml", {"name": "d", "tasks": tasks})
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
        entries = [e async for e in AuditStore(store).entries(kind="egress")]
        assert entries and all(e.attempt_id == attempts["open"] for e in entries)
        assert any(
            e.detail.get("host") == name.lower() and e.detail.get("allowed") for e in entries
        )
    finally:
        await store.close()
