"""A bwrap sandbox's host side (workspace, cgroups, spawn-room bind) is made and undone in
threads, never on the event loop; closed while that runs, nothing it made is left."""

from __future__ import annotations

import asyncio
import os
import threading
from pathlib import Path

import pytest

from corral.domain import SandboxError
from corral.sandbox import BwrapSandbox, spawnroom
from corral.sandbox.procs import Cgroups

from .conftest import LIMITS

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cgroups and the room need root")


async def test_host_setup_and_teardown_run_off_the_event_loop(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    seen: dict[str, bool] = {}

    def on_loop_thread(name: str, fn: object) -> object:
        def wrapped(*args: object, **kwargs: object) -> object:
            seen[name] = threading.current_thread() is threading.main_thread()
            return fn(*args, **kwargs)  # type: ignore[operator]

        return wrapped

    monkeypatch.setattr(Cgroups, "create", on_loop_thread("create", Cgroups.create))
    monkeypatch.setattr(Cgroups, "remove", on_loop_thread("remove", Cgroups.remove))
    monkeypatch.setattr(spawnroom, "expose", on_loop_thread("expose", spawnroom.expose))
    monkeypatch.setattr(spawnroom, "withdraw", on_loop_thread("withdraw", spawnroom.withdraw))
    box = BwrapSandbox(repo, limits=LIMITS)
    await box.start()
    try:
        assert (await box.exec("cat app.py", 10)).output == "x = 1\n"
    finally:
        await box.close()
    assert seen == {"create": False, "expose": False, "withdraw": False, "remove": False}


async def test_closed_while_the_host_side_is_made_leaves_nothing(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Path] = []
    entered, release = threading.Event(), threading.Event()
    real_create = Cgroups.create

    def slow_create(memory_mb: int, pids: int) -> Cgroups | None:
        entered.set()
        release.wait(10)
        group = real_create(memory_mb, pids)
        if group is not None:
            made.extend(group.dirs)
        return group

    monkeypatch.setattr(Cgroups, "create", staticmethod(slow_create))
    box = BwrapSandbox(repo, limits=LIMITS)
    starting = asyncio.ensure_future(box.start())
    await asyncio.to_thread(entered.wait, 10)
    closing = asyncio.ensure_future(box.close())  # another task closes it meanwhile
    await asyncio.sleep(0.05)
    release.set()
    with pytest.raises(SandboxError, match="closed while it started"):
        await starting
    await closing
    assert made, "the cgroups were made"
    assert [d for d in made if d.exists()] == []
    assert box._ws is not None and not box._ws.root.exists()
    room = spawnroom.room()
    assert room is None or list(room.iterdir()) == []


async def test_releasing_the_host_side_undoes_a_room_bind_still_held(repo: Path) -> None:
    """What `_prepare` made before anything ran (a close racing it finds the bind here)."""
    box = BwrapSandbox(repo, limits=LIMITS)
    box._starting()
    ws = await box._prepare()
    room = spawnroom.room()
    assert room is not None and box._spot is not None and box._spot.parent == room
    dirs = list(box._cgroups.dirs) if box._cgroups is not None else []
    await asyncio.to_thread(box._release_host)
    assert list(room.iterdir()) == []
    assert not ws.root.exists() and [d for d in dirs if d.exists()] == []
    box._closed = True  # nothing left for close()
