"""The face decodes each message and tool set once per content."""

from __future__ import annotations

import pytest

from corral.gateway.decoded import Decoded
from corral.gateway.wire import WirePrompt, message_json

TOOLS = [{"type": "function", "function": {"name": "bash", "parameters": {"type": "object"}}}]


def history(n: int) -> list[dict[str, object]]:
    msgs: list[dict[str, object]] = [{"role": "system", "content": "be brief"}]
    for i in range(n):
        msgs.append({"role": "assistant", "content": None, "tool_calls": [{
            "id": f"c{i}", "type": "function",
            "function": {"name": "bash", "arguments": '{"command": "ls"}'}}]})  # fmt: skip
        msgs.append({"role": "tool", "tool_call_id": f"c{i}", "content": f"out {i}"})
    return msgs


def test_a_growing_history_decodes_only_what_is_new() -> None:
    cache = Decoded()
    first = cache.messages(history(2))
    second = cache.messages(history(3))
    assert all(a is b for a, b in zip(first, second, strict=False))
    assert second[-1].content == "out 2" and second[-1].tool_call_id == "c2"
    assert len(cache) == 7
    # ... so the wire's per-object encoding is reused too, and stays the same bytes
    assert message_json(second[0]) is message_json(first[0])


def test_other_content_is_another_object_whatever_the_key_order() -> None:
    cache = Decoded()
    a = cache.messages([{"role": "user", "content": "hi"}])[0]
    b = cache.messages([{"content": "hi", "role": "user"}])[0]
    c = cache.messages([{"role": "user", "content": "ho"}])[0]
    assert a is b and c is not a and c.content == "ho"


def test_tool_sets_are_decoded_once_and_checked() -> None:
    cache = Decoded()
    t1, t2 = cache.tools(TOOLS), cache.tools([dict(TOOLS[0])])
    assert t1[0] is t2[0] and t1[0].name == "bash"
    assert WirePrompt([], t1).tools_json is WirePrompt([], t2).tools_json
    with pytest.raises(ValueError, match=r"tools\[1\] is not a function tool"):
        cache.tools([*TOOLS, {"type": "function"}])
    with pytest.raises(ValueError, match="'tools' must be a list"):
        cache.tools({"a": 1})
    assert cache.tools(None) == []


def test_a_bad_message_is_named_by_its_index_and_not_kept() -> None:
    cache = Decoded()
    with pytest.raises(ValueError, match=r"messages\[1\]\.role 'robot'"):
        cache.messages([{"role": "user", "content": "x"}, {"role": "robot", "content": "y"}])
    assert len(cache) == 1


def test_least_recently_used_content_goes_past_the_byte_budget() -> None:
    cache = Decoded(max_bytes=200)
    keep = {"role": "user", "content": "keep me"}
    kept = cache.messages([keep])[0]
    for i in range(20):
        cache.messages([keep, {"role": "user", "content": f"filler {i:03d} " * 2}])
    assert cache.messages([keep])[0] is kept  # used on every call: never dropped
    assert 1 < len(cache) < 8
