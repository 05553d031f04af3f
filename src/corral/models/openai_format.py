"""Our domain messages <-> the OpenAI chat-completions wire format.

Every adapter speaks this format (LiteLLM returns OpenAI-shaped objects, vLLM/Ollama
speak it natively) and so does the fake provider, so the conversion lives in one place.
Parsing is forgiving where the *model* erred (bad tool-call arguments become a ToolCall
with `parse_error`, for the agent to show the model) and strict where the *provider*
erred (a body without choices is a ProviderError).
"""

from __future__ import annotations

import email.utils
import json
import math
import time
from collections.abc import Mapping, Sequence
from typing import Any

from corral.domain import Completion, Message, ProviderError, ToolCall, ToolSpec, Usage

__all__ = [
    "completion_to_openai",
    "message_from_openai",
    "messages_from_openai",
    "messages_to_openai",
    "one_line",
    "parse_response",
    "parse_retry_after",
    "parse_tool_call",
    "tools_to_openai",
]


def one_line(text: str, limit: int = 300) -> str:
    """Collapse whitespace so an error message stays on one line, and cap its length."""
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."


# --- requests -------------------------------------------------------------------------


def _tool_call_to_openai(call: ToolCall) -> dict[str, Any]:
    return {
        "id": call.id,
        "type": "function",
        "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
    }


def message_to_openai(message: Message) -> dict[str, Any]:
    """One domain Message as an OpenAI chat message."""
    out: dict[str, Any] = {"role": message.role}
    if message.role == "assistant" and message.tool_calls:
        # OpenAI wants null content (not "") next to tool calls when there is no text.
        out["content"] = message.content or None
        out["tool_calls"] = [_tool_call_to_openai(c) for c in message.tool_calls]
    else:
        out["content"] = message.content
    if message.role == "tool":
        out["tool_call_id"] = message.tool_call_id or ""
    if message.name is not None and message.role != "tool":
        out["name"] = message.name
    return out


def messages_to_openai(messages: Sequence[Message]) -> list[dict[str, Any]]:
    return [message_to_openai(m) for m in messages]


def tools_to_openai(tools: Sequence[ToolSpec]) -> list[dict[str, Any]]:
    return [
        {
            "type": "function",
            "function": {
                "name": t.name,
                "description": t.description,
                "parameters": t.parameters,
            },
        }
        for t in tools
    ]


def _text_of(content: Any) -> str:
    """Message content may be a string, null, or a list of typed parts; keep the text."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for part in content:
            if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
            elif isinstance(part, str):
                parts.append(part)
        return "".join(parts)
    return str(content)


def messages_from_openai(raw: Sequence[Mapping[str, Any]]) -> list[Message]:
    """OpenAI chat messages (as a server receives them) back into domain Messages.

    Raises ValueError naming the message index when a message cannot be understood.
    """
    return [message_from_openai(m, i) for i, m in enumerate(raw)]


def message_from_openai(m: Any, i: int) -> Message:
    """One OpenAI chat message, the `i`th of its request (named in a ValueError)."""
    if not isinstance(m, Mapping):
        raise ValueError(f"messages[{i}] is not an object")
    role = m.get("role")
    if role == "developer":
        role = "system"
    if role not in ("system", "user", "assistant", "tool"):
        raise ValueError(f"messages[{i}].role {role!r} is not one we understand")
    calls = m.get("tool_calls") or []
    if not isinstance(calls, list):
        raise ValueError(f"messages[{i}].tool_calls is not a list")
    name = m.get("name")
    tool_call_id = m.get("tool_call_id")
    return Message(
        role=role,
        content=_text_of(m.get("content")),
        tool_calls=tuple(parse_tool_call(c, j) for j, c in enumerate(calls)),
        tool_call_id=str(tool_call_id) if tool_call_id is not None else None,
        name=str(name) if name is not None and role != "tool" else None,
    )


# --- responses ------------------------------------------------------------------------


def parse_tool_call(raw: Any, index: int = 0) -> ToolCall:
    """One tool call from the wire. Never raises: model mistakes become `parse_error`."""
    if not isinstance(raw, Mapping):
        return ToolCall(id=f"call_{index}", name="", parse_error="tool call is not an object")
    call_id = str(raw.get("id") or f"call_{index}")
    fn = raw.get("function")
    if not isinstance(fn, Mapping):
        return ToolCall(id=call_id, name="", parse_error="tool call has no function")
    name = fn.get("name")
    if not isinstance(name, str) or not name:
        return ToolCall(id=call_id, name="", parse_error="tool call has no function name")
    args = fn.get("arguments")
    if args is None or (isinstance(args, str) and not args.strip()):
        return ToolCall(id=call_id, name=name)  # a tool with no arguments
    if isinstance(args, Mapping):
        return ToolCall(id=call_id, name=name, arguments=dict(args))
    if not isinstance(args, str):
        return ToolCall(
            id=call_id,
            name=name,
            parse_error=f"arguments must be a JSON object, got {type(args).__name__}",
        )
    try:
        parsed = json.loads(args)
    except ValueError as exc:
        return ToolCall(
            id=call_id,
            name=name,
            parse_error=f"arguments are not valid JSON ({exc}): {one_line(args, 200)}",
        )
    if not isinstance(parsed, dict):
        kind = "array" if isinstance(parsed, list) else type(parsed).__name__
        return ToolCall(
            id=call_id, name=name, parse_error=f"arguments must be a JSON object, got {kind}"
        )
    return ToolCall(id=call_id, name=name, arguments=parsed)


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def parse_usage(raw: Any) -> Usage:
    if not isinstance(raw, Mapping):
        return Usage()
    return Usage(
        input_tokens=_int(raw.get("prompt_tokens")),
        output_tokens=_int(raw.get("completion_tokens")),
    )


def parse_response(body: Any, *, source: str = "provider") -> Completion:
    """A chat-completions response body → Completion (without cost and latency).

    A body that is not a completion raises ProviderError with a one-line message that
    starts with `source`, so the caller can tell which model answered badly.
    """
    if not isinstance(body, Mapping):
        raise ProviderError(f"{source}: malformed response: body is not a JSON object")
    error = body.get("error")
    if error and "choices" not in body:
        msg = error.get("message") if isinstance(error, Mapping) else error
        raise ProviderError(f"{source}: provider returned an error: {one_line(str(msg))}")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise ProviderError(f"{source}: malformed response: no choices")
    choice = choices[0]
    message = choice.get("message") if isinstance(choice, Mapping) else None
    if not isinstance(message, Mapping):
        raise ProviderError(f"{source}: malformed response: choices[0] has no message")
    raw_calls = message.get("tool_calls") or []
    if not isinstance(raw_calls, list):
        raise ProviderError(f"{source}: malformed response: tool_calls is not a list")
    model = body.get("model")
    return Completion(
        content=_text_of(message.get("content")),
        tool_calls=tuple(parse_tool_call(c, i) for i, c in enumerate(raw_calls)),
        usage=parse_usage(body.get("usage")),
        model=model if isinstance(model, str) else "",
    )


def completion_to_openai(
    completion: Completion, *, model: str, response_id: str, created: int | None = None
) -> dict[str, Any]:
    """A Completion as a chat-completions response body (what a server sends back)."""
    message: dict[str, Any] = {"role": "assistant", "content": completion.content or None}
    if completion.tool_calls:
        message["tool_calls"] = [_tool_call_to_openai(c) for c in completion.tool_calls]
    usage = completion.usage
    return {
        "id": response_id,
        "object": "chat.completion",
        "created": int(time.time()) if created is None else created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": "tool_calls" if completion.tool_calls else "stop",
            }
        ],
        "usage": {
            "prompt_tokens": usage.input_tokens,
            "completion_tokens": usage.output_tokens,
            "total_tokens": usage.input_tokens + usage.output_tokens,
        },
    }


def parse_retry_after(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait from `retry-after-ms` or `Retry-After` (seconds or an HTTP date).

    `headers` must be case-insensitive (httpx.Headers) or already lower-cased.
    """
    ms = headers.get("retry-after-ms")
    if ms is not None:
        try:
            value = float(ms) / 1000.0
            if math.isfinite(value) and value >= 0:
                return value
        except ValueError:
            pass
    raw = headers.get("retry-after")
    if raw is None:
        return None
    try:
        value = float(raw)
        return value if math.isfinite(value) and value >= 0 else None
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(raw)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))
