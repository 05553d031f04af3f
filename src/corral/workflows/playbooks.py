"""What the workflows' playbooks (deterministic "models" driving the agent loop) share:
how they read a shell command's exit status, name an LLM to hand over to, and keep
that LLM's `finish` from standing in for verification."""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import parse_qs

from corral.domain import Completion, ConfigError

EXIT_MARK = "corral-exit="
EXIT_TAIL = f'; echo "{EXIT_MARK}$?"'  # appended to a command: its status, in the output


def exit_code(output: str) -> int | None:
    """The status EXIT_TAIL printed last (None: the command never got that far)."""
    found = re.findall(rf"{EXIT_MARK}(\d+)", output)
    return int(found[-1]) if found else None


def then_spec(spec: str, prefix: str) -> str | None:
    """`PREFIX?then=openai/gpt-4o` -> the LLM's spec (None: no LLM)."""
    rest = spec[len(prefix) :] if spec.startswith(prefix) else None
    if rest is None or (rest and not rest.startswith("?")):
        raise ConfigError(f"unknown model spec {spec!r}: use {prefix}[?then=MODEL]")
    then = parse_qs(rest[1:]).get("then", [None])[0] if rest else None
    return then or None


def unless_finished(done: Completion, verify: Callable[[], Completion]) -> Completion:
    """The LLM's turn, or - when it says `finish` - our verification step instead, billed
    as the LLM's turn: its word is not verification."""
    if not any(c.name == "finish" for c in done.tool_calls):
        return done
    return verify().model_copy(
        update={"cost_usd": done.cost_usd, "usage": done.usage, "model": done.model}
    )
