"""The fake provider as a server: protocol details any OpenAI client relies on."""

from __future__ import annotations

import asyncio
import json
import random
import socket

import httpx
import pytest

from corral.domain import Completion, Message
from corral.models import OpenAICompatModel
from corral.testing import FakeProvider, uniform

CHAT = {"model": "m", "messages": [{"role": "user", "content": "hi"}]}


async def test_models_endpoint_and_auth() -> None:
    async with FakeProvider(api_key="k", model="tiny") as fp:
        async with httpx.AsyncClient() as client:
            ok = await client.get(f"{fp.base_url}/models", headers={"Authorization": "Bearer k"})
            denied = await client.get(f"{fp.base_url}/models")
            missing = await client.get(f"{fp.base_url}/nothing")
            wrong_method = await client.get(f"{fp.base_url}/chat/completions")
    assert ok.status_code == 200 and ok.json()["data"][0]["id"] == "tiny"
    assert denied.status_code == 401
    assert denied.json()["error"]["code"] == "invalid_api_key"
    assert missing.status_code == 404
    assert wrong_method.status_code == 405


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b"{not json", "must be a JSON object"),
        (json.dumps({"model": "m", "messages": []}).encode(), "non-empty list"),
        (json.dumps({**CHAT, "stream": True}).encode(), "does not stream"),
    ],
)
async def test_bad_requests_get_400(body: bytes, fragment: str) -> None:
    with FakeProvider() as fp:
        async with httpx.AsyncClient() as client:
            response = await client.post(f"{fp.base_url}/chat/completions", content=body)
        assert response.status_code == 400
        assert fragment in response.json()["error"]["message"]
        assert fp.stats.bad_requests == 1


async def test_failures_are_served_in_order_then_normal_replies() -> None:
    with FakeProvider(failures=[500, 429, "no_choices"]) as fp:
        async with httpx.AsyncClient() as client:
            url = f"{fp.base_url}/chat/completions"
            codes = [(await client.post(url, json=CHAT)).status_code for _ in range(4)]
    assert codes == [500, 429, 200, 200]
    assert fp.stats.faults == 3 and fp.stats.completed == 1


async def test_keep_alive_and_chunked_bodies() -> None:
    with FakeProvider() as fp:
        host, port = "127.0.0.1", int(fp.base_url.split(":")[2].split("/")[0])
        reader, writer = await asyncio.open_connection(host, port)
        body = json.dumps(CHAT).encode()
        chunked = b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
        for framing in (
            b"Content-Length: %d\r\n\r\n%s" % (len(body), body),
            b"Transfer-Encoding: chunked\r\n\r\n" + chunked,
        ):
            writer.write(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n" + framing)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.split(b"content-length: ")[1].split(b"\r\n")[0])
            reply = json.loads(await reader.readexactly(length))
            assert reply["choices"][0]["message"]["tool_calls"][0]["function"]["name"] == "finish"
        writer.close()
        await writer.wait_closed()
    assert fp.stats.completed == 2


async def _one_raw_request(port: int) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    body = json.dumps(CHAT).encode()
    writer.write(
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(body), body)
    )
    await writer.drain()
    response = await reader.read()  # the server closes after answering
    writer.close()
    await writer.wait_closed()
    return int(response.split(b" ", 2)[1])


async def test_hundreds_of_concurrent_connections_are_served_at_once() -> None:
    # Raw sockets, not httpx: httpcore's pool itself slows down badly past ~100
    # concurrent requests on one client, which would hide what the server can do.
    with FakeProvider(latency=0.3) as fp:
        port = int(fp.base_url.split(":")[2].split("/")[0])
        statuses = await asyncio.gather(*(_one_raw_request(port) for _ in range(400)))
    assert statuses == [200] * 400
    assert fp.stats.completed == 400
    # All were in flight together rather than queued one by one.
    assert fp.stats.max_in_flight >= 300


def test_seeded_latency_is_reproducible() -> None:
    sample = uniform(0.1, 0.5)
    first = [sample(random.Random(7)) for _ in range(3)]
    again = [sample(random.Random(7)) for _ in range(3)]
    assert first == again and all(0.1 <= x <= 0.5 for x in first)


async def test_set_limits_and_token_correction() -> None:
    with FakeProvider() as fp:
        async with httpx.AsyncClient() as client:
            url = f"{fp.base_url}/chat/completions"
            assert (await client.post(url, json=CHAT)).status_code == 200
            fp.set_limits(rpm=1)
            first = await client.post(url, json=CHAT)
            second = await client.post(url, json=CHAT)
    assert first.status_code == 200 and first.headers["x-ratelimit-remaining-requests"] == "0"
    assert second.status_code == 429
    assert second.json()["error"]["code"] == "rate_limit_exceeded"


async def test_script_replies_then_default_and_served_usage() -> None:
    script = [Completion(content="one"), {"thought": "two", "usage": {"input_tokens": 3}}]
    with FakeProvider(script=script, default=Completion(content="rest")) as fp:
        model = OpenAICompatModel(fp.base_url, "m")
        user = [Message(role="user", content="x")]
        replies = [await model.complete(user, []) for _ in range(3)]
        await model.aclose()
    assert [r.content for r in replies] == ["one", "two", "rest"]
    assert replies[1].usage.input_tokens == 3


def test_port_in_use_fails_at_start() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(OSError):
            FakeProvider(port=port).start()


def test_base_url_needs_a_running_server() -> None:
    with pytest.raises(RuntimeError, match="not running"):
        _ = FakeProvider().base_url
