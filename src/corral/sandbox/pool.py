"""Warm pools: sandboxes booted ahead of time, so an attempt's start is a claim.

Why: most of a cold start is fixed cost with nothing to do with the repo - namespaces,
cgroup joins (a v1 memory-cgroup join waits for an RCU grace period), shells, and for
Docker the container itself. A pooled sandbox has all of that done over an empty
workspace; claiming it copies the repo in, locks `.git`, and starts the baseline.

    async with SandboxPool("bwrap", size=4, limits=limits) as pool:
        sb = await pool.claim(repo, attempt_id="a-1")    # started, repo loaded
        ...                                              # or: open_sandbox(...).start()

While a pool is open, any sandbox of its kind and limits started on the same event
loop takes a booted one from it (so `run_task` benefits without knowing). Pools are
bound to their loop: asyncio subprocess handles cannot move between loops.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from pathlib import Path
from types import TracebackType

from corral.sandbox.base import BaseSandbox
from corral.sandbox.limits import SandboxLimits

log = logging.getLogger(__name__)

_ACTIVE: list[SandboxPool] = []


def take_booted(sb: BaseSandbox) -> tuple[BaseSandbox | None, SandboxPool | None]:
    """A booted sandbox for `sb` from an open pool on this loop (if ready), and the pool."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None, None
    for pool in _ACTIVE:
        if pool.loop is loop and pool.fits(sb):
            return pool.take_nowait(), pool
    return None, None


class SandboxPool:
    """Keeps `size` booted sandboxes of one kind ready; refills in the background."""

    def __init__(
        self,
        make: Callable[[Path], BaseSandbox] | str,
        *,
        size: int = 2,
        limits: SandboxLimits | None = None,
    ) -> None:
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

    def fits(self, sb: BaseSandbox) -> bool:
        return type(sb) is self._kind and sb.limits == self.limits

    async def __aenter__(self) -> SandboxPool:
        await self.open()
        return self

    async def __aexit__(
        self, _t: type[BaseException] | None, _e: BaseException | None, _tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        self.loop = asyncio.get_running_loop()
        self._kind = type(self._make(Path(".")))
        _ACTIVE.append(self)
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
        while True:
            while len(self._ready) < self.size:
                sb = self._make(Path("."))
                try:
                    await sb.boot()
                except Exception as exc:
                    self.failures += 1
                    log.warning("sandbox pool: boot failed: %s", exc)
                    await asyncio.sleep(min(30.0, 0.5 * 2**self.failures))
                    continue
                self.failures = 0
                self._ready.append(sb)
            self._full.set()
            self._wake.clear()
            await self._wake.wait()

    async def close(self) -> None:
        """Stop refilling and close every sandbox nobody claimed."""
        with contextlib.suppress(ValueError):
            _ACTIVE.remove(self)
        if self._filler is not None:
            self._filler.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._filler
        ready, self._ready = self._ready, []
        await asyncio.gather(*(sb.close() for sb in ready), return_exceptions=True)
