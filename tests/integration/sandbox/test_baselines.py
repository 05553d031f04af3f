"""Copies of one repo state share one baseline; every diff stays the workspace's own."""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from corral.domain import SandboxError
from corral.sandbox import baselines as baselines_module
from corral.sandbox import workspace as workspace_module
from corral.sandbox.baselines import Baseline, Baselines
from corral.sandbox.workspace import Workspace, prepare

from .conftest import make_repo


def settle() -> None:
    """Let the source's last change age past the window in which a shared snapshot is
    refused (a second write could share the clock tick of the first)."""
    time.sleep(0.15)


@pytest.fixture
def settled(tmp_path: Path) -> Path:
    repo = make_repo(tmp_path / "repo")
    settle()
    return repo


@pytest.fixture
def git_runs(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every git script the workspaces run, by its first command."""
    runs: list[str] = []
    real = workspace_module.run_sh

    async def counted(body: str, *args: object, **kw: object) -> str:
        runs.append(body.splitlines()[1])
        return await real(body, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(workspace_module, "run_sh", counted)
    return runs


@contextlib.asynccontextmanager
async def prepared(src: Path) -> AsyncIterator[Workspace]:
    """A workspace copied from `src`, its baseline taken, removed afterwards."""
    ws = await prepare(src)
    try:
        await ws.baseline()
        yield ws
    finally:
        ws.remove()


async def _baseline(ws: Workspace) -> Baseline:
    await ws.baseline()
    assert ws._baseline is not None
    return ws._baseline.result()


async def test_copies_of_one_state_share_a_snapshot_and_keep_their_own_diffs(
    settled: Path, git_runs: list[str]
) -> None:
    first, second = await prepare(settled), await prepare(settled)
    try:
        a, b = await _baseline(first), await _baseline(second)
        assert a.key is not None and a is b
        assert not a.git_dir.is_relative_to(first.root)  # host-only, outside both
        assert len(git_runs) == 1  # one snapshot for both copies

        (first.path / "app.py").write_text("x = 2\n")
        (second.path / "new.txt").write_text("mine\n")
        d1, d2 = await first.diff(), await second.diff()
        assert "+x = 2" in d1 and "new.txt" not in d1
        assert "new.txt" in d2 and "x = 2" not in d2
        assert not (settled / "new.txt").exists()
    finally:
        first.remove()
        second.remove()


async def test_same_size_edit_with_its_time_put_back_is_in_the_diff(settled: Path) -> None:
    """The copy that took the shared snapshot: its index's stat data are its own files'."""
    async with prepared(settled) as ws:
        target = ws.path / "app.py"
        before = target.stat()
        target.write_text("x = 7\n")  # same size as "x = 1\n"
        os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
        assert "+x = 7" in await ws.diff()


async def test_a_changed_source_gets_a_new_snapshot(settled: Path) -> None:
    first = await prepare(settled)
    try:
        a = await _baseline(first)
        (settled / "app.py").write_text("x = 3\n")  # same size, new content
        settle()
        second = await prepare(settled)
        try:
            b = await _baseline(second)
            assert b.key is not None and b.key != a.key and b.tree != a.tree
            assert await second.diff() == ""  # the source's edit is not the agent's
        finally:
            second.remove()
    finally:
        first.remove()


async def test_a_source_that_just_changed_gets_the_workspaces_own_snapshot(
    tmp_path: Path,
) -> None:
    fresh = make_repo(tmp_path / "fresh")  # no settle: it may change again in this tick
    ws = await prepare(fresh)
    try:
        b = await _baseline(ws)
        assert b.key is None and b.git_dir.is_relative_to(ws.root)
        (ws.path / "app.py").write_text("x = 4\n")
        assert "+x = 4" in await ws.diff()
    finally:
        ws.remove()


async def test_an_untouched_workspace_has_an_empty_diff_without_git(
    settled: Path, git_runs: list[str]
) -> None:
    async with prepared(settled) as ws:
        snapshots = len(git_runs)
        assert await ws.diff() == ""
        assert len(git_runs) == snapshots  # nothing was written: no git at all

        (ws.path / "app.py").touch()  # a write that changes nothing still asks git
        assert await ws.diff() == ""
        assert len(git_runs) == snapshots + 1


async def test_concurrent_copies_make_one_snapshot(settled: Path, git_runs: list[str]) -> None:
    spaces = await asyncio.gather(*(prepare(settled) for _ in range(5)))
    try:
        taken = {id(await _baseline(ws)) for ws in spaces}
        assert len(taken) == 1 and len(git_runs) == 1
    finally:
        for ws in spaces:
            ws.remove()


async def test_unused_snapshots_past_the_limit_are_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = Baselines(limit=1)
    monkeypatch.setattr(workspace_module, "baselines", cache)
    one, two = make_repo(tmp_path / "one"), make_repo(tmp_path / "two")
    settle()
    ws1 = await prepare(one)
    a = await _baseline(ws1)
    ws2 = await prepare(two)
    b = await _baseline(ws2)
    try:
        assert a.git_dir.is_dir()  # still in use by ws1
        ws1.remove()
        await asyncio.sleep(0)  # the release runs on the loop
        assert not a.git_dir.exists() and b.git_dir.is_dir()
    finally:
        ws2.remove()
        cache.clear()


async def test_a_failed_snapshot_is_retried_by_the_next_copy(tmp_path: Path) -> None:
    cache = Baselines()
    calls = 0

    async def make(at: Path) -> Baseline:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.01)
        if calls == 1:
            raise SandboxError("git failed: disk full")
        return Baseline(at / "git", "abc", at / "index")

    results = await asyncio.gather(
        *(cache.take("k", make, tmp_path) for _ in range(3)), return_exceptions=True
    )
    assert isinstance(results[0], SandboxError)
    assert [r.tree for r in results[1:] if isinstance(r, Baseline)] == ["abc", "abc"]
    assert calls == 2
    cache.clear()


def test_the_snapshot_dir_of_a_dead_process_is_reaped(tmp_path: Path) -> None:
    dead = tmp_path / "corral-baselines-999999999-1-abcd1234"  # no such process
    dead.mkdir()
    assert workspace_module.reap_orphans(tmp_path) == [dead] and not dead.exists()
    assert baselines_module.baselines.limit > 0


async def test_a_try_cut_short_leaves_nothing_for_the_next(tmp_path: Path) -> None:
    """A snapshot whose sandbox closed mid-way (git killed) may leave an index.lock."""
    cache = Baselines()
    seen: list[bool] = []

    def leave_a_lock(at: Path) -> None:
        seen.append((at / "index.lock").exists())
        at.mkdir(parents=True, exist_ok=True)
        (at / "index.lock").write_text("")

    async def make(at: Path) -> Baseline:
        leave_a_lock(at)
        if len(seen) == 1:
            raise asyncio.CancelledError
        return Baseline(at / "git", "abc", at / "index")

    with pytest.raises(asyncio.CancelledError):
        await cache.take("k", make, tmp_path)
    assert (await cache.take("k", make, tmp_path)).tree == "abc"
    assert seen == [False, False]
    cache.clear()


async def test_a_workspace_closed_before_its_snapshot_does_not_break_the_next(
    settled: Path,
) -> None:
    for _ in range(3):
        (await prepare(settled)).remove()  # closed at once: its snapshot is cancelled
    async with prepared(settled) as ws:
        (ws.path / "app.py").write_text("x = 8\n")
        assert "+x = 8" in await ws.diff()


async def test_a_snapshot_of_a_copy_removed_meanwhile_is_not_shared(settled: Path) -> None:
    ws = await prepare(settled)
    ws.removed = True  # as `remove` does first, from the closing thread, while git runs
    with pytest.raises(SandboxError, match="removed while its baseline"):
        await ws.baseline()
    ws.remove()
    async with prepared(settled) as other:
        assert await other.diff() == ""
        (other.path / "README.md").unlink()
        assert "-# demo" in await other.diff()


async def test_deep_and_wide_changes_are_walked_and_diffed(settled: Path) -> None:
    """Deeper than Python's recursion limit, and more files than the inline walk takes."""
    async with prepared(settled) as ws:
        deep = ws.path
        for _ in range(1100):  # one level at a time: makedirs itself recurses
            deep = deep / "d"
            deep.mkdir()
        (deep / "bottom.txt").write_text("deep\n")
        wide = ws.path / "wide"
        wide.mkdir()
        for i in range(600):
            (wide / f"f{i:03d}.txt").write_text(f"{i}\n")
        patch = await ws.diff()
        assert "bottom.txt" in patch and "wide/f599.txt" in patch
