"""Two `corral worker` processes share one `corral serve`: every model call and
every dollar goes through the one service, whichever worker made it."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import time
from pathlib import Path

import httpx
import yaml
from tests.e2e.conftest import CORRAL, Cli, make_repo

from corral.orchestrator.campaigns import create_from_file
from corral.store import Store


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(path: Path, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 60
    while not path.exists():
        assert proc.poll() is None, proc.communicate()[1]
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.1)


def _admin(admin: Path, path: str) -> dict:  # type: ignore[type-arg]
    transport = httpx.HTTPTransport(uds=str(admin))
    with httpx.Client(transport=transport, base_url="http://gateway") as client:
        return client.get(path).json()  # type: ignore[no-any-return]


def test_two_workers_share_one_gateway_service(cli: Cli, tmp_path: Path) -> None:
    port = _free_port()
    url = f"http://127.0.0.1:{port}/v1"
    spec = f"openai-compatible:{url}#fake-model"
    cfg = tmp_path / "gateway.yaml"
    price = {"input_per_mtok": 10.0, "output_per_mtok": 30.0}
    cfg.write_text(yaml.safe_dump({"deployments": [{"name": "fake", "model": spec,
                                                    "price": price}]}))  # fmt: skip
    sock, admin = tmp_path / "gw.sock", tmp_path / "gw.sock.admin"
    tasks = [
        {"id": f"t{i}", "repo": str(make_repo(tmp_path / f"r{i}")), "instructions": "fix",
         "model": spec}
        for i in range(6)
    ]  # fmt: skip
    campaign = tmp_path / "c.yaml"
    campaign.write_text(yaml.safe_dump({"name": "shared", "budget_usd": 5.0, "tasks": tasks}))

    async def create() -> str:
        store = await Store.open(None, home=cli.home)
        try:
            return await create_from_file(store, campaign, env={}, home=cli.home)
        finally:
            await store.close()

    cid = asyncio.run(create())
    procs: list[subprocess.Popen[str]] = []

    def start(*args: str) -> subprocess.Popen[str]:
        proc = subprocess.Popen([CORRAL, *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=cli.env, text=True, cwd=tmp_path)  # fmt: skip
        procs.append(proc)
        return proc

    try:
        # Each call takes a second, so one worker (2 at a time) cannot take all six.
        start("fake-provider", "--port", str(port), "--latency", "1")
        gateway = start("serve", "--config", str(cfg), "--socket", str(sock),
                        "--no-record")  # fmt: skip
        _wait_for(admin, gateway)
        for _ in range(2):
            start("worker", "--gateway-socket", str(sock), "--concurrency", "2",
                  "--home", str(cli.home))  # fmt: skip
        deadline = time.monotonic() + 180
        counts: dict[str, int] = {}
        while time.monotonic() < deadline:
            _code, status = cli.json("campaign", "status", cid)
            counts = status["counts"]
            if counts.get("succeeded") == len(tasks):
                break
            time.sleep(0.5)
        assert counts == {"succeeded": len(tasks)}
        stats = _admin(admin, "/admin/stats")
        budgets = {b["key"]: b for b in _admin(admin, "/admin/budgets")["budgets"]}
    finally:
        for proc in reversed(procs):
            proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
    # Every call went through the service (the workers hold no provider config), and the
    # campaign's spend and limit live there, once for both workers.
    assert stats["calls"] >= len(tasks) and stats["failed_calls"] == 0, json.dumps(stats)
    spent = budgets[f"campaign:{cid}"]
    assert spent["limit_usd"] == 5.0 and 0 < spent["spent_usd"] <= 5.0
    assert len(asyncio.run(_owners(cli.home, cid))) == 2


async def _owners(home: Path, campaign_id: str) -> set[str]:
    """Which workers ran the campaign's attempts."""
    store = await Store.open(None, home=home)
    try:
        return {
            str(a["lease_owner"])
            for t in await store.tasks(campaign_id=campaign_id)
            for a in await store.attempts_of(t.id)
        }
    finally:
        await store.close()
