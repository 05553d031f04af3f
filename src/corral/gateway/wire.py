"""The prompt as a provider reads it, encoded once per call.

The token estimate (for limits and budget reservations) and the request body are both
read from this one encoding: a fleet sends the whole history on every step, so encoding
it twice per call was a visible share of the gateway's CPU. Tool schemas do not change
between an agent's calls, so their JSON is kept per tool set.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

from corral.domain import Message, ToolSpec
from corral.models.openai_format import messages_to_openai, tools_to_openai

__all__ = ["CHARS_PER_TOKEN", "WirePrompt"]

# Conservative on purpose: providers count about 4 characters a token; 3 over-reserves
# a little, so a budget reservation is an upper bound of what the call can cost.
CHARS_PER_TOKEN = 3
PER_MESSAGE_OVERHEAD = 4
_TOOLS_CACHE_MAX = 256
# id() of each ToolSpec -> (the specs, kept alive so their ids stay theirs; their JSON)
_tools_json: dict[tuple[int, ...], tuple[tuple[ToolSpec, ...], str]] = {}


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def tools_json(tools: Sequence[ToolSpec]) -> str:
    """The OpenAI `tools` array as JSON, computed once per set of tool specs."""
    if not tools:
        return ""
    key = tuple(id(t) for t in tools)
    hit = _tools_json.get(key)
    if hit is not None:
        return hit[1]
    text = _dumps(tools_to_openai(tools))
    if len(_tools_json) >= _TOOLS_CACHE_MAX:
        _tools_json.clear()
    _tools_json[key] = (tuple(tools), text)
    return text


class WirePrompt:
    """Messages and tools in OpenAI chat-completions JSON, plus the token estimate."""

    __slots__ = ("messages_json", "n_messages", "tools_json")

    def __init__(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> None:
        self.messages_json = _dumps(messages_to_openai(messages))
        self.tools_json = tools_json(tools)
        self.n_messages = len(messages)

    @property
    def estimated_tokens(self) -> int:
        """An upper estimate of the prompt's tokens."""
        chars = len(self.messages_json) + len(self.tools_json)
        return math.ceil(chars / CHARS_PER_TOKEN) + PER_MESSAGE_OVERHEAD * self.n_messages

    def body(self, model: str, max_tokens: int) -> bytes:
        """The request body; the same bytes the estimate was made from."""
        parts = [f'{{"model":{_dumps(model)},"messages":{self.messages_json}']
        parts.append(f',"max_tokens":{int(max_tokens)}')
        if self.tools_json:
            parts.append(f',"tools":{self.tools_json}')
        parts.append("}")
        return "".join(parts).encode()
