"""Campaigns end to end in-process: admission, dependencies, retries, review, cancel."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Sequence
from pathlib import Path

import pytest
from tests.integration.orchestrator.conftest import campaign_file, make_repo, script

from corral.domain import ConfigError, Event, TaskState
from corral.orchestrator.campaign_file import load_campaign
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.retry import RetryPolicy
from corral.orchestrator.settings import WorkerSettings
from corral.orchestrator.worker import Worker
from corral.store import Store

FAST = WorkerSettings(poll_s=0.05, heartbeat_s=0.2, lease_ttl_s=5)


@pytest.fixture(params=["sqlite", "postgres"])
async def store(request: pytest.FixtureRequest, tmp_path: Path, pg_url: str):
    s = await Store.open(None if request.param == "sqlite" else pg_url, home=tmp_path / ".corral")
    yield s
    await s.close()


def _settings(tmp_path: Path, **kw: object) -> WorkerSettings:
    return FAST.model_copy(update={"home": tmp_path / ".corral", **kw})


async def test_dependencies_and_deliveries(store: Store, tmp_path: Path) -> None:
    fix = script(tmp_path / "fix.json", ["sed -i 's/VALUE = 0/VALUE = 1/' app.py"])
    tasks = [
        {"id": f"t{i}", "repo": str(make_repo(tmp_path / f"r{i}")), "instructions": "bump",
         "model": f"scripted:{fix}", "sandbox": "local", "depends_on": deps}
        for i, deps in enumerate([[], ["t0"], ["t0"], ["t1", "t2"]])
    ]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "dag", "unsafe_local": True, "tasks": tasks})
    cid = await create_from_file(store, f)
    status = await run_campaign(store, cid, _settings(tmp_path))
    assert {t["key"]: t["state"] for t in status["tasks"]} == dict.fromkeys(
        ["t0", "t1", "t2", "t3"], "succeeded"
    )
    assert status["state"] == "finished"
    # each task delivered exactly once, in dependency order
    effects = await _deliveries(store, cid)
    assert len(effects) == 4 and set(effects.values()) == {1}
    order = sorted(await store.tasks(campaign_id=cid), key=lambda t: t.updated_at)
    assert order[0].key == "t0" and order[-1].key == "t3"
    patch = tmp_path / ".corral" / "results" / cid / "t3.patch"
    assert "+VALUE = 1" in patch.read_text()


async def test_failed_parent_skips_or_fails_children(store: Store, tmp_path: Path) -> None:
    bad = script(tmp_path / "bad.json", ["echo a"] * 5, finish=False)  # stuck: final failure
    ok = script(tmp_path / "ok.json", ["true"])
    repo = str(make_repo(tmp_path / "r"))
    tasks = [
        {"id": "parent", "repo": repo, "instructions": "x", "model": f"scripted:{bad}",
         "sandbox": "local"},
        {"id": "skip-me", "repo": repo, "instructions": "x", "model": f"scripted:{ok}",
         "sandbox": "local", "depends_on": ["parent"]},
        {"id": "fail-me", "repo": repo, "instructions": "x", "model": f"scripted:{ok}",
         "sandbox": "local", "depends_on": ["parent"], "on_parent_failure": "fail"},
    ]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "p", "unsafe_local": True, "tasks": tasks})
    status = await run_campaign(store, await create_from_file(store, f), _settings(tmp_path))
    states = {t["key"]: t["state"] for t in status["tasks"]}
    assert states == {"parent": "failed", "skip-me": "skipped", "fail-me": "failed"}
    parent = next(t for t in status["tasks"] if t["key"] == "parent")
    assert parent["attempts"] == 1, "an agent that got stuck is a final failure, not retried"


async def test_retryable_failure_is_retried_with_backoff(store: Store, tmp_path: Path) -> None:
    # A model that fails at the provider level is retryable; the attempt limit still holds.
    tasks = [
        {"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
         "model": "openai-compatible:http://127.0.0.1:9/v1#nothing", "sandbox": "local",
         "max_attempts": 3}
    ]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "r", "unsafe_local": True, "tasks": tasks})
    cid = await create_from_file(store, f)
    settings = _settings(tmp_path, retry={"default": RetryPolicy(base_s=0.05, cap_s=0.2)})
    status = await run_campaign(store, cid, settings)
    t = status["tasks"][0]
    assert t["state"] == "failed" and t["attempts"] == 3
    attempts = await store.attempts_of(t["id"])
    assert [a["error_kind"] for a in attempts] == ["retryable"] * 3
    # full-jitter backoff: later attempts never start before the previous one ended
    for a, b in itertools.pairwise(attempts):
        assert b["created_at"] >= a["ended_at"]


async def test_review_approve_and_reject(store: Store, tmp_path: Path) -> None:
    fix = script(tmp_path / "fix.json", ["sed -i 's/VALUE = 0/VALUE = 7/' app.py"])
    tasks = [
        {"id": k, "repo": str(make_repo(tmp_path / k)), "instructions": "x",
         "model": f"scripted:{fix}", "sandbox": "local", "require_approval": True}
        for k in ("yes", "no")
    ]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "rv", "unsafe_local": True, "tasks": tasks})
    cid = await create_from_file(store, f)
    worker = Worker(store, _settings(tmp_path), campaign_id=cid)
    stop = asyncio.Event()
    run = asyncio.create_task(worker.run(stop=stop))
    for _ in range(200):
        if len(await store.reviews()) == 2:
            break
        await asyncio.sleep(0.05)
    reviews = {(await store.get_task(r.task_id)).key: r for r in await store.reviews()}
    assert set(reviews) == {"yes", "no"} and "+VALUE = 7" in reviews["yes"].diff
    # nothing delivered before approval
    assert await _deliveries(store, cid) == {}
    assert await store.decide_review(reviews["yes"].id, approve=True, comment="lgtm", by="ann")
    assert await store.decide_review(reviews["no"].id, approve=False, comment="no", by="ann")
    assert not await store.decide_review(reviews["no"].id, approve=True, comment=None, by="bob")
    for _ in range(200):
        states = {t.key: t.state for t in await store.tasks(campaign_id=cid)}
        if states["yes"] is TaskState.succeeded:
            break
        await asyncio.sleep(0.05)
    stop.set()
    await run
    assert states == {"yes": TaskState.succeeded, "no": TaskState.rejected}
    assert len(await _deliveries(store, cid)) == 1


async def test_cancel_a_running_task_stops_its_sandbox(store: Store, tmp_path: Path) -> None:
    hang = script(tmp_path / "hang.json", ["sleep 600"])
    tasks = [
        {"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
         "model": f"scripted:{hang}", "sandbox": "bwrap", "command_timeout_s": 900}
    ]  # fmt: skip
    cid = await create_from_file(
        store, campaign_file(tmp_path / "c.yaml", {"name": "c", "tasks": tasks})
    )
    run = asyncio.create_task(run_campaign(store, cid, _settings(tmp_path)))
    task = (await store.tasks(campaign_id=cid))[0]
    for _ in range(200):
        task = await store.get_task(task.id)
        if task.state is TaskState.running and await store.last_event_at(
            (await store.attempts_of(task.id))[0]["id"]
        ):
            break
        await asyncio.sleep(0.05)
    await asyncio.sleep(0.5)  # the sleep is running inside the sandbox now
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await store.request_cancel([task.id]) == 1
    status = await asyncio.wait_for(run, 20)
    assert status["tasks"][0]["state"] == "cancelled"
    assert loop.time() - t0 < 4.0  # heartbeat 0.2 s: well within the 2 s goal plus slack
    assert not _sleepers("sleep 600")
    # What the stopped run did stays on its attempt (it was recorded as 0 steps, $0).
    (attempt,) = await store.attempts_of(task.id)
    assert attempt["steps"] == 1
    ended = (await store.events(attempt["id"]))[-1]
    assert ended.type == "attempt_ended" and ended.steps == 1


@pytest.mark.parametrize("during", ["observation", "attempt_ended"])
async def test_a_cancel_while_an_event_is_stored_still_ends_the_log_once(
    store: Store, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, during: str
) -> None:
    """The event was stored but the run never heard back: the end was written at that
    event's seq, refused as a duplicate and dropped (an attempt with no end in its log).
    Landing after the run's own end was stored, the stop must not add a second one."""
    s = script(tmp_path / "s.json", ["echo one", "echo two"])
    tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
              "model": f"scripted:{s}", "sandbox": "local"}]  # fmt: skip
    body = {"name": "c", "unsafe_local": True, "tasks": tasks}
    cid = await create_from_file(store, campaign_file(tmp_path / "c.yaml", body))
    (task,) = await store.tasks(campaign_id=cid)
    stored = asyncio.Event()
    real = store.append_many

    async def slow_to_answer(
        events: Sequence[Event], payloads: Sequence[str] | None = None
    ) -> None:
        await real(events, payloads)
        if any(e.type == during for e in events) and not stored.is_set():
            stored.set()
            await asyncio.sleep(30)  # the commit's answer is late; the cancel lands here

    monkeypatch.setattr(store, "append_many", slow_to_answer)
    run = asyncio.create_task(run_campaign(store, cid, _settings(tmp_path)))
    await asyncio.wait_for(stored.wait(), 30)
    assert await store.request_cancel([task.id]) == 1
    status = await asyncio.wait_for(run, 20)
    assert status["tasks"][0]["state"] == "cancelled"
    (attempt,) = await store.attempts_of(task.id)
    log = await store.events(attempt["id"])
    ends = [e for e in log if e.type == "attempt_ended"]
    assert len(ends) == 1 and log[-1] is ends[0], [e.type for e in log]
    assert [e.seq for e in log] == list(range(len(log)))


async def _deliveries(store: Store, cid: str) -> dict[str, int]:
    """Delivery side effects of one campaign's tasks (the Postgres database is shared)."""
    ids = {t.id for t in await store.tasks(campaign_id=cid)}
    effects = await store.count_side_effects("deliver:")
    return {k: n for k, n in effects.items() if k.removeprefix("deliver:") in ids}


def _sleepers(cmdline: str) -> list[int]:
    found = []
    for p in Path("/proc").iterdir():
        if p.name.isdigit():
            try:
                if (p / "cmdline").read_bytes().replace(b"\0", b" ").strip() == cmdline.encode():
                    found.append(int(p.name))
            except OSError:
                pass
    return found


async def test_bad_campaign_files(store: Store, tmp_path: Path) -> None:
    repo = str(make_repo(tmp_path / "r"))
    ok = script(tmp_path / "ok.json", ["true"])
    cases = {
        "cycle": {"name": "x", "tasks": [
            {"id": "a", "repo": repo, "instructions": "x", "model": f"scripted:{ok}", "depends_on": ["b"]},
            {"id": "b", "repo": repo, "instructions": "x", "model": f"scripted:{ok}", "depends_on": ["a"]},
        ]},
        "unknown": {"name": "x", "tasks": [
            {"id": "a", "repo": repo, "instructions": "x", "model": f"scripted:{ok}", "depends_on": ["zz"]},
        ]},
        "field": {"name": "x", "tasks": [
            {"id": "a", "repo": repo, "instructions": "x", "model": f"scripted:{ok}", "max_attempts": 0},
        ]},
    }  # fmt: skip
    expected = {
        "cycle": "cycle: a -> b -> a",
        "unknown": "unknown task id 'zz'",
        "field": ":7: tasks[0].max_attempts",
    }
    for name, body in cases.items():
        f = campaign_file(tmp_path / f"{name}.yaml", body)
        with pytest.raises(ConfigError) as e:
            await create_from_file(store, f)
        assert expected[name] in str(e.value) and "\n" not in str(e.value), str(e.value)
    # nothing was created for any of the bad files
    assert all(c.name != "x" for c in await store.list_campaigns(500))


async def test_a_long_chain_loads_and_a_cycle_is_refused_in_code_too(
    store: Store, tmp_path: Path
) -> None:
    repo = str(make_repo(tmp_path / "r"))
    chain = [{"id": f"t{i}", "repo": repo, "instructions": "x", "model": "scripted:s.json",
              "depends_on": [f"t{i - 1}"] if i else []} for i in range(3000)]  # fmt: skip
    spec, _ = load_campaign(campaign_file(tmp_path / "chain.yaml", {"name": "c", "tasks": chain}))
    assert len(spec.tasks) == 3000  # a refactor's parts can chain; no recursion limit
    looped = spec.model_copy(update={"tasks": (
        spec.tasks[0].model_copy(update={"depends_on": ("t2999",)}), *spec.tasks[1:],
    )})  # fmt: skip
    with pytest.raises(ConfigError, match="campaign c: depends_on forms a cycle: t0 -> t2999"):
        await store.create_campaign(looped)


async def test_campaign_timeout_cancels_what_is_left(store: Store, tmp_path: Path) -> None:
    hang = script(tmp_path / "hang.json", ["sleep 600"])
    tasks = [
        {"id": f"t{i}", "repo": str(make_repo(tmp_path / f"r{i}")), "instructions": "x",
         "model": f"scripted:{hang}", "sandbox": "local", "command_timeout_s": 900}
        for i in range(3)
    ]  # fmt: skip
    f = campaign_file(
        tmp_path / "c.yaml", {"name": "t", "unsafe_local": True, "timeout_s": 1.5, "tasks": tasks}
    )
    cid = await create_from_file(store, f)
    status = await asyncio.wait_for(run_campaign(store, cid, _settings(tmp_path)), 60)
    assert {t["state"] for t in status["tasks"]} == {"cancelled"}
    assert not _sleepers("sleep 600")


async def test_an_escalating_agent_lands_in_review(store: Store, tmp_path: Path) -> None:
    turns = [
        {"tool_calls": [{"tool": "bash", "args": {"command": "echo 'x = 1' > new.py"}}]},
        {"tool_calls": [{"tool": "escalate", "args": {"reason": "tests break after the bump"}}]},
    ]
    s = tmp_path / "esc.json"
    s.write_text(__import__("json").dumps(turns))
    tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
              "model": f"scripted:{s}", "sandbox": "local"}]  # fmt: skip
    f = campaign_file(tmp_path / "c.yaml", {"name": "e", "unsafe_local": True, "tasks": tasks})
    cid = await create_from_file(store, f)
    status = await run_campaign(store, cid, _settings(tmp_path))
    assert status["tasks"][0]["state"] == "needs_review"
    review = next(r for r in await store.reviews() if r.task_id == status["tasks"][0]["id"])
    assert review.reason == "tests break after the bump" and "new.py" in review.diff
    assert status["tasks"][0]["attempts"] == 1
