"""search, bash, think and finish against a fake sandbox."""

from __future__ import annotations

import pytest

from corral.domain import ToolError
from corral.ports import Sandbox
from corral.tools import BashTool, FinishTool, SearchTool, ThinkTool


def write(sb: Sandbox, rel: str, text: str) -> None:
    p = sb.workspace / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


async def test_search_hit_shows_file_and_line(sandbox: Sandbox) -> None:
    write(sandbox, "src/app.py", "import os\n\ndef handler(event):\n    return event\n")
    write(sandbox, ".git/config", "def handler(\n")
    res = await SearchTool().run(sandbox, {"pattern": r"def handler\("})
    assert not res.is_error and res.exit_code == 0
    assert "src/app.py:3:def handler(event):" in res.output
    assert ".git" not in res.output and "1 match " in res.output


async def test_search_no_hit_is_not_an_error(sandbox: Sandbox) -> None:
    write(sandbox, "a.txt", "hello\n")
    res = await SearchTool().run(sandbox, {"pattern": "goodbye"})
    assert not res.is_error
    assert "No matches for 'goodbye'" in res.output


async def test_search_bad_regex_is_an_error(sandbox: Sandbox) -> None:
    write(sandbox, "a.txt", "hello\n")
    with pytest.raises(ToolError, match="bad regex"):
        await SearchTool().run(sandbox, {"pattern": "foo(bar"})


async def test_search_path_argument_limits_scope(sandbox: Sandbox) -> None:
    write(sandbox, "src/a.py", "needle = 1\n")
    write(sandbox, "tests/t.py", "needle = 2\n")
    out = (await SearchTool().run(sandbox, {"pattern": "needle", "path": "tests"})).output
    assert "tests/t.py:1:needle = 2" in out and "src/a.py" not in out
    one = (await SearchTool().run(sandbox, {"pattern": "needle", "path": "src/a.py"})).output
    assert "src/a.py:1:needle = 1" in one
    with pytest.raises(ToolError, match="bad regex or path"):
        await SearchTool().run(sandbox, {"pattern": "needle", "path": "nowhere"})
    with pytest.raises(ToolError, match="outside the workspace"):
        await SearchTool().run(sandbox, {"pattern": "root", "path": "../"})
    with pytest.raises(ToolError, match="outside the workspace"):
        await SearchTool().run(sandbox, {"pattern": "root", "path": "/etc"})


async def test_search_quotes_the_pattern(sandbox: Sandbox) -> None:
    write(sandbox, "a.txt", "it's $HOME; `x`\n")
    out = (await SearchTool().run(sandbox, {"pattern": "it's \\$HOME; `x`"})).output
    assert "a.txt:1:it's $HOME; `x`" in out


async def test_search_caps_matches_and_counts_the_rest(sandbox: Sandbox) -> None:
    write(sandbox, "many.txt", "".join(f"hit {i}\n" for i in range(250)))
    res = await SearchTool().run(sandbox, {"pattern": "^hit"})
    assert res.output.count("many.txt:") == 100
    assert "150 more matches not shown (250 in all)" in res.output and res.truncated


async def test_bash_output_and_exit_code(sandbox: Sandbox) -> None:
    res = await BashTool().run(sandbox, {"command": "echo hi; exit 3"})
    assert res.exit_code == 3 and "hi" in res.output and "[exit code 3]" in res.output
    ok = await BashTool().run(sandbox, {"command": "true"})
    assert ok.exit_code == 0 and ok.output == "(no output)"


async def test_bash_timeout_is_reported(sandbox: Sandbox) -> None:
    res = await BashTool(default_timeout=30).run(sandbox, {"command": "sleep 20", "timeout": 0.5})
    assert res.timed_out
    assert "command timed out after 0.5 s and was killed" in res.output


async def test_bash_truncation_is_reported(sandbox: Sandbox) -> None:
    res = await BashTool().run(sandbox, {"command": "seq 1 100000"})
    assert res.truncated and "[output truncated" in res.output


async def test_bash_bad_arguments(sandbox: Sandbox) -> None:
    with pytest.raises(ToolError, match="missing required argument 'command'"):
        await BashTool().run(sandbox, {})
    with pytest.raises(ToolError, match="'timeout' must be a number"):
        await BashTool().run(sandbox, {"command": "ls", "timeout": "soon"})
    with pytest.raises(ToolError, match="did you mean 'command'"):
        await BashTool().run(sandbox, {"cmd": "ls"})


async def test_think_touches_nothing(sandbox: Sandbox) -> None:
    res = await ThinkTool().run(sandbox, {"thought": "rm -rf / would be bad"})
    assert res.output == "Thought recorded." and list(sandbox.workspace.iterdir()) == []


async def test_finish_sets_finish_message(sandbox: Sandbox) -> None:
    res = await FinishTool().run(sandbox, {"message": "fixed add()"})
    assert res.finish_message == "fixed add()" and not res.is_error
    with pytest.raises(ToolError, match="'message'"):
        await FinishTool().run(sandbox, {"message": "  "})
