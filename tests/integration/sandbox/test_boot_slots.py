"""Boots in flight are bounded per backend: the rest queue, none fail."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from corral.sandbox.base import boots_at_once
from corral.sandbox.local import LocalSandbox
from corral.sandbox.workspace import Workspace

from .conftest import LIMITS


class _Counting(LocalSandbox):
    kind = "counting"
    boots_per_core = 3
    inside = 0
    most = 0

    async def _spawn(self, ws: Workspace) -> None:
        cls = type(self)
        cls.inside += 1
        cls.most = max(cls.most, cls.inside)
        await asyncio.sleep(0.02)  # a boot's waits: others may start meanwhile
        cls.inside -= 1
        await super()._spawn(ws)


async def test_boots_in_flight_are_bounded_per_core(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 2)
    boxes = [_Counting(repo, limits=LIMITS) for _ in range(20)]
    try:
        await asyncio.gather(*(b.start() for b in boxes))
        assert _Counting.most == 6  # 3 per core on 2 cores: a queue, not a failure
        assert {(await b.exec("echo up", 5)).output for b in boxes} == {"up\n"}
    finally:
        await asyncio.gather(*(b.close() for b in boxes))


def test_more_cores_do_not_lift_the_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("os.cpu_count", lambda: 1000)
    assert boots_at_once(32) == 128
    monkeypatch.setattr("os.cpu_count", lambda: 1)
    assert boots_at_once(1) == 4  # and a small machine keeps a few
