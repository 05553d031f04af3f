"""The benchmark's lean provider answers exactly as the test suite's fake provider with
the workload's script does, for corral's requests and for mini-swe-agent's, over HTTP."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from corral.bench.provider import LeanScript, ProviderProcess
from corral.bench.workload import Script, command, task_text
from corral.domain import Message, ToolCall
from corral.gateway.http11 import HttpServer
from corral.gateway.wire import WirePrompt
from corral.testing import FakeProvider
from corral.tools import Toolbox

STEPS = 3


def _corral_bodies() -> list[bytes]:
    """Each request of one corral agent's run, as its gateway encodes them (compact)."""
    messages = [Message(role="system", content="You are a coding agent."),
                Message(role="user", content=task_text("a00042"))]  # fmt: skip
    specs = Toolbox.default().specs()
    bodies = []
    for step in range(STEPS):
        bodies.append(WirePrompt(messages, specs).body("fake-model", 256))
        call = ToolCall(id=f"c{step}", name="bash", arguments={"command": command("a00042", step)})
        messages += [Message(role="assistant", content="", tool_calls=(call,)),
                     Message(role="tool", content=f"agent a00042 step {step} 1.5\n",
                             tool_call_id=f"c{step}")]  # fmt: skip
    return bodies


def _mini_bodies() -> list[bytes]:
    """... and mini-swe-agent's, as litellm sends them (spaced JSON, its own tools)."""
    tools = [{"type": "function", "function": {"name": "bash", "parameters": {}}}]
    messages: list[dict[str, Any]] = [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": f"Please solve this issue: {task_text('a00007')}"},
    ]
    bodies = []
    for step in range(STEPS):
        bodies.append(json.dumps({"model": "fake-model", "messages": messages, "tools": tools}))
        messages += [
            {"role": "assistant", "content": None, "tool_calls": [
                {"id": f"c{step}", "type": "function",
                 "function": {"name": "bash", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": f"c{step}", "content": "output"},
        ]  # fmt: skip
    return [b.encode() for b in bodies]


def _answers(base_url: str, bodies: list[bytes]) -> list[dict[str, Any]]:
    out = []
    with httpx.Client(base_url=base_url, timeout=10) as client:
        for body in bodies:
            r = client.post("/chat/completions", content=body,
                            headers={"content-type": "application/json"})  # fmt: skip
            assert r.status_code == 200, r.text
            data = r.json()
            data.pop("created")
            out.append(data)
    return out


@pytest.mark.parametrize("bodies", [_corral_bodies(), _mini_bodies()], ids=["corral", "mini"])
async def test_lean_answers_equal_the_fake_providers(bodies: list[bytes]) -> None:
    script = Script(STEPS)
    with FakeProvider(respond=script) as fake:
        script.provider = fake
        expected = await _to_thread(_answers, fake.base_url, bodies)
    lean = LeanScript(STEPS, latency=0.0)
    server = HttpServer(lean.handle, host="127.0.0.1", port=0)
    await server.start()
    try:
        got = await _to_thread(_answers, f"http://127.0.0.1:{server.port}/v1", bodies)
    finally:
        await server.close()
    assert got == expected
    assert lean.requests == len(bodies)
    last = got[-1]["choices"][0]["message"]["tool_calls"]
    assert [c["function"]["name"] for c in last] in (["bash", "finish"], ["bash"])


def test_the_provider_process_serves_and_counts() -> None:
    with ProviderProcess(steps=STEPS, latency=0.0) as provider:
        answers = _answers(provider.base_url, _corral_bodies())
    assert provider.requests == STEPS
    assert (
        "a00042 step 2"
        in answers[-1]["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"]
    )


async def _to_thread(fn: Any, *args: Any) -> Any:
    import asyncio

    return await asyncio.to_thread(fn, *args)
