"""The model's view of an attempt: a projection of the event log that fits the window.

Condensation is deterministic (no extra model call): older turns are replaced by a digest
of what was done and what came back, so a scripted or replayed run condenses identically.
The event log itself keeps everything.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from corral.domain import Completion, Message, ToolSpec


def estimate_tokens(text: str) -> int:
    """Cheap, provider-neutral estimate (~4 characters a token)."""
    return len(text) // 4 + 1


def _message_tokens(m: Message) -> int:
    n = estimate_tokens(m.content) + 4
    for c in m.tool_calls:
        n += estimate_tokens(c.name + json.dumps(c.arguments, default=str))
    return n


@dataclass
class Turn:
    """One model turn and what followed it: assistant message, tool results, nudges."""

    start_seq: int
    messages: list[Message] = field(default_factory=list)
    tokens: int = 0

    def add(self, message: Message) -> None:
        self.messages.append(message)
        self.tokens += _message_tokens(message)


@dataclass
class Context:
    system: str
    first_user: str
    window: int
    condense_at: float = 0.75
    keep_recent: int = 6
    tools: tuple[ToolSpec, ...] = ()
    summary: str = ""
    turns: list[Turn] = field(default_factory=list)
    _fixed_tokens: int | None = None
    # The system prompt, the task and the summary as messages, made again only when the
    # summary changes: the same objects on every call let the gateway encode them once.
    _head: tuple[str, list[Message]] | None = None

    def add_completion(self, seq: int, completion: Completion) -> None:
        msg = Message(
            role="assistant", content=completion.content, tool_calls=completion.tool_calls
        )
        turn = Turn(start_seq=seq)
        turn.add(msg)  # counted too: a long tool call argument fills the window as well
        self.turns.append(turn)

    def add_tool_result(self, seq: int, call_id: str, tool: str, output: str) -> None:
        self._current(seq).add(
            Message(role="tool", content=output, tool_call_id=call_id, name=tool)
        )

    def add_user(self, seq: int, text: str) -> None:
        self._current(seq).add(Message(role="user", content=text))

    def messages(self) -> list[Message]:
        if self._head is None or self._head[0] != self.summary:
            head = [
                Message(role="system", content=self.system),
                Message(role="user", content=self.first_user),
            ]
            if self.summary:
                head.append(
                    Message(
                        role="user",
                        content="Earlier steps were condensed to save space (the full log is "
                        "kept):\n" + self.summary,
                    )
                )
            self._head = (self.summary, head)
        out = list(self._head[1])
        for t in self.turns:
            out.extend(t.messages)
        return out

    def tokens(self) -> int:
        """Estimated prompt size; per-turn counts are kept as turns grow, so this is cheap."""
        if self._fixed_tokens is None:
            self._fixed_tokens = sum(
                estimate_tokens(json.dumps(t.parameters)) + 10 for t in self.tools
            ) + sum(_message_tokens(m) for m in self.messages()[:2])
        summary = estimate_tokens(self.summary) + 20 if self.summary else 0
        return self._fixed_tokens + summary + sum(t.tokens for t in self.turns)

    def needs_condensing(self) -> bool:
        return len(self.turns) > self.keep_recent and self.tokens() > self.condense_at * self.window

    def condense(self) -> tuple[str, int]:
        """Fold all but the recent turns into the summary; returns (summary, through_seq)."""
        old, self.turns = self.turns[: -self.keep_recent], self.turns[-self.keep_recent :]
        digest = "\n".join(line for t in old for line in digest_turn(t))
        self.summary = (self.summary + "\n" + digest).strip()
        through = self.turns[0].start_seq - 1
        return self.summary, through

    def apply_condensed(self, summary: str, through_seq: int) -> None:
        """Rebuild a recorded condensation when projecting a log (resume, inspection)."""
        self.summary = summary
        self.turns = [t for t in self.turns if t.start_seq > through_seq]

    def _current(self, seq: int) -> Turn:
        if not self.turns:
            self.turns.append(Turn(start_seq=seq))
        return self.turns[-1]


def _first_line(text: str, limit: int = 160) -> str:
    line = text.strip().splitlines()[0] if text.strip() else "(no output)"
    return line[:limit]


def digest_turn(turn: Turn) -> list[str]:
    """One line per action: what was called and the first line of what came back."""
    results = {m.tool_call_id: m for m in turn.messages if m.role == "tool"}
    lines: list[str] = []
    for m in turn.messages:
        if m.role == "assistant":
            if m.content.strip():
                lines.append(f"- thought: {_first_line(m.content, 120)}")
            for c in m.tool_calls:
                args = json.dumps(c.arguments, default=str)[:120]
                res = results.get(c.id)
                got = _first_line(res.content) if res else "(no result)"
                lines.append(f"- {c.name} {args} -> {got}")
        elif m.role == "user":
            lines.append(f"- note: {_first_line(m.content, 120)}")
    return lines
