"""Warm pools: sandboxes booted ahead of time, so an attempt's start is a claim.

Why: most of a cold start is fixed cost with nothing to do with the repo - namespaces,
cgroup joins (a v1 memory-cgroup join waits for an RCU grace period), shells, and for
Docker the container itself. A pooled sandbox has all of that done over an empty
workspace; claiming it copies the repo in, locks `.git`, and starts the baseline.

    async with SandboxPool("bwrap", size=4, limits=limits) as pool:
        sb = await pool.claim(repo, attempt_id="a-1")    # started, repo loaded
        ...                                              # or: open_sandbox(...).start()

While a pool is open, any sandbox of its kind and boot limits (memory, pids, disk, CPU:
what shapes a booted sandbox; timeouts and output caps may differ) started on the same
event loop takes a booted one from it (so `run_task` benefits without knowing). Pools
are bound to their loop: asyncio subprocess handles cannot move between loops.

A long-running worker that cannot know its tasks' limits ahead opens `WarmPools`
instead: a pool per (kind, boot limits) is made the first time a sandbox of that shape
starts, refilled after each claim, and the least recently used is closed past
`max_pools`.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from corral.sandbox.base import BaseSandbox
from corral.sandbox.limits import SandboxLimits

log = logging.getLogger(__name__)

_ACTIVE: list[SandboxPool] = []
_MANAGERS: list[WarmPools] = []


def take_booted(sb: BaseSandbox) -> tuple[BaseSandbox | None, SandboxPool | None]:
    """A booted sandbox for `sb` from an open pool on this loop (if ready), and the pool."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None, None
    for pool in _ACTIVE:
        if pool.loop is loop and pool.fits(sb):
            return pool.take_nowait(), pool
    for manager in _MANAGERS:
        made = manager.pool_for(sb) if manager.loop is loop else None
        if made is not None:
            booted = made.take_nowait()
            manager.claims += booted is not None
            return booted, made
    return None, None


class SandboxPool:
    """Keeps `size` booted sandboxes of one kind ready; refills in the background."""

    def __init__(
        self,
        make: Callable[[Path], BaseSandbox] | str,
        *,
        size: int = 2,
        limits: SandboxLimits | None = None,
        fill_now: bool = True,
    ) -> None:
        """`fill_now=False`: boot nothing until the first `refill()` (after a claim)."""
        if isinstance(make, str):
            from corral.sandbox import open_sandbox

            kind = make
            make = lambda repo: open_sandbox(kind, repo, limits=limits)  # noqa: E731
        self._make = make
        self.size = size
        self.limits = limits or SandboxLimits()
        self._ready: list[BaseSandbox] = []
        self._filler: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self.loop: asyncio.AbstractEventLoop | None = None
        self._kind: type[BaseSandbox] | None = None
        self.failures = 0
        self._closing: set[asyncio.Task[None]] = set()
        self._fill_now = fill_now
        self._closed = False

    def fits(self, sb: BaseSandbox) -> bool:
        return type(sb) is self._kind and sb.limits.boot_key() == self.limits.boot_key()

    async def __aenter__(self) -> SandboxPool:
        await self.open()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        self.start()
        _ACTIVE.append(self)

    def start(self) -> None:
        """Begin filling in the background (on the running loop); `open` also registers."""
        self.loop = asyncio.get_running_loop()
        self._kind = type(self._make(Path(".")))
        self._filler = asyncio.ensure_future(self._fill())

    def take_nowait(self) -> BaseSandbox | None:
        while self._ready:
            sb = self._ready.pop(0)
            self._full.clear()
            if sb._driver is not None and sb._driver.alive:
                return sb
            task = asyncio.ensure_future(sb.close())  # died while waiting: replace it
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return None

    def refill(self) -> None:
        """Boot replacements now (called once a claim is done, so they do not compete)."""
        if len(self._ready) < self.size:
            self._full.clear()
            self._wake.set()

    async def claim(self, repo: Path, *, attempt_id: str | None = None) -> BaseSandbox:
        """A started sandbox over a copy of `repo` (booted now if the pool is empty)."""
        sb = self._make(Path(repo))
        sb.attempt_id = attempt_id
        await sb.start()
        return sb

    async def wait_full(self, timeout: float = 60) -> None:
        """Until every slot is booted (benchmarks and tests use this)."""
        await asyncio.wait_for(self._full.wait(), timeout)

    async def _fill(self) -> None:
        """Boot until full, then wait for a claim; stops when closed.

        The `_closed` checks matter: a cancellation can be lost on the way (Python 3.11's
        `wait_for` swallows one that arrives as its inner wait finishes), and a filler
        that missed it must still stop, not wait forever for work.
        """
        if not self._fill_now:
            await self._wake.wait()
        while not self._closed:
            while len(self._ready) < self.size and not self._closed:
                sb = self._make(Path("."))
                try:
                    await sb.boot()
                except Exception as exc:
                    self.failures += 1
                    log.warning("sandbox pool: boot failed: %s", exc)
                    await asyncio.sleep(min(30.0, 0.5 * 2**self.failures))
                    continue
                if self._closed:
                    await sb.close()
                    return
                self.failures = 0
                self._ready.append(sb)
            self._full.set()
            self._wake.clear()
            await self._wake.wait()

    async def close(self) -> None:
        """Stop refilling and close every sandbox nobody claimed."""
        self._closed = True
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(self)
        if self._filler is not None:
            self._wake.set()  # a filler waiting for a claim wakes up and sees `_closed`
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler
        ready, self._ready = self._ready, []
        await asyncio.gather(*(sb.close() for sb in ready), return_exceptions=True)


class WarmPools:
    """Pools made on demand, one per (kind, boot limits), for a long-running worker.

        async with WarmPools(size=2):      # around the worker's loop
            ...                            # sandboxes started here claim warm ones

    Only `kinds` are pooled (egress sandboxes never are: they boot with their proxy).
    The first sandbox of a shape boots cold and makes its pool, which boots `size`
    replacements once that start is done, so the next start of that shape is a claim.
    """

    def __init__(
        self, *, size: int = 2, max_pools: int = 4, kinds: tuple[str, ...] = ("bwrap", "docker")
    ) -> None:
        if size < 1 or max_pools < 1:
            raise ValueError("WarmPools needs size >= 1 and max_pools >= 1")
        self.size = size
        self.max_pools = max_pools
        self.kinds = kinds
        self.loop: asyncio.AbstractEventLoop | None = None
        self.claims = 0  # starts that took a booted sandbox
        self._pools: OrderedDict[tuple[str, tuple[object, ...]], SandboxPool] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    @property
    def pools(self) -> list[SandboxPool]:
        return list(self._pools.values())

    async def __aenter__(self) -> WarmPools:
        self.loop = asyncio.get_running_loop()
        _MANAGERS.append(self)
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    def pool_for(self, sb: BaseSandbox) -> SandboxPool | None:
        """The pool for `sb`'s shape, made (not yet filled) if it is the first of it."""
        if sb.kind not in self.kinds:
            return None
        key = (sb.kind, sb.limits.boot_key())
        pool = self._pools.get(key)
        if pool is not None:
            self._pools.move_to_end(key)
            return pool
        pool = SandboxPool(sb.kind, size=self.size, limits=sb.limits, fill_now=False)
        pool.start()
        self._pools[key] = pool
        while len(self._pools) > self.max_pools:
            _, old = self._pools.popitem(last=False)
            task = asyncio.ensure_future(old.close())
            self._closing.add(task)
            task.add_done_callback(self._closing.discard)
        return pool

    async def close(self) -> None:
        """Close every pool and the sandboxes nobody claimed."""
        with contextlib.suppress(ValueError):
            _MANAGERS.remove(self)
        pools, self._pools = list(self._pools.values()), OrderedDict()
        await asyncio.gather(*(p.close() for p in pools), *self._closing, return_exceptions=True)
