"""The request body and the token estimate come from one encoding of the prompt."""

from __future__ import annotations

import json

from corral.domain import Message, ToolCall, ToolSpec
from corral.gateway.wire import WirePrompt, tools_json
from corral.models.openai_format import messages_to_openai, tools_to_openai


def _tools() -> tuple[ToolSpec, ...]:
    return (
        ToolSpec(name="bash", description="run", parameters={"type": "object"}),
        ToolSpec(name="finish", description="end", parameters={"type": "object"}),
    )


def _messages() -> list[Message]:
    call = ToolCall(id="c1", name="bash", arguments={"command": "ls é"})
    return [
        Message(role="system", content="you are an agent"),
        Message(role="user", content="fix the test"),
        Message(role="assistant", content="", tool_calls=(call,)),
        Message(role="tool", content="a.py\n", tool_call_id="c1"),
    ]


def test_body_is_the_openai_request_for_these_messages_and_tools() -> None:
    tools = _tools()
    body = json.loads(WirePrompt(_messages(), tools).body("m-1", 256))
    assert body == {
        "model": "m-1",
        "messages": messages_to_openai(_messages()),
        "max_tokens": 256,
        "tools": tools_to_openai(tools),
    }


def test_no_tools_means_no_tools_key() -> None:
    body = json.loads(WirePrompt(_messages(), ()).body("m", 10))
    assert "tools" not in body


def test_estimate_grows_with_the_prompt_and_counts_tools() -> None:
    short = WirePrompt(_messages()[:2], ())
    longer = WirePrompt(_messages(), ())
    with_tools = WirePrompt(_messages(), _tools())
    assert 0 < short.estimated_tokens < longer.estimated_tokens < with_tools.estimated_tokens
    # an upper bound: at least one token per 4 characters of what is sent
    assert with_tools.estimated_tokens >= len(with_tools.body("m", 1)) // 4


def test_tool_json_is_reused_for_the_same_specs_only() -> None:
    tools = _tools()
    assert tools_json(tools) is tools_json(list(tools))
    other = (ToolSpec(name="think", description="t", parameters={"type": "object"}),)
    assert '"think"' in tools_json(other) and '"think"' not in tools_json(tools)
