"""The OpenAI-compatible face on a Unix socket: tokens, budgets carried, streaming."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from corral.gateway import BudgetScope, Face, Gateway, HttpServer
from corral.testing import FakeProvider

from .conftest import config, deployment

CHAT = {"model": "d", "messages": [{"role": "user", "content": "fix the bug"}]}


@pytest.fixture
async def served(
    tmp_path: Path,
) -> AsyncIterator[tuple[Face, httpx.AsyncClient, httpx.AsyncClient]]:
    async with FakeProvider(api_key="sk-real-secret") as fp:
        cfg = config(deployment("d", fp, api_key_env="FAKE_KEY"), deployment("e", fp))
        gw = Gateway(cfg, env={"FAKE_KEY": "sk-real-secret"})
        face = Face(gw)
        public = HttpServer(face.handle, path=tmp_path / "gw.sock", mode=0o666)
        admin = HttpServer(face.handle_admin, path=tmp_path / "gw.admin")
        await public.start()
        await admin.start()

        def client(path: Path) -> httpx.AsyncClient:
            transport = httpx.AsyncHTTPTransport(uds=str(path))
            return httpx.AsyncClient(transport=transport, base_url="http://gateway")

        async with gw, client(tmp_path / "gw.sock") as pub, client(tmp_path / "gw.admin") as adm:
            yield face, pub, adm
        await public.close()
        await admin.close()


async def test_a_wrong_or_missing_token_is_401(
    served: tuple[Face, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _, pub, _ = served
    for headers in ({}, {"Authorization": "Bearer sk-real-secret"}, {"Authorization": "Bearer x"}):
        response = await pub.post("/v1/chat/completions", json=CHAT, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"]["code"] == "invalid_api_key"


async def test_a_token_carries_its_attempts_budget_scope(
    served: tuple[Face, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    face, pub, _ = served
    token = face.issue_token(BudgetScope(attempt="a1", task="t1"), models=["d"])
    auth = {"Authorization": f"Bearer {token}"}
    models = await pub.get("/v1/models", headers=auth)
    assert [m["id"] for m in models.json()["data"]] == ["d"]
    response = await pub.post("/v1/chat/completions", json=CHAT, headers=auth)
    assert response.status_code == 200
    body = response.json()
    assert body["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "finish"
    spent = (await face.gateway.ledger.state("attempt:a1")).spent_usd
    assert spent > 0 and spent == pytest.approx(body["usage"]["cost_usd"])
    assert (await face.gateway.ledger.state("task:t1")).spent_usd == pytest.approx(spent)
    other = await pub.post("/v1/chat/completions", json=CHAT | {"model": "e"}, headers=auth)
    assert other.status_code == 404 and other.json()["error"]["code"] == "model_not_found"


async def test_budget_exhaustion_is_402_and_stream_is_served(
    served: tuple[Face, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    face, pub, _ = served
    await face.gateway.ledger.set_limit("attempt:poor", 1e-7)
    poor = face.issue_token(BudgetScope(attempt="poor"))
    response = await pub.post(
        "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {poor}"}
    )
    assert response.status_code == 402 and response.json()["error"]["code"] == "budget_exceeded"
    rich = face.issue_token(BudgetScope(attempt="rich"))
    streamed = await pub.post(
        "/v1/chat/completions",
        json=CHAT | {"stream": True},
        headers={"Authorization": f"Bearer {rich}"},
    )
    assert streamed.headers["content-type"] == "text/event-stream"
    events = [line[6:] for line in streamed.text.splitlines() if line.startswith("data: ")]
    assert events[-1] == "[DONE]"
    first = json.loads(events[0])
    assert first["choices"][0]["delta"]["tool_calls"][0]["function"]["name"] == "finish"


async def test_admin_socket_issues_tokens_with_budgets_and_revokes_them(
    served: tuple[Face, httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    _, pub, adm = served
    issued = await adm.post(
        "/admin/tokens",
        json={"scope": {"attempt": "a9", "campaign": "c"}, "budgets": {"attempt:a9": 1.0}},
    )
    token = issued.json()["token"]
    assert issued.json()["scope"] == ["global", "campaign:c", "attempt:a9"]
    auth = {"Authorization": f"Bearer {token}"}
    assert (await pub.post("/v1/chat/completions", json=CHAT, headers=auth)).status_code == 200
    budgets = {b["key"]: b for b in (await adm.get("/admin/budgets")).json()["budgets"]}
    assert budgets["attempt:a9"]["limit_usd"] == 1.0 and budgets["attempt:a9"]["spent_usd"] > 0
    assert (await adm.post("/admin/tokens/revoke", json={"token": token})).json()["revoked"]
    assert (await pub.post("/v1/chat/completions", json=CHAT, headers=auth)).status_code == 401
    # The admin routes are not on the public socket.
    assert (await pub.post("/admin/tokens", json={}, headers=auth)).status_code == 404


async def test_the_real_key_never_reaches_the_client(
    served: tuple[Face, httpx.AsyncClient, httpx.AsyncClient], tmp_path: Path
) -> None:
    face, pub, _ = served
    token = face.issue_token(BudgetScope(attempt="k"))
    response = await pub.post(
        "/v1/chat/completions", json=CHAT, headers={"Authorization": f"Bearer {token}"}
    )
    assert "sk-real-secret" not in response.text
    assert "sk-real-secret" not in str(dict(response.headers))
    assert oct((tmp_path / "gw.admin").stat().st_mode & 0o777) == "0o600"
