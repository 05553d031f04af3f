"""Worker processes share one gateway service: per-attempt tokens, one set of budgets."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from corral.domain import ConfigError, ProviderError
from corral.domain.errors import BudgetExceeded
from corral.gateway import BudgetScope, Face, Gateway, TaskInfo
from corral.gateway.face import serve_face
from corral.gateway.remote import GatewayService, RemoteModel
from corral.testing import FakeProvider

from .conftest import ask, config, deployment


@contextlib.asynccontextmanager
async def _serving(tmp_path: Path, gw: Gateway) -> AsyncIterator[tuple[Face, Path, Path]]:
    public, admin = tmp_path / "gw.sock", tmp_path / "gw.admin"
    face = Face(gw)
    ready = asyncio.Event()
    serving = asyncio.create_task(
        serve_face(face, str(public), admin_path=str(admin), on_ready=lambda _: ready.set())
    )
    await ready.wait()
    try:
        async with gw:
            yield face, public, admin
    finally:
        serving.cancel()
        await asyncio.gather(serving, return_exceptions=True)


@pytest.fixture
async def service(tmp_path: Path) -> AsyncIterator[tuple[Face, Path, Path]]:
    async with FakeProvider() as fp, _serving(tmp_path, Gateway(config(deployment("d", fp)))) as s:
        yield s


async def _cancelled_while_waiting(model: RemoteModel) -> None:
    """A call stopped 0.1 s in (the attempt was cancelled while its token was asked for)."""
    call = asyncio.ensure_future(model.complete(ask(), []))
    await asyncio.sleep(0.1)
    call.cancel()
    with pytest.raises(asyncio.CancelledError):
        await call


async def test_a_remote_attempt_is_charged_to_its_own_scope(
    service: tuple[Face, Path, Path],
) -> None:
    face, public, admin = service
    client = GatewayService(public, admin)
    model = client.model("d", BudgetScope(attempt="a1", task="t1", campaign="c1"))
    done = await model.complete(ask(), [])
    assert done.tool_calls and done.cost_usd > 0
    ledger = face.gateway.ledger
    for key in ("attempt:a1", "task:t1", "campaign:c1"):
        assert (await ledger.state(key)).spent_usd == pytest.approx(done.cost_usd)
    # Its token ends with the attempt: a call made with it afterwards is refused.
    token = model._token
    await model.aclose()
    assert token is not None and face.grants.lookup(token) is None
    await client.aclose()


async def test_a_token_issued_to_a_cancelled_call_is_revoked(
    service: tuple[Face, Path, Path],
) -> None:
    """The attempt was stopped while the service issued its token: the answer still
    arrives, and closing the model revokes the token instead of leaving it valid."""
    face, public, admin = service
    client = GatewayService(public, admin)
    real_issue = client.issue
    issued: list[str] = []

    async def slow_issue(*args: Any, **kwargs: Any) -> str:
        await asyncio.sleep(0.3)
        issued.append(await real_issue(*args, **kwargs))
        return issued[-1]

    client.issue = slow_issue  # type: ignore[method-assign]
    before = len(face.grants)
    model = client.model("d", BudgetScope(attempt="stopped"))
    await _cancelled_while_waiting(model)
    await model.aclose()
    assert len(issued) == 1 and face.grants.lookup(issued[0]) is None
    assert len(face.grants) == before
    await client.aclose()


async def test_a_service_that_never_answers_stops_no_attempt_for_long(tmp_path: Path) -> None:
    """Its admin socket accepts and then says nothing (the service is stuck): a call, and
    closing a model whose call was cancelled while it waited, end at the admin time limit
    instead of holding the attempt (and its worker slot) forever."""

    async def never_answer(_r: asyncio.StreamReader, _w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(3600)

    server = await asyncio.start_unix_server(never_answer, path=str(tmp_path / "a.admin"))
    try:
        client = GatewayService(tmp_path / "a.sock", tmp_path / "a.admin")
        client.admin_timeout_s = 0.5
        with pytest.raises(ProviderError, match=r"no answer within 0.5s$"):
            await client.model("d", BudgetScope(attempt="x")).complete(ask(), [])
        model = client.model("d", BudgetScope(attempt="y"))
        await _cancelled_while_waiting(model)
        await asyncio.wait_for(model.aclose(), 5)  # hung forever before
    finally:
        server.close()


async def test_two_workers_share_one_campaign_budget(service: tuple[Face, Path, Path]) -> None:
    """Each worker process has its own client; the budget holds across both."""
    face, public, admin = service
    one = (
        await GatewayService(public, admin).model("d", BudgetScope(attempt="x")).complete(ask(), [])
    )
    budget = {"campaign:shared": one.cost_usd * 10}
    workers = [GatewayService(public, admin) for _ in range(2)]
    outcome: list[tuple[int, bool]] = []  # (worker, served)
    for i in range(40):
        scope = BudgetScope(attempt=f"a{i}", campaign="shared")
        try:
            await workers[i % 2].model("d", scope, budgets=budget).complete(ask(i), [])
            outcome.append((i % 2, True))
        except BudgetExceeded:
            outcome.append((i % 2, False))
    served = [ok for _, ok in outcome]
    first_refusal = served.index(False)
    # Both workers were served until the shared budget ran out; then both were refused.
    assert first_refusal >= 2 and {w for w, _ in outcome[:first_refusal]} == {0, 1}
    assert not any(served[first_refusal:])
    spent = (await face.gateway.ledger.state("campaign:shared")).spent_usd
    assert spent <= budget["campaign:shared"]
    for worker in workers:
        await worker.aclose()


async def test_an_unknown_deployment_or_a_gone_service_is_one_clear_error(
    service: tuple[Face, Path, Path], tmp_path: Path
) -> None:
    _, public, admin = service
    with pytest.raises(ProviderError, match=r"nope"):
        await GatewayService(public, admin).model("nope", BudgetScope()).complete(ask(), [])
    gone = GatewayService(tmp_path / "none.sock", tmp_path / "none.admin")
    with pytest.raises(ProviderError, match="cannot connect"):
        await gone.model("d", BudgetScope()).complete(ask(), [])


async def test_a_token_the_service_forgot_is_asked_for_again(
    service: tuple[Face, Path, Path],
) -> None:
    """After a service restart every token is gone: the attempt gets a new one, once."""
    face, public, admin = service
    client = GatewayService(public, admin)
    model = client.model("d", BudgetScope(attempt="a2"))
    await model.complete(ask(), [])
    first = model._token
    assert first is not None and face.grants.revoke(first)
    done = await model.complete(ask(1), [])
    assert done.tool_calls and model._token not in (None, first)
    await client.aclose()


async def test_an_expired_grant_is_refused_and_dropped(service: tuple[Face, Path, Path]) -> None:
    face, _, _ = service
    token = face.issue_token(BudgetScope(attempt="old"), deadline=time.monotonic() - 1)
    kept = len(face.grants)
    assert face.grants.lookup(token) is None
    assert len(face.grants) == kept - 1


async def test_an_admin_socket_that_hangs_up_is_one_clear_error(tmp_path: Path) -> None:
    async def hang_up(_r: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        writer.close()

    server = await asyncio.start_unix_server(hang_up, path=str(tmp_path / "a.admin"))
    try:
        client = GatewayService(tmp_path / "a.sock", tmp_path / "a.admin")
        with pytest.raises(ProviderError, match="no answer"):
            await client.issue(BudgetScope(attempt="x"))
    finally:
        server.close()


ROUTES = [
    {"name": "fixes", "profile": "default", "match": {"kind": "cve"}, "models": ["cheap", "strong"]}
]


async def test_a_worker_routes_through_the_service_and_falls_back_there(tmp_path: Path) -> None:
    """`model: route` with a shared service: the service's rules choose, and its fallbacks
    (here: past a deployment that keeps failing) apply to the attempt's calls."""
    async with (
        FakeProvider(respond=lambda r: 500) as bad,
        FakeProvider() as good,
    ):
        cfg = config(
            deployment("cheap", bad), deployment("strong", good), routes=ROUTES,
            transient_retries=0,
        )  # fmt: skip
        async with _serving(tmp_path, Gateway(cfg, env={})) as (face, public, admin):
            client = GatewayService(public, admin)
            decision = await client.route(TaskInfo(kind="cve", attempt=1))
            assert decision.rule == "fixes" and decision.models == ("cheap", "strong")
            escalated = await client.route(TaskInfo(kind="cve", attempt=2))
            assert escalated.models == ("strong", "cheap")  # a retry escalates
            model = client.model(decision, BudgetScope(attempt="r1"))
            assert model.name == "gateway:cheap,strong"
            done = await model.complete(ask(), [])
            assert done.tool_calls and done.cost_usd > 0
            assert bad.stats.requests == 1 and good.stats.completed == 1
            assert face.gateway.stats.fallbacks == 1
            assert (await face.gateway.ledger.state("attempt:r1")).spent_usd > 0
            # A task no rule matches is the config's fault: a one-line ConfigError.
            with pytest.raises(ConfigError, match=r"no route matches task kind='docs'"):
                await client.route(TaskInfo(kind="docs"))
            await model.aclose()
            await client.aclose()


async def test_routing_through_a_service_without_routes_is_one_clear_error(
    service: tuple[Face, Path, Path],
) -> None:
    _, public, admin = service
    with pytest.raises(ConfigError, match=r"needs routes in the gateway service's config$"):
        await GatewayService(public, admin).route(TaskInfo(kind="cve"))
