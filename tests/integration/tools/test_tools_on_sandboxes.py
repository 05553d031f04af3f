"""The key tool scenarios on the real sandbox backends (local and bwrap)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from corral.domain import ToolCall, ToolResult
from corral.ports import Sandbox
from corral.tools import Toolbox

SRC = "def add(a, b):\n    return a - b\n\n\ndef sub(a, b):\n    return a - b\n"


def make_repo(root: Path) -> Path:
    root.mkdir()
    (root / "calc.py").write_text(SRC)
    (root / "pkg" / "sub").mkdir(parents=True)
    (root / "pkg" / "mod.py").write_text("NEEDLE = 1\n")
    (root / "pkg" / "sub" / "deep.py").write_text("NEEDLE = 2\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@t", "-C", str(root)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "."], check=True)
    subprocess.run([*git, "commit", "-qm", "init"], check=True)
    return root


@pytest.fixture(params=["local", pytest.param("bwrap", marks=pytest.mark.bwrap)])
async def sandbox(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Sandbox]:
    from corral.sandbox import BwrapSandbox, LocalSandbox

    repo = make_repo(tmp_path / "repo")
    if request.param == "bwrap":
        sb: Sandbox = BwrapSandbox(repo)
    else:
        sb = LocalSandbox(repo)
    await sb.start()
    try:
        yield sb
    finally:
        await sb.close()


@pytest.fixture
def box() -> Toolbox:
    return Toolbox.default(bash_timeout=30)


async def use(box: Toolbox, sb: Sandbox, tool: str, **args: Any) -> ToolResult:
    return await box.run(sb, ToolCall(id="c", name=tool, arguments=args))


async def test_str_replace_once_zero_several(sandbox: Sandbox, box: Toolbox) -> None:
    res = await use(
        box, sandbox, "editor", command="str_replace", path="calc.py", old="x = 0", new="y"
    )
    assert res.is_error and "no match" in res.output
    res = await use(
        box, sandbox, "editor", command="str_replace", path="calc.py", old="return a - b", new="y"
    )
    assert res.is_error and "matches 2 times" in res.output and "lines 2, 6" in res.output
    res = await use(
        box,
        sandbox,
        "editor",
        command="str_replace",
        path="calc.py",
        old="def add(a, b):\n    return a - b",
        new="def add(a, b):\n    return a + b",
    )
    assert not res.is_error and "     2\t    return a + b" in res.output
    assert (sandbox.workspace / "calc.py").read_text() == SRC.replace("a - b", "a + b", 1)
    out = await use(box, sandbox, "bash", command="python3 -c 'import calc; print(calc.add(2, 3))'")
    assert out.output.strip() == "5"


async def test_insert_undo_create_view(sandbox: Sandbox, box: Toolbox) -> None:
    res = await use(
        box, sandbox, "editor", command="insert", path="calc.py", line=0, text="import os"
    )
    assert not res.is_error and "     1\timport os" in res.output
    res = await use(box, sandbox, "editor", command="undo", path="calc.py")
    assert not res.is_error and (sandbox.workspace / "calc.py").read_text() == SRC
    res = await use(
        box, sandbox, "editor", command="create", path="new/dir/f.txt", content="a\nb\nc\n"
    )
    assert not res.is_error and (sandbox.workspace / "new/dir/f.txt").read_text() == "a\nb\nc\n"
    res = await use(
        box, sandbox, "editor", command="view", path="new/dir/f.txt", view_range=[2, -1]
    )
    assert "     2\tb\n     3\tc" in res.output and "     1\t" not in res.output
    res = await use(box, sandbox, "editor", command="view", path="calc.py", view_range=[5, 9])
    assert res.is_error and "out of range" in res.output
    res = await use(box, sandbox, "editor", command="view", path=".")
    assert "pkg/mod.py" in res.output and "pkg/sub/" in res.output
    assert "deep.py" not in res.output and "\n.git" not in res.output


async def test_editor_refuses_paths_out_of_workspace(
    sandbox: Sandbox, box: Toolbox, tmp_path: Path
) -> None:
    secret = tmp_path / "outside.txt"
    secret.write_text("secret\n")
    os.symlink(secret, sandbox.workspace / "link.txt")
    attempts = [
        {"command": "view", "path": "../outside.txt"},
        {"command": "view", "path": str(secret)},
        {"command": "view", "path": "/etc/passwd"},
        {"command": "view", "path": "link.txt"},
        {"command": "create", "path": "link.txt", "content": "pwned"},
        {"command": "create", "path": "../outside.txt", "content": "pwned"},
    ]
    for args in attempts:
        res = await use(box, sandbox, "editor", **args)
        assert res.is_error and "outside the workspace" in res.output, (args, res.output)
        assert "secret" not in res.output.replace("outside.txt", "")
    assert secret.read_text() == "secret\n"


async def test_search(sandbox: Sandbox, box: Toolbox) -> None:
    res = await use(box, sandbox, "search", pattern="NEEDLE = [0-9]")
    assert "pkg/mod.py:1:NEEDLE = 1" in res.output and "pkg/sub/deep.py:1:NEEDLE = 2" in res.output
    res = await use(box, sandbox, "search", pattern="NEEDLE", path="pkg/sub")
    assert "deep.py" in res.output and "mod.py" not in res.output
    res = await use(box, sandbox, "search", pattern="nothing_here_at_all")
    assert not res.is_error and "No matches" in res.output
    res = await use(box, sandbox, "search", pattern="(unclosed")
    assert res.is_error


async def test_search_does_not_move_the_shell(sandbox: Sandbox, box: Toolbox) -> None:
    await use(box, sandbox, "bash", command="cd pkg")
    await use(box, sandbox, "search", pattern="NEEDLE")
    res = await use(box, sandbox, "bash", command="pwd")
    assert res.output.strip().endswith("/pkg")


async def test_bash_exit_code_and_timeout(sandbox: Sandbox, box: Toolbox) -> None:
    res = await use(box, sandbox, "bash", command="ls calc.py; false")
    assert res.exit_code == 1 and "calc.py" in res.output and "[exit code 1]" in res.output
    res = await use(box, sandbox, "bash", command="sleep 30", timeout=1)
    assert res.timed_out and "timed out after 1 s and was killed" in res.output
    res = await use(box, sandbox, "bash", command="echo alive")
    assert res.exit_code == 0 and "alive" in res.output


async def test_bad_calls_and_finish(sandbox: Sandbox, box: Toolbox) -> None:
    res = await use(box, sandbox, "rm_everything", path="/")
    assert res.is_error and "unknown tool" in res.output
    res = await use(box, sandbox, "editor", command="view", path="calc.py", color=True)
    assert res.is_error and "unknown argument 'color'" in res.output
    res = await use(box, sandbox, "finish", message="fixed add")
    assert res.finish_message == "fixed add"
