"""Domain <-> OpenAI chat-completions wire format."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from corral.domain import Completion, Message, ProviderError, ToolCall, ToolSpec, Usage
from corral.models.openai_format import (
    completion_to_openai,
    messages_from_openai,
    messages_to_openai,
    one_line,
    parse_response,
    parse_retry_after,
    parse_tool_call,
    tools_to_openai,
)


def _response(message: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {"id": "x", "model": "m", "choices": [{"index": 0, "message": message}], **extra}


def test_messages_to_openai_covers_every_role() -> None:
    call = ToolCall(id="c1", name="bash", arguments={"command": "ls"})
    wire = messages_to_openai(
        [
            Message(role="system", content="be brief"),
            Message(role="user", content="fix it", name="alice"),
            Message(role="assistant", content="", tool_calls=(call,)),
            Message(role="tool", content="a.py", tool_call_id="c1", name="bash"),
            Message(role="assistant", content="done"),
        ]
    )
    assert wire[0] == {"role": "system", "content": "be brief"}
    assert wire[1] == {"role": "user", "content": "fix it", "name": "alice"}
    assert wire[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "c1",
                "type": "function",
                "function": {"name": "bash", "arguments": '{"command": "ls"}'},
            }
        ],
    }
    assert wire[3] == {"role": "tool", "content": "a.py", "tool_call_id": "c1"}
    assert wire[4] == {"role": "assistant", "content": "done"}


def test_tools_to_openai() -> None:
    spec = ToolSpec(name="bash", description="run", parameters={"type": "object"})
    assert tools_to_openai([spec]) == [
        {
            "type": "function",
            "function": {"name": "bash", "description": "run", "parameters": {"type": "object"}},
        }
    ]


def test_messages_round_trip_through_the_wire() -> None:
    original = [
        Message(role="system", content="s"),
        Message(role="user", content="u"),
        Message(
            role="assistant",
            content="thinking",
            tool_calls=(ToolCall(id="c", name="editor", arguments={"path": "a", "n": 1}),),
        ),
        Message(role="tool", content="ok", tool_call_id="c"),
    ]
    assert messages_from_openai(messages_to_openai(original)) == original


def test_messages_from_openai_joins_content_parts_and_rejects_bad_roles() -> None:
    parsed = messages_from_openai(
        [
            {
                "role": "user",
                "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
            }
        ]
    )
    assert parsed[0].content == "ab"
    with pytest.raises(ValueError, match=r"messages\[0\]\.role 'robot'"):
        messages_from_openai([{"role": "robot", "content": "x"}])


def test_parse_response_reads_content_tool_calls_and_usage() -> None:
    body = _response(
        {
            "role": "assistant",
            "content": "look",
            "tool_calls": [
                {"id": "a", "type": "function", "function": {"name": "bash", "arguments": "{}"}},
                {
                    "id": "b",
                    "type": "function",
                    "function": {"name": "finish", "arguments": '{"message": "ok"}'},
                },
            ],
        },
        usage={"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15},
    )
    completion = parse_response(body)
    assert completion.content == "look"
    assert [(c.id, c.name, c.arguments) for c in completion.tool_calls] == [
        ("a", "bash", {}),
        ("b", "finish", {"message": "ok"}),
    ]
    assert completion.usage == Usage(input_tokens=12, output_tokens=3)
    assert completion.model == "m"


def test_parse_response_null_content_and_no_usage() -> None:
    completion = parse_response(_response({"role": "assistant", "content": None}))
    assert completion.content == ""
    assert completion.tool_calls == ()
    assert completion.usage == Usage()


@pytest.mark.parametrize(
    ("arguments", "expected_error"),
    [
        ('{"command": "ls"', "not valid JSON"),
        ("[1, 2]", "must be a JSON object, got array"),
        ('"just a string"', "must be a JSON object, got str"),
        ("42", "must be a JSON object, got int"),
    ],
)
def test_bad_arguments_become_parse_error_not_exception(
    arguments: str, expected_error: str
) -> None:
    call = parse_tool_call({"id": "c", "function": {"name": "bash", "arguments": arguments}})
    assert call.name == "bash"
    assert call.id == "c"
    assert call.arguments == {}
    assert call.parse_error is not None and expected_error in call.parse_error
    assert "\n" not in call.parse_error


def test_tool_call_edge_cases() -> None:
    assert parse_tool_call({"id": "c", "function": {"name": "think", "arguments": ""}}) == ToolCall(
        id="c", name="think"
    )
    assert parse_tool_call({"function": {"name": "t", "arguments": {"a": 1}}}, 3).arguments == {
        "a": 1
    }
    assert parse_tool_call({"function": {"name": "t"}}, 3).id == "call_3"
    nameless = parse_tool_call({"id": "c", "function": {"arguments": "{}"}})
    assert nameless.parse_error == "tool call has no function name"
    assert parse_tool_call("junk").parse_error == "tool call is not an object"


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([], "body is not a JSON object"),
        ({"id": "x"}, "no choices"),
        ({"choices": []}, "no choices"),
        ({"choices": [{"index": 0}]}, "choices[0] has no message"),
        ({"choices": [{"message": {"tool_calls": "x"}}]}, "tool_calls is not a list"),
        ({"error": {"message": "overloaded\nplease wait"}}, "provider returned an error"),
    ],
)
def test_malformed_response_is_a_one_line_provider_error(body: Any, fragment: str) -> None:
    with pytest.raises(ProviderError) as info:
        parse_response(body, source="m1")
    message = str(info.value)
    assert message.startswith("m1: ")
    assert fragment in message
    assert "\n" not in message


def test_completion_to_openai_parses_back_to_the_same_completion() -> None:
    completion = Completion(
        content="hi",
        tool_calls=(ToolCall(id="c", name="bash", arguments={"command": "ls"}),),
        usage=Usage(input_tokens=5, output_tokens=2),
    )
    body = completion_to_openai(completion, model="fake", response_id="r1", created=1)
    assert body["choices"][0]["finish_reason"] == "tool_calls"
    assert body["usage"]["total_tokens"] == 7
    assert parse_response(json.loads(json.dumps(body))) == completion.model_copy(
        update={"model": "fake"}
    )


def test_parse_retry_after_forms() -> None:
    assert parse_retry_after({"retry-after": "7"}) == 7.0
    assert parse_retry_after({"retry-after": "1.5"}) == 1.5
    assert parse_retry_after({"retry-after-ms": "250", "retry-after": "1"}) == 0.25
    assert parse_retry_after({}) is None
    assert parse_retry_after({"retry-after": "soon"}) is None
    now = datetime(2030, 1, 1, tzinfo=UTC)
    date = format_datetime(now + timedelta(seconds=30), usegmt=True)
    assert parse_retry_after({"retry-after": date}, now=now.timestamp()) == pytest.approx(30)


def test_one_line() -> None:
    assert one_line("a\n  b\tc") == "a b c"
    assert len(one_line("x" * 1000, 50)) == 50
