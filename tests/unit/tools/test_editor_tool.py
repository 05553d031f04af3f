"""The editor against a fake sandbox: every command, its errors, and path refusals."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.domain import ToolError
from corral.ports import Sandbox
from corral.tools import EditorTool

SRC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


@pytest.fixture
def ed() -> EditorTool:
    return EditorTool()


def write(sb: Sandbox, rel: str, text: str) -> Path:
    p = sb.workspace / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)
    return p


async def test_view_shows_line_numbers(sandbox: Sandbox, ed: EditorTool) -> None:
    write(sandbox, "m.py", SRC)
    out = (await ed.run(sandbox, {"command": "view", "path": "m.py"})).output
    assert "     1\tdef add(a, b):" in out
    assert "     6\t    return a - b" in out


async def test_view_range_and_to_end(sandbox: Sandbox, ed: EditorTool) -> None:
    write(sandbox, "m.py", SRC)
    out = (await ed.run(sandbox, {"command": "view", "path": "m.py", "view_range": [2, 3]})).output
    assert "     2\t    return a - b" in out
    assert "def add" not in out and "def sub" not in out
    out = (await ed.run(sandbox, {"command": "view", "path": "m.py", "view_range": [5, -1]})).output
    assert "     5\tdef sub(a, b):" in out and "     6\t" in out and "     4\t" not in out


@pytest.mark.parametrize("rng", [[0, 2], [7, 8], [3, 99], [4, 2]])
async def test_view_range_out_of_range(sandbox: Sandbox, ed: EditorTool, rng: list[int]) -> None:
    write(sandbox, "m.py", SRC)
    with pytest.raises(ToolError, match=r"out of range.*6 lines"):
        await ed.run(sandbox, {"command": "view", "path": "m.py", "view_range": rng})


async def test_long_file_view_is_capped_with_hint(sandbox: Sandbox, ed: EditorTool) -> None:
    write(sandbox, "big.txt", "".join(f"line {i}\n" for i in range(1, 2001)))
    out = (await ed.run(sandbox, {"command": "view", "path": "big.txt"})).output
    assert "line 400" in out and "line 401\n" not in out
    assert "view_range [401," in out


async def test_view_directory_two_levels_skips_git(sandbox: Sandbox, ed: EditorTool) -> None:
    write(sandbox, "pkg/sub/deep/x.py", "")
    write(sandbox, "pkg/a.py", "")
    write(sandbox, ".git/HEAD", "ref")
    write(sandbox, "node_modules/lib/index.js", "")
    out = (await ed.run(sandbox, {"command": "view", "path": "."})).output
    assert "pkg/\n" in out and "pkg/a.py" in out and "pkg/sub/" in out
    assert "deep/" not in out and "x.py" not in out
    assert not any(line.startswith(".git") for line in out.splitlines())
    assert "node_modules/ (not listed)" in out and "index.js" not in out


async def test_view_missing_and_binary(sandbox: Sandbox, ed: EditorTool) -> None:
    with pytest.raises(ToolError, match="does not exist"):
        await ed.run(sandbox, {"command": "view", "path": "nope.py"})
    (sandbox.workspace / "img.png").write_bytes(b"\x89PNG\x00\x01\x02")
    with pytest.raises(ToolError, match="binary"):
        await ed.run(sandbox, {"command": "view", "path": "img.png"})


async def test_create_makes_parents_and_undo_removes(sandbox: Sandbox, ed: EditorTool) -> None:
    out = (
        await ed.run(sandbox, {"command": "create", "path": "a/b/new.py", "content": "x = 1\n"})
    ).output
    assert "Created a/b/new.py" in out
    assert (sandbox.workspace / "a/b/new.py").read_text() == "x = 1\n"
    await ed.run(sandbox, {"command": "undo", "path": "a/b/new.py"})
    assert not (sandbox.workspace / "a/b/new.py").exists()


async def test_create_overwrites_and_undo_restores(sandbox: Sandbox, ed: EditorTool) -> None:
    p = write(sandbox, "m.py", SRC)
    out = (await ed.run(sandbox, {"command": "create", "path": "m.py", "content": "new\n"})).output
    assert "Overwrote" in out and p.read_text() == "new\n"
    await ed.run(sandbox, {"command": "undo", "path": "m.py"})
    assert p.read_text() == SRC


async def test_str_replace_exactly_once(sandbox: Sandbox, ed: EditorTool) -> None:
    p = write(sandbox, "m.py", SRC)
    out = (
        await ed.run(
            sandbox,
            {
                "command": "str_replace",
                "path": "m.py",
                "old": "def add(a, b):\n    return a - b",
                "new": "def add(a, b):\n    return a + b",
            },
        )
    ).output
    assert p.read_text() == SRC.replace("a - b", "a + b", 1)
    assert "     2\t    return a + b" in out  # snippet with line numbers


async def test_str_replace_several_names_count_and_lines(sandbox: Sandbox, ed: EditorTool) -> None:
    p = write(sandbox, "m.py", SRC)
    with pytest.raises(ToolError, match=r"matches 2 times .*lines 2, 6"):
        await ed.run(
            sandbox, {"command": "str_replace", "path": "m.py", "old": "return a - b", "new": "x"}
        )
    assert p.read_text() == SRC


async def test_str_replace_no_match_with_whitespace_hint(sandbox: Sandbox, ed: EditorTool) -> None:
    write(sandbox, "m.py", SRC)
    with pytest.raises(ToolError, match="no match") as info:
        await ed.run(
            sandbox,
            {
                "command": "str_replace",
                "path": "m.py",
                "old": "def  add(a, b):\n  return",
                "new": "x",
            },
        )
    assert "whitespace" in str(info.value) and "line 1" in str(info.value)
    with pytest.raises(ToolError, match="no match") as info:
        await ed.run(
            sandbox,
            {"command": "str_replace", "path": "m.py", "old": "nothing like it", "new": "x"},
        )
    assert "whitespace" not in str(info.value)


async def test_str_replace_keeps_crlf(sandbox: Sandbox, ed: EditorTool) -> None:
    p = sandbox.workspace / "w.txt"
    p.write_bytes(b"one\r\ntwo\r\nthree\r\n")
    await ed.run(
        sandbox, {"command": "str_replace", "path": "w.txt", "old": "one\ntwo", "new": "1\n2"}
    )
    assert p.read_bytes() == b"1\r\n2\r\nthree\r\n"


async def test_insert_top_middle_end_and_out_of_range(sandbox: Sandbox, ed: EditorTool) -> None:
    p = write(sandbox, "t.txt", "a\nb")
    await ed.run(sandbox, {"command": "insert", "path": "t.txt", "line": 0, "text": "top"})
    await ed.run(sandbox, {"command": "insert", "path": "t.txt", "line": 2, "text": "mid\n"})
    out = (
        await ed.run(sandbox, {"command": "insert", "path": "t.txt", "line": 4, "text": "end"})
    ).output
    assert p.read_text() == "top\na\nmid\nb\nend\n"
    assert "     5\tend" in out
    with pytest.raises(ToolError, match=r"out of range.*5 lines"):
        await ed.run(sandbox, {"command": "insert", "path": "t.txt", "line": 9, "text": "x"})


async def test_undo_steps_back_one_edit_at_a_time(sandbox: Sandbox, ed: EditorTool) -> None:
    p = write(sandbox, "u.txt", "v1\n")
    await ed.run(sandbox, {"command": "str_replace", "path": "u.txt", "old": "v1", "new": "v2"})
    await ed.run(sandbox, {"command": "str_replace", "path": "u.txt", "old": "v2", "new": "v3"})
    await ed.run(sandbox, {"command": "undo", "path": "u.txt"})
    assert p.read_text() == "v2\n"
    await ed.run(sandbox, {"command": "undo", "path": "./u.txt"})
    assert p.read_text() == "v1\n"
    with pytest.raises(ToolError, match=r"no edit of u\.txt to undo"):
        await ed.run(sandbox, {"command": "undo", "path": "u.txt"})


async def test_refuses_paths_outside_workspace(
    sandbox: Sandbox, ed: EditorTool, tmp_path: Path
) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("secret\n")
    with pytest.raises(ToolError, match="outside the workspace"):
        await ed.run(sandbox, {"command": "view", "path": "../outside.txt"})
    with pytest.raises(ToolError, match="outside the workspace"):
        await ed.run(sandbox, {"command": "view", "path": str(secret)})
    with pytest.raises(ToolError, match="outside the workspace"):
        await ed.run(sandbox, {"command": "create", "path": "../outside.txt", "content": "x"})
    os.symlink(secret, sandbox.workspace / "link.txt")
    with pytest.raises(ToolError, match="outside the workspace"):
        await ed.run(sandbox, {"command": "view", "path": "link.txt"})
    with pytest.raises(ToolError, match="outside the workspace"):
        await ed.run(sandbox, {"command": "create", "path": "link.txt", "content": "pwned"})
    os.symlink(tmp_path, sandbox.workspace / "up")
    with pytest.raises(ToolError, match="outside the workspace"):
        await ed.run(sandbox, {"command": "create", "path": "up/newdir/f.txt", "content": "pwned"})
    assert secret.read_text() == "secret\n"
    assert not (tmp_path / "newdir").exists()


async def test_absolute_path_inside_workspace_is_fine(sandbox: Sandbox, ed: EditorTool) -> None:
    write(sandbox, "m.py", SRC)
    out = (await ed.run(sandbox, {"command": "view", "path": f"{sandbox.workdir}/m.py"})).output
    assert "def add" in out


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        ({"command": "view"}, "missing required argument 'path'"),
        ({"command": "explode", "path": "m.py"}, "'command' must be one of 'view'"),
        ({"command": "create", "path": "m.py"}, "missing required argument 'content'"),
        (
            {"command": "str_replace", "path": "m.py", "old_str": "a", "new_str": "b"},
            "did you mean 'old'",
        ),
        ({"command": "view", "path": "m.py", "old": "x"}, "'old' is not used by view"),
        (
            {"command": "insert", "path": "m.py", "line": "top", "text": "x"},
            "'line' must be an integer",
        ),
        (
            {"command": "view", "path": "m.py", "view_range": [1]},
            "'view_range' must be a list of 2 integers",
        ),
    ],
)
async def test_bad_arguments_name_the_argument(
    sandbox: Sandbox, ed: EditorTool, args: dict[str, object], needle: str
) -> None:
    write(sandbox, "m.py", SRC)
    with pytest.raises(ToolError) as info:
        await ed.run(sandbox, args)
    assert needle in str(info.value)
    assert "\n" not in str(info.value)
