"""The context's token estimate counts every message the model will be sent."""

from __future__ import annotations

from corral.agent.context import Context
from corral.domain import Completion, ToolCall


def test_a_long_tool_call_argument_counts_toward_the_window() -> None:
    ctx = Context(system="s", first_user="u", window=1000, keep_recent=1)
    before = ctx.tokens()
    big = "x" * 4000
    ctx.add_completion(
        1, Completion(tool_calls=(ToolCall(id="c", name="editor", arguments={"new": big}),))
    )
    assert ctx.tokens() >= before + 1000


def test_condensing_triggers_on_assistant_text_alone() -> None:
    ctx = Context(system="s", first_user="u", window=1000, keep_recent=1, condense_at=0.5)
    for seq in range(3):
        ctx.add_completion(seq * 2, Completion(content="thinking " * 200))
        ctx.add_tool_result(seq * 2 + 1, f"c{seq}", "bash", "ok")
    assert ctx.needs_condensing()


def test_the_system_prompt_and_task_are_the_same_messages_until_a_condensation() -> None:
    """The gateway encodes a message object once; the head must not be rebuilt per call."""
    ctx = Context(system="be brief", first_user="fix it", window=10_000, keep_recent=1)
    for i in range(3):
        call = ToolCall(id=f"c{i}", name="bash", arguments={"command": "ls"})
        ctx.add_completion(i * 2, Completion(tool_calls=(call,)))
        ctx.add_tool_result(i * 2 + 1, f"c{i}", "bash", "out")
    first, second = ctx.messages(), ctx.messages()
    assert all(a is b for a, b in zip(first[:2], second[:2], strict=True))
    ctx.condense()
    after = ctx.messages()
    assert "condensed" in after[2].content and after[2] not in first
    assert ctx.messages()[2] is after[2]
