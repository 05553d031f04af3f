"""Hung attempts are zombies: killed with their process tree and retried. A sandbox killed
from outside makes its attempt retryable, never a task left running."""

from __future__ import annotations

import asyncio
import os
import random
import signal
from pathlib import Path

import yaml
from tests.integration.orchestrator.conftest import make_repo, script

from corral.domain import TaskState
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.retry import RetryPolicy
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store
from corral.testing import FakeProvider


def _settings(tmp_path: Path, **kw: object) -> WorkerSettings:
    base = WorkerSettings(
        home=tmp_path / ".corral", poll_s=0.05, heartbeat_s=0.2, lease_ttl_s=5,
        retry={"default": RetryPolicy(base_s=0.05, cap_s=0.1)},
    )  # fmt: skip
    return base.model_copy(update=kw)


async def _campaign(store: Store, tmp_path: Path, task: dict[str, object]) -> str:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"name": "z", "tasks": [task]}))
    return await create_from_file(store, f)


def _procs(cmdline: bytes) -> list[int]:
    out = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes() == cmdline:
                    out.append(int(p.name))
            except OSError:
                pass
    return out


async def test_hung_command_is_a_zombie(tmp_path: Path) -> None:
    store = await Store.open(home=tmp_path / ".corral")
    hang = script(tmp_path / "hang.json", ["sleep 1000"])
    cid = await _campaign(store, tmp_path, {
        "id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
        "model": f"scripted:{hang}", "command_timeout_s": 3000, "max_attempts": 2,
    })  # fmt: skip
    status = await run_campaign(store, cid, _settings(tmp_path, zombie_after_s=1.5))
    t = status["tasks"][0]
    assert t["state"] == "failed" and t["attempts"] == 2
    attempts = await store.attempts_of(t["id"])
    assert all(a["reason"].startswith("zombie") for a in attempts), attempts
    assert all(a["error_kind"] == "retryable" for a in attempts)
    await asyncio.sleep(0.3)
    assert not _procs(b"sleep\x001000\x00"), "the hung command outlived its attempt"
    await store.close()


async def test_hung_model_call_is_a_zombie_then_the_retry_succeeds(tmp_path: Path) -> None:
    calls = {"n": 0}

    def latency(_rng: random.Random) -> float:
        calls["n"] += 1
        return 3600.0 if calls["n"] == 1 else 0.0  # the first call hangs, later ones answer

    store = await Store.open(home=tmp_path / ".corral")
    with FakeProvider(latency=latency) as fp:  # default reply: a finish tool call
        cid = await _campaign(store, tmp_path, {
            "id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
            "model": f"openai-compatible:{fp.base_url}#fake-model", "max_attempts": 3,
        })  # fmt: skip
        status = await run_campaign(store, cid, _settings(tmp_path, zombie_after_s=1.5))
    t = status["tasks"][0]
    assert t["state"] == "succeeded" and t["attempts"] == 2, status
    first, second = await store.attempts_of(t["id"])
    assert first["reason"].startswith("zombie") and second["status"] == "finished"
    await store.close()


async def test_sandbox_killed_from_outside_is_retried(tmp_path: Path) -> None:
    store = await Store.open(home=tmp_path / ".corral")
    work = script(tmp_path / "w.json", ["sleep 4.5", "echo ok"])
    cid = await _campaign(store, tmp_path, {
        "id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
        "model": f"scripted:{work}", "max_attempts": 3,
    })  # fmt: skip
    run = asyncio.create_task(run_campaign(store, cid, _settings(tmp_path)))
    victim: list[int] = []
    for _ in range(400):
        victim = _procs(b"sleep\x004.5\x00")
        if victim:
            break
        await asyncio.sleep(0.02)
    assert victim, "the first attempt never started its command"
    bwrap = _ancestor_named(victim[0], "bwrap")
    assert bwrap is not None
    os.kill(bwrap, signal.SIGKILL)  # the whole sandbox dies under the running attempt
    status = await asyncio.wait_for(run, 120)
    t = status["tasks"][0]
    assert t["state"] == TaskState.succeeded.value and t["attempts"] == 2, status
    first, second = await store.attempts_of(t["id"])
    assert first["error_kind"] == "retryable" and second["status"] == "finished"
    await store.close()


def _ancestor_named(pid: int, name: str) -> int | None:
    """The outermost ancestor with this name (bwrap forks itself inside the sandbox)."""
    found = None
    while pid > 1:
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            return found
        comm = stat[stat.index("(") + 1 : stat.rindex(")")]
        if comm == name:
            found = pid
        pid = int(stat[stat.rindex(")") + 2 :].split()[1])
    return found
