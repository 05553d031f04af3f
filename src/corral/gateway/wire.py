"""The prompt as a provider reads it, encoded once per call.

The token estimate (for limits and budget reservations) and the request body are both
read from this one encoding: a fleet sends the whole history on every step, so encoding
it twice per call was a visible share of the gateway's CPU. Nor does an agent's history
change: each call adds a message or two to the same message objects, so each message's
JSON is kept for as long as the message lives, and so is each tool set's; a call encodes
only what is new.
"""

from __future__ import annotations

import functools
import json
import math
import weakref
from collections.abc import Sequence
from typing import Any, Generic, TypeVar

from corral.domain import Message, ToolSpec
from corral.models.openai_format import message_to_openai, tools_to_openai

__all__ = ["CHARS_PER_TOKEN", "WirePrompt"]

# Conservative on purpose: providers count about 4 characters a token; 3 over-reserves
# a little, so a budget reservation is an upper bound of what the call can cost.
CHARS_PER_TOKEN = 3
PER_MESSAGE_OVERHEAD = 4


K = TypeVar("K", int, tuple[int, ...])


class _Encodings(Generic[K]):
    """JSON of live objects (or of tuples of them), by identity.

    Frozen domain objects are unhashable (a tool call's arguments are a dict), so the key
    is their id(); each entry holds weak references and goes when one of its objects is
    freed, so an id reused by a later object never finds the old JSON, nothing is kept
    alive, and no size bound is needed. Readers check `refs` against their objects.
    """

    def __init__(self) -> None:
        self.map: dict[K, tuple[tuple[weakref.ref[Any], ...], str]] = {}

    def put(self, key: K, objs: tuple[Any, ...], text: str) -> str:
        try:
            drop = functools.partial(self._drop, key)
            refs = tuple(weakref.ref(o, drop) for o in objs)
        except TypeError:  # cannot be weakly referenced: not cached
            return text
        self.map[key] = (refs, text)
        return text

    def _drop(self, key: K, dead: weakref.ref[Any]) -> None:
        hit = self.map.get(key)
        if hit is not None and any(r is dead for r in hit[0]):
            self.map.pop(key, None)

    def __len__(self) -> int:
        return len(self.map)


_messages: _Encodings[int] = _Encodings()
_tool_sets: _Encodings[tuple[int, ...]] = _Encodings()


def _dumps(value: object) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def message_json(message: Message) -> str:
    """One message in the OpenAI format as JSON, computed once per message object (an
    agent's context hands the same objects to every call)."""
    hit = _messages.map.get(id(message))  # the hot path: one lookup per message per call
    if hit is not None and hit[0][0]() is message:
        return hit[1]
    return _messages.put(id(message), (message,), _dumps(message_to_openai(message)))


def tools_json(tools: Sequence[ToolSpec]) -> str:
    """The OpenAI `tools` array as JSON, computed once per set of tool specs."""
    if not tools:
        return ""
    key = tuple(map(id, tools))
    hit = _tool_sets.map.get(key)
    if hit is not None and all(r() is t for r, t in zip(hit[0], tools, strict=True)):
        return hit[1]
    return _tool_sets.put(key, tuple(tools), _dumps(tools_to_openai(tools)))


class WirePrompt:
    """Messages and tools in OpenAI chat-completions JSON, plus the token estimate."""

    __slots__ = ("messages_json", "n_messages", "tools_json")

    def __init__(self, messages: Sequence[Message], tools: Sequence[ToolSpec]) -> None:
        # The same bytes as dumping the whole list: compact separators, one item each.
        self.messages_json = "[" + ",".join(map(message_json, messages)) + "]"
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
