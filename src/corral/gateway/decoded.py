"""Messages and tool sets a client sends, decoded once per content (the face's cache).

Why: an agent sends its whole history on every call, and the face decoded every message
into a domain `Message` and encoded it again for the provider each time: about half of a
gateway service's CPU. The same content now yields the same objects, so only new
messages are decoded, and the wire's encoding (kept per object, `gateway.wire`) is
reused. A message's key is its JSON (C-fast to make), dropped least recently used first
past a byte budget; the few tool sets in use are found by comparing them.
"""

from __future__ import annotations

import json
from collections import OrderedDict
from collections.abc import Sequence
from typing import Any

from corral.domain import Message, ToolSpec
from corral.models.openai_format import message_from_openai

__all__ = ["Decoded", "tool_from_openai"]

_key = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, sort_keys=True).encode
# Tool sets are few and large: found by comparing (C-fast) with these recent ones.
_TOOL_SETS = 8


def tool_from_openai(item: Any, i: int) -> ToolSpec:
    fn = item.get("function") if isinstance(item, dict) else None
    if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
        raise ValueError(f"tools[{i}] is not a function tool")
    params = fn.get("parameters")
    return ToolSpec(
        name=fn["name"],
        description=str(fn.get("description") or ""),
        parameters=params if isinstance(params, dict) else {"type": "object"},
    )


class Decoded:
    """Content → decoded object, least recently used dropped past `max_bytes` of keys."""

    def __init__(self, max_bytes: int = 32 << 20) -> None:
        self.max_bytes = max_bytes
        self._items: OrderedDict[str, Message] = OrderedDict()
        self._bytes = 0
        self._tool_sets: list[tuple[list[Any], tuple[ToolSpec, ...]]] = []

    def messages(self, raw: Sequence[Any]) -> list[Message]:
        """Raises ValueError naming the message index when one cannot be understood."""
        return [self._message(m, i) for i, m in enumerate(raw)]

    def tools(self, raw: Any) -> list[ToolSpec]:
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise ValueError("'tools' must be a list")
        for i, (seen, made) in enumerate(self._tool_sets):
            if seen == raw:
                if i:  # most recent first
                    self._tool_sets.insert(0, self._tool_sets.pop(i))
                return list(made)
        made = tuple(map(tool_from_openai, raw, range(len(raw))))
        self._tool_sets = [(raw, made), *self._tool_sets[: _TOOL_SETS - 1]]
        return list(made)

    def _message(self, item: Any, i: int) -> Message:
        try:
            key = _key(item)
        except (TypeError, ValueError):  # not plain JSON data: decode, do not keep
            return message_from_openai(item, i)
        items = self._items
        hit = items.get(key)
        if hit is not None:
            items.move_to_end(key)
            return hit
        made = message_from_openai(item, i)
        items[key] = made
        self._bytes += len(key)
        while self._bytes > self.max_bytes and items:
            old, _ = items.popitem(last=False)
            self._bytes -= len(old)
        return made

    def __len__(self) -> int:
        return len(self._items)
