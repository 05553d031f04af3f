"""ReplayModel serves recorded completions in order, then says it ran out."""

from __future__ import annotations

import pytest

from corral.domain import Completion, Message, ScriptExhausted, ToolCall
from corral.models import ReplayModel
from corral.ports import Model


async def test_replays_in_order_then_runs_out() -> None:
    recorded = [
        Completion(content="a", tool_calls=(ToolCall(id="c1", name="bash", arguments={}),)),
        Completion(content="b", cost_usd=0.5),
    ]
    model = ReplayModel(recorded, name="openai/gpt-4o")
    assert isinstance(model, Model)
    user = [Message(role="user", content="x")]
    assert await model.complete(user, []) == recorded[0]
    assert await model.complete(user, []) == recorded[1]
    assert model.remaining == 0
    with pytest.raises(ScriptExhausted) as info:
        await model.complete(user, [])
    assert str(info.value) == (
        "replay model openai/gpt-4o ran out of recorded completions: asked for turn 3, "
        "the recording has 2"
    )
