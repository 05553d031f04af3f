"""The request body and the token estimate come from one encoding of the prompt."""

from __future__ import annotations

import gc
import json
import uuid
from typing import Any

from pytest import MonkeyPatch

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


def _conversation(n: int) -> list[Message]:
    out = _messages()
    for i in range(n):
        call = ToolCall(id=f"c{i}", name="bash", arguments={"command": f"cat 'f{i}' \"q\"\n"})
        out.append(Message(role="assistant", content=f"step {i} ✓", tool_calls=(call,)))
        out.append(Message(role="tool", content=f"out {i}\t\\ </x>", tool_call_id=f"c{i}"))
    return out


def test_body_is_byte_identical_to_dumping_the_whole_request_every_time() -> None:
    msgs, tools = _conversation(50), _tools()
    whole = {"model": "m", "messages": messages_to_openai(msgs), "max_tokens": 9,
             "tools": tools_to_openai(tools)}  # fmt: skip
    expected = json.dumps(whole, separators=(",", ":"), ensure_ascii=False).encode()
    first = WirePrompt(msgs, tools)
    again = WirePrompt(msgs, tools)  # from the kept encodings this time
    assert first.body("m", 9) == expected and again.body("m", 9) == expected
    assert first.estimated_tokens == again.estimated_tokens


def _spy_encodings(monkeypatch: MonkeyPatch) -> list[Message]:
    """Every message encoded from here on (through either module's name for it)."""
    import corral.gateway.wire as wire
    import corral.models.openai_format as fmt

    encoded: list[Message] = []
    real = fmt.message_to_openai

    def spy(message: Message) -> dict[str, Any]:
        encoded.append(message)
        return real(message)

    monkeypatch.setattr(fmt, "message_to_openai", spy)
    monkeypatch.setattr(wire, "message_to_openai", spy, raising=False)
    return encoded


def test_a_grown_conversation_encodes_only_its_new_messages(monkeypatch: MonkeyPatch) -> None:
    encoded = _spy_encodings(monkeypatch)
    msgs = _conversation(100)
    WirePrompt(msgs, ())
    assert len(encoded) >= 200  # its 200 steps were new
    for new in (
        Message(role="tool", content="more output", tool_call_id="c99"),
        Message(role="user", content=f"and now? {uuid.uuid4()}"),
    ):
        seen = len(encoded)
        grown = WirePrompt([*msgs, new], ())
        assert encoded[seen:] == [new]
        assert json.loads(grown.messages_json) == messages_to_openai([*msgs, new])
        msgs.append(new)


def test_a_freed_message_takes_its_encoding_with_it() -> None:
    from corral.gateway.wire import _messages, message_json

    gc.collect()
    before = len(_messages)
    for i in range(200):  # CPython hands a freed object's id (its address) to the next one
        m = Message(role="tool", content=f"output {i}", tool_call_id="c")
        assert json.loads(message_json(m)) == messages_to_openai([m])[0]
        del m
    gc.collect()
    assert len(_messages) <= before


def test_equal_tool_sets_of_other_objects_encode_alike_and_go_when_freed() -> None:
    from corral.gateway.wire import _tool_sets

    gc.collect()
    before = len(_tool_sets)
    for _ in range(50):
        tools = _tools()  # new objects each time, as every agent makes its own
        assert json.loads(tools_json(tools)) == tools_to_openai(tools)
        del tools
    gc.collect()
    assert len(_tool_sets) <= before
