"""ScriptedModel: file formats, validation errors that name turn/line/field, exhaustion."""

from __future__ import annotations

import asyncio
import json
import time
from pathlib import Path

import pytest

from corral.domain import ConfigError, Message, ScriptExhausted, Usage
from corral.models import ScriptedModel
from corral.ports import Model

YAML_SCRIPT = """\
- thought: look around            # optional
  tool_calls:
    - {tool: bash, args: {command: "ls"}}
- tool_calls:
    - {tool: editor, args: {command: str_replace, path: app.py, old: "x = 1", new: "x = 2"}}
- tool_calls:
    - {tool: finish, args: {message: "done"}}
"""

USER = [Message(role="user", content="go")]


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _config_error(path: Path) -> str:
    with pytest.raises(ConfigError) as info:
        ScriptedModel(path)
    message = str(info.value)
    assert "\n" not in message
    assert str(path) in message
    return message


async def test_yaml_script_plays_in_order_with_deterministic_ids(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.yaml", YAML_SCRIPT)
    model = ScriptedModel(path)
    assert isinstance(model, Model)
    assert model.name == f"scripted:{path}"
    assert model.context_window >= 100_000
    first = await model.complete(USER, [])
    assert first.content == "look around"
    assert [(c.id, c.name, c.arguments) for c in first.tool_calls] == [
        ("call_1_0", "bash", {"command": "ls"})
    ]
    second = await model.complete(USER, [])
    assert second.tool_calls[0].arguments == {
        "command": "str_replace",
        "path": "app.py",
        "old": "x = 1",
        "new": "x = 2",
    }
    assert second.tool_calls[0].id == "call_2_0"
    third = await model.complete(USER, [])
    assert third.tool_calls[0].name == "finish"
    assert model.remaining == 0
    assert len(model.seen) == 3


async def test_json_script_by_extension(tmp_path: Path) -> None:
    turns = [{"tool_calls": [{"tool": "bash", "args": {"command": "pwd"}}]}]
    model = ScriptedModel(_write(tmp_path, "s.json", json.dumps(turns)))
    completion = await model.complete(USER, [])
    assert completion.tool_calls[0].arguments == {"command": "pwd"}


async def test_unknown_extension_is_read_as_yaml(tmp_path: Path) -> None:
    model = ScriptedModel(_write(tmp_path, "script.txt", YAML_SCRIPT))
    assert len(model.turns) == 3


async def test_exhausted_script_raises_a_clear_error(tmp_path: Path) -> None:
    path = _write(tmp_path, "a.yaml", YAML_SCRIPT)
    model = ScriptedModel(path)
    for _ in range(3):
        await model.complete(USER, [])
    with pytest.raises(ScriptExhausted) as info:
        await model.complete(USER, [])
    assert str(info.value) == (
        f"scripted model {path} ran out of turns: asked for turn 4, the script has 3"
    )


async def test_usage_price_and_latency(tmp_path: Path) -> None:
    text = "- thought: t\n  usage: {input_tokens: 1000000, output_tokens: 500000}\n  latency: 0.2\n"
    model = ScriptedModel(
        _write(tmp_path, "u.yaml", text), price_in_per_mtok=2.0, price_out_per_mtok=10.0
    )
    started = time.monotonic()
    completion = await model.complete(USER, [])
    assert time.monotonic() - started >= 0.19
    assert completion.usage == Usage(input_tokens=1_000_000, output_tokens=500_000)
    assert completion.cost_usd == pytest.approx(7.0)
    assert completion.latency_s == 0.2


async def test_concurrent_callers_get_distinct_turns() -> None:
    model = ScriptedModel.from_turns(
        [{"thought": str(i), "latency": 0.01} for i in range(5)], name="inline"
    )
    results = await asyncio.gather(*(model.complete(USER, []) for _ in range(5)))
    assert sorted(r.content for r in results) == ["0", "1", "2", "3", "4"]
    assert model.name == "scripted:inline"


async def test_from_turns_validates_and_exhausts() -> None:
    model = ScriptedModel.from_turns([{"tool_calls": [{"tool": "finish"}]}])
    assert (await model.complete(USER, [])).tool_calls[0].arguments == {}
    with pytest.raises(ScriptExhausted, match="asked for turn 2, the script has 1"):
        await model.complete(USER, [])
    with pytest.raises(ConfigError, match=r"turn 1, field 'tool_calls\[0\]\.tool'"):
        ScriptedModel.from_turns([{"tool_calls": [{"args": {}}]}])


def test_missing_file(tmp_path: Path) -> None:
    message = _config_error(tmp_path / "nope.yaml")
    assert "does not exist" in message


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.yaml", "- thought: ok\n- tool_calls: [\n  {tool: bash\n")
    message = _config_error(path)
    assert "invalid YAML at line" in message


def test_invalid_json_names_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.json", '[\n {"thought": "a"},\n {"thought": }\n]')
    message = _config_error(path)
    assert "invalid JSON at line 3" in message


def test_unknown_field_names_turn_line_and_field(tmp_path: Path) -> None:
    text = "- thought: a\n- thought: b\n  tool_calls:\n    - {tool: bash, argz: {command: ls}}\n"
    message = _config_error(_write(tmp_path, "x.yaml", text))
    assert "turn 2 (line 4)" in message
    assert "field 'tool_calls[0].argz'" in message
    assert "Extra inputs are not permitted" in message


def test_wrong_type_names_the_field(tmp_path: Path) -> None:
    text = "- thought: a\n- thought: b\n- latency: soon\n"
    message = _config_error(_write(tmp_path, "x.yaml", text))
    assert "turn 3 (line 3)" in message
    assert "field 'latency'" in message


def test_negative_usage_is_rejected(tmp_path: Path) -> None:
    text = "- usage: {input_tokens: -1}\n"
    message = _config_error(_write(tmp_path, "x.yaml", text))
    assert "turn 1" in message and "field 'usage.input_tokens'" in message


def test_json_errors_also_get_line_numbers(tmp_path: Path) -> None:
    text = '[\n  {"thought": "a"},\n  {"tool_calls": [{"tool": "bash", "bogus": 1}]}\n]'
    message = _config_error(_write(tmp_path, "x.json", text))
    assert "turn 2 (line 3)" in message and "field 'tool_calls[0].bogus'" in message


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "is empty"),
        ("thought: a\n", "expected a list of turns, got dict"),
        ("[]\n", "has no turns"),
        ("- just a string\n", "turn 1"),
    ],
)
def test_bad_top_level_shapes(tmp_path: Path, text: str, fragment: str) -> None:
    assert fragment in _config_error(_write(tmp_path, "x.yaml", text))
