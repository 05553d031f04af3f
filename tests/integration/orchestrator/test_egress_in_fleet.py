"""A task's egress profile opens the network to its allowlist only, audited; the default
profile stays closed."""

from __future__ import annotations

import http.server
import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.orchestrator.conftest import campaign_file, make_repo

from corral.domain import Observed
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.policy.audit import AuditStore
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store


@pytest.fixture
def docs_server(tmp_path: Path) -> Iterator[int]:
    root = tmp_path / "site"
    root.mkdir()
    (root / "guide.txt").write_text("the answer is 42\n")

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *a: object, **kw: object) -> None:
            super().__init__(*a, directory=str(root), **kw)  # type: ignore[arg-type]

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("0.0.0.0", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


async def test_profile_opens_only_its_allowlist(tmp_path: Path, docs_server: int) -> None:
    home = tmp_path / ".corral"
    home.mkdir()
    # The machine's own name (loopback via /etc/hosts): `localhost` is in the sandbox's
    # no_proxy list, so it would never reach the proxy.
    name = socket.gethostname()
    # Test-only: the docs server is on loopback, which real profiles may never reach.
    (home / "egress.yaml").write_text(
        f"profiles:\n  docs:\n    allow: [{name}]\n"
        f"    ports: [{docs_server}]\n    allow_private_addresses: true\n"
    )
    fetch = (
        'python3 -c "import urllib.request as u; '
        f"print(u.urlopen('http://{name}:{docs_server}/guide.txt', timeout=10).read().decode())\""
    )
    script = tmp_path / "fetch.json"
    script.write_text(json.dumps([
        {"tool_calls": [{"tool": "bash", "args": {"command": fetch}}]},
        {"tool_calls": [{"tool": "finish", "args": {"message": "read"}}]},
    ]))  # fmt: skip
    tasks = [
        {"id": key, "repo": str(make_repo(tmp_path / key)), "instructions": "read the guide",
         "model": f"scripted:{script}", "profile": profile}
        for key, profile in (("open", "docs"), ("closed", "default"))
    ]  # fmt: skip
    store = await Store.open(home=home)
    cid = await create_from_file(
        store, campaign_file(tmp_path / "c.yaml", {"name": "e", "tasks": tasks})
    )
    status = await run_campaign(store, cid, WorkerSettings(home=home, poll_s=0.05))
    outputs: dict[str, str] = {}
    for t in status["tasks"]:
        attempt = (await store.attempts_of(t["id"]))[0]
        obs = [e for e in await store.events(attempt["id"]) if isinstance(e, Observed)]
        outputs[t["key"]] = obs[0].output
    assert "the answer is 42" in outputs["open"]
    assert "the answer is 42" not in outputs["closed"]
    assert "Error" in outputs["closed"] or "error" in outputs["closed"]
    entries = [e async for e in AuditStore(store).entries(kind="egress")]
    assert any(e.detail.get("host") == name and e.detail.get("allowed") for e in entries)
    await store.close()
