"""WarmPools: a pool per sandbox shape, made on first use, refilled, bounded, closed."""

from __future__ import annotations

import asyncio
import contextlib
from pathlib import Path

import pytest

from corral.sandbox import BwrapSandbox, SandboxLimits, SandboxPool, WarmPools, open_sandbox

from .conftest import LIMITS


async def test_second_start_of_a_shape_claims_a_warm_sandbox(repo: Path) -> None:
    async with WarmPools(size=1) as pools:
        first = open_sandbox("bwrap", repo, limits=LIMITS)
        await first.start()  # cold: makes the pool, which fills once this start is done
        try:
            (pool,) = pools.pools
            await pool.wait_full(60)
            warm = {id(sb._driver) for sb in pool._ready}
            # Same boot shape, other per-command limits: still a claim, with our limits.
            quick = LIMITS.model_copy(update={"default_timeout": 1.0})
            second = open_sandbox("bwrap", repo, limits=quick, attempt_id="att-warm")
            await second.start()
            try:
                assert id(second._driver) in warm
                assert (await second.exec("cat app.py", 5)).output == "x = 1\n"
                slow = await second.exec("sleep 5")  # the claimer's 1 s default applies
                assert slow.timed_out
            finally:
                await second.close()
        finally:
            await first.close()


async def test_pools_are_bounded_and_closed_with_the_manager(repo: Path) -> None:
    other = SandboxLimits(memory_mb=300, pids=128, default_timeout=20, workspace_mb=128)
    async with WarmPools(size=1, max_pools=1) as pools:
        for limits in (LIMITS, other):
            sb = open_sandbox("bwrap", repo, limits=limits)
            await sb.start()
            await sb.close()
            await pools.pools[-1].wait_full(60)
        (only,) = pools.pools  # the first shape's pool was closed to stay within one
        assert only.limits.memory_mb == 300
        waiting = only._ready[0]
        root = waiting.workspace.parent
        assert root.exists()
        local = open_sandbox("local", repo, limits=LIMITS, unsafe_local=True)
        assert pools.pool_for(local) is None  # only bwrap and docker are pooled
    assert not root.exists() and waiting._closed


def test_bad_sizes_are_refused() -> None:
    with pytest.raises(ValueError, match="size >= 1"):
        WarmPools(size=0)


async def test_a_closed_manager_pools_nothing(repo: Path) -> None:
    pools = WarmPools(size=1)
    async with pools:
        pass
    sb = open_sandbox("bwrap", repo, limits=LIMITS)
    await sb.start()  # the manager is closed: a plain cold start, no pool made
    await sb.close()
    assert pools.pools == []


class _LosesCancel(BwrapSandbox):
    """Boots even if cancelled meanwhile, as Python 3.11's wait_for can make it do."""

    made: list[BwrapSandbox] = []

    async def boot(self) -> None:
        self.made.append(self)
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.sleep(0.5)  # close() cancels the filler here
        await super().boot()


async def test_closing_a_pool_whose_filler_lost_its_cancel(repo: Path) -> None:
    pool = SandboxPool(lambda r: _LosesCancel(r, limits=LIMITS), size=1)
    await pool.open()
    await asyncio.sleep(0.1)  # the filler is in the boot now
    closing = asyncio.ensure_future(pool.close())
    done, _ = await asyncio.wait({closing}, timeout=20)
    assert done, "close() waited for a filler that waits for a claim (forever)"
    (booted,) = _LosesCancel.made
    assert booted._closed and not booted.workspace.parent.exists()
