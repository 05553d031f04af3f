"""Agent paths never lead the host outside the workspace."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from corral.domain import SandboxError
from corral.sandbox.paths import read_bytes, resolve, write_bytes

WORKDIR = "/workspace"


@pytest.fixture
def ws(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "a.py").write_text("x = 1\n")
    return root


def test_relative_and_absolute_under_workdir(ws: Path) -> None:
    assert resolve(ws, WORKDIR, "pkg/a.py") == ws.resolve() / "pkg" / "a.py"
    assert resolve(ws, WORKDIR, "/workspace/pkg/a.py") == ws.resolve() / "pkg" / "a.py"
    assert read_bytes(ws, WORKDIR, "/workspace/pkg/a.py", max_bytes=100) == b"x = 1\n"


@pytest.mark.parametrize("path", ["../x", "pkg/../../x", "/etc/passwd", "/workspace/../etc"])
def test_escapes_are_refused(ws: Path, path: str) -> None:
    with pytest.raises(SandboxError, match="outside the workspace"):
        resolve(ws, WORKDIR, path)


def test_symlink_to_etc_is_refused_for_read_and_write(ws: Path) -> None:
    os.symlink("/etc", ws / "etc")
    os.symlink("/etc/passwd", ws / "passwd")
    before = Path("/etc/passwd").read_bytes()
    for path in ("etc/passwd", "passwd"):
        with pytest.raises(SandboxError, match=path):
            read_bytes(ws, WORKDIR, path, max_bytes=10**6)
        with pytest.raises(SandboxError, match="outside the workspace"):
            write_bytes(ws, WORKDIR, path, b"pwned", owner=None)
    assert Path("/etc/passwd").read_bytes() == before


def test_symlink_inside_workspace_is_followed(ws: Path) -> None:
    os.symlink("pkg/a.py", ws / "link.py")
    assert read_bytes(ws, WORKDIR, "link.py", max_bytes=100) == b"x = 1\n"


def test_write_creates_parents_inside(ws: Path) -> None:
    write_bytes(ws, WORKDIR, "new/dir/b.txt", b"hi", owner=None)
    assert (ws / "new" / "dir" / "b.txt").read_bytes() == b"hi"


def test_huge_file_and_fifo_and_dir_are_refused(ws: Path) -> None:
    (ws / "big.bin").write_bytes(b"0" * 2000)
    with pytest.raises(SandboxError, match="too large"):
        read_bytes(ws, WORKDIR, "big.bin", max_bytes=1000)
    os.mkfifo(ws / "fifo")
    with pytest.raises(SandboxError, match="not a regular file"):
        read_bytes(ws, WORKDIR, "fifo", max_bytes=1000)
    with pytest.raises(SandboxError, match="is a directory"):
        read_bytes(ws, WORKDIR, "pkg", max_bytes=1000)
    with pytest.raises(SandboxError, match="no such file"):
        read_bytes(ws, WORKDIR, "missing.txt", max_bytes=1000)
