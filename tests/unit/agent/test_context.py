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
