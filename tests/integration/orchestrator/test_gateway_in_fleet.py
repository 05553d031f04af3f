"""Fleet attempts call provider models through the gateway: budgets per campaign hold,
and `model: route` records the routing decision as an event."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import yaml
from tests.integration.orchestrator.conftest import make_repo

from corral.domain import Completion, RouteDecided, TaskState, ToolCall, Usage
from corral.gateway import Deployment, Face, Gateway, GatewayConfig, Price, RouteRule
from corral.gateway.face import serve_face
from corral.gateway.remote import GatewayService
from corral.orchestrator.campaigns import create_from_file, run_campaign
from corral.orchestrator.models import FleetModels
from corral.orchestrator.retry import RetryPolicy
from corral.orchestrator.settings import WorkerSettings
from corral.store import Store
from corral.testing import FakeProvider


def _file(tmp_path: Path, tasks: list[dict[str, object]], **top: object) -> Path:
    f = tmp_path / "c.yaml"
    f.write_text(yaml.safe_dump({"name": "gw", "unsafe_local": True, **top, "tasks": tasks}))
    return f


def _gateway(url: str, price: float) -> Gateway:
    dep = Deployment(
        name="fake", model=f"openai-compatible:{url}#fake-model",
        price=Price(input_per_mtok=price, output_per_mtok=price), max_output_tokens=1000,
    )  # fmt: skip
    rule = RouteRule(name="everything", profile="default", models=("fake",))
    return Gateway(GatewayConfig(deployments=(dep,), routes=(rule,)))


SETTINGS = WorkerSettings(poll_s=0.05, heartbeat_s=0.2)


async def test_route_decision_is_recorded_and_calls_go_through_the_gateway(
    tmp_path: Path,
) -> None:
    store = await Store.open(home=tmp_path / ".corral")
    with FakeProvider() as fp:  # answers every call with a finish tool call
        gw = _gateway(fp.base_url, price=1.0)
        tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
                  "model": "route", "sandbox": "local"}]  # fmt: skip
        cid = await create_from_file(store, _file(tmp_path, tasks))
        settings = SETTINGS.model_copy(update={"home": tmp_path / ".corral"})
        status = await run_campaign(store, cid, settings, models=FleetModels(gateway=gw))
        await gw.aclose()
        assert status["tasks"][0]["state"] == "succeeded"
        assert gw.stats.calls == 1 and len(fp.requests) == 1
    attempt = (await store.attempts_of(status["tasks"][0]["id"]))[0]
    events = await store.events(attempt["id"])
    assert isinstance(events[0], RouteDecided)
    assert events[0].rule == "everything" and events[0].models == ("fake",)
    assert events[1].type == "attempt_started"
    await store.close()


async def test_route_through_a_shared_gateway_service(tmp_path: Path) -> None:
    """Workers that share a service (`--gateway-socket`) hold no gateway config: the
    service's rules route the task, and the decision is recorded all the same."""
    store = await Store.open(home=tmp_path / ".corral")
    public, admin = tmp_path / "gw.sock", tmp_path / "gw.admin"
    with FakeProvider() as fp:
        gw = _gateway(fp.base_url, price=1.0)
        ready = asyncio.Event()
        serving = asyncio.create_task(
            serve_face(Face(gw), str(public), admin_path=str(admin), on_ready=lambda _: ready.set())
        )
        await ready.wait()
        tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
                  "model": "route", "sandbox": "local"}]  # fmt: skip
        cid = await create_from_file(store, _file(tmp_path, tasks))
        settings = SETTINGS.model_copy(update={"home": tmp_path / ".corral"})
        models = FleetModels(service=GatewayService(public, admin))
        status = await run_campaign(store, cid, settings, models=models)
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)
        await gw.aclose()
        assert status["tasks"][0]["state"] == "succeeded", status
        assert gw.stats.calls == 1 and len(fp.requests) == 1
    attempt = (await store.attempts_of(status["tasks"][0]["id"]))[0]
    events = await store.events(attempt["id"])
    assert isinstance(events[0], RouteDecided)
    assert events[0].rule == "everything" and events[0].models == ("fake",)
    assert attempt["cost_usd"] > 0  # the service's charge, reported back to the worker
    await store.close()


async def test_an_unreachable_service_is_retried_not_a_final_failure(tmp_path: Path) -> None:
    """The service may be restarting: routing that cannot reach it retries the task."""
    store = await Store.open(home=tmp_path / ".corral")
    tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
              "model": "route", "sandbox": "local", "max_attempts": 2}]  # fmt: skip
    cid = await create_from_file(store, _file(tmp_path, tasks))
    settings = SETTINGS.model_copy(
        update={"home": tmp_path / ".corral", "retry": {"default": RetryPolicy(base_s=0.05)}}
    )
    models = FleetModels(service=GatewayService(tmp_path / "gone.sock", tmp_path / "gone.admin"))
    status = await run_campaign(store, cid, settings, models=models)
    (task,) = status["tasks"]
    assert task["state"] == "failed" and task["attempts"] == 2, task
    assert "cannot connect" in task["reason"]
    await store.close()


async def test_campaign_budget_stops_calls_before_they_are_made(tmp_path: Path) -> None:
    store = await Store.open(home=tmp_path / ".corral")
    with FakeProvider() as fp:
        gw = _gateway(fp.base_url, price=1000.0)  # worst case of one call: about $1+
        tasks = [{"id": f"t{i}", "repo": str(make_repo(tmp_path / f"r{i}")), "instructions": "x",
                  "model": f"openai-compatible:{fp.base_url}#fake-model", "sandbox": "local"}
                 for i in range(3)]  # fmt: skip
        cid = await create_from_file(store, _file(tmp_path, tasks, budget_usd=0.5))
        settings = SETTINGS.model_copy(update={"home": tmp_path / ".corral"})
        status = await run_campaign(store, cid, settings, models=FleetModels(gateway=gw))
        await gw.aclose()
        assert len(fp.requests) == 0, "no request may reach the provider over budget"
    assert {t["state"] for t in status["tasks"]} == {"failed"}
    assert all(t["attempts"] == 1 for t in status["tasks"]), status["tasks"]
    assert all("budget" in t["reason"].lower() for t in status["tasks"]), status["tasks"]
    await store.close()


async def test_a_cancelled_attempt_keeps_what_its_model_calls_cost(tmp_path: Path) -> None:
    """Its first call was paid for, then the cancel came during the command: the attempt
    recorded $0 (and 0 steps), under-reporting what the campaign spent."""
    store = await Store.open(home=tmp_path / ".corral")
    hang = ToolCall(id="call_1", name="bash", arguments={"command": "sleep 600"})
    first = Completion(tool_calls=(hang,), usage=Usage(input_tokens=900, output_tokens=20))
    with FakeProvider(script=[first]) as fp:
        gw = _gateway(fp.base_url, price=1.0)
        tasks = [{"id": "t", "repo": str(make_repo(tmp_path / "r")), "instructions": "x",
                  "model": "route", "sandbox": "local", "command_timeout_s": 900}]  # fmt: skip
        cid = await create_from_file(store, _file(tmp_path, tasks))
        settings = SETTINGS.model_copy(update={"home": tmp_path / ".corral"})
        run = asyncio.create_task(
            run_campaign(store, cid, settings, models=FleetModels(gateway=gw))
        )
        (task,) = await store.tasks(campaign_id=cid)

        async def started() -> bool:
            running = (await store.get_task(task.id)).state is TaskState.running
            return running and bool(fp.requests)

        async with asyncio.timeout(30):
            while not await started():  # noqa: ASYNC110 - nothing to wait on but the store
                await asyncio.sleep(0.05)
        await asyncio.sleep(0.5)  # the first answer is recorded and the command runs
        assert await store.request_cancel([task.id]) == 1
        status = await asyncio.wait_for(run, 30)
        await gw.aclose()
    assert status["tasks"][0]["state"] == "cancelled"
    (attempt,) = await store.attempts_of(task.id)
    assert attempt["steps"] == 1
    assert attempt["cost_usd"] == pytest.approx((900 + 20) / 1e6)  # $1 per million tokens
    await store.close()
