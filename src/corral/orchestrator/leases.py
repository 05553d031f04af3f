"""One heartbeat for all the attempts a process runs.

Each running attempt must renew its lease (fenced by its token) and learn whether it
was lost or cancelled. Done per attempt, a thousand attempts made a thousand timers and
store writes every beat; the keeper renews every lease it holds in one write per beat
and tells each attempt its own answer.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable

from corral.domain import CorralError
from corral.store import Lease, Store

log = logging.getLogger(__name__)

# Called with (still held, cancel requested) after each beat that renewed the lease.
Beat = Callable[[bool, bool], None]


class LeaseKeeper:
    """Renews the leases of the attempts registered with `keep`, every `heartbeat_s`."""

    def __init__(self, store: Store, heartbeat_s: float, lease_ttl_s: float) -> None:
        self.store = store
        self.heartbeat_s = heartbeat_s
        self.lease_ttl_s = lease_ttl_s
        self._held: dict[str, tuple[Lease, Beat]] = {}
        self._task: asyncio.Task[None] | None = None

    def keep(self, lease: Lease, on_beat: Beat) -> None:
        """Renew `lease` from the next beat on, calling `on_beat` with each answer."""
        self._held[lease.attempt_id] = (lease, on_beat)
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="lease keeper")

    def release(self, lease: Lease) -> None:
        """Stop renewing `lease` (its attempt ended or was stopped); no more calls."""
        kept = self._held.get(lease.attempt_id)
        if kept is not None and kept[0] == lease:
            del self._held[lease.attempt_id]

    async def _run(self) -> None:
        while self._held:
            await asyncio.sleep(self.heartbeat_s)
            beat = dict(self._held)
            if not beat:
                return
            try:
                answers = await self.store.heartbeat_many(
                    [lease for lease, _ in beat.values()], self.lease_ttl_s
                )
            except CorralError as e:  # the store is down past its retries: beat again later
                log.warning("heartbeat failed for %d attempts: %s", len(beat), e)
                continue
            except Exception:  # never let one bad write end the heartbeat of every attempt
                log.exception("heartbeat failed for %d attempts", len(beat))
                continue
            for attempt_id, (lease, on_beat) in beat.items():
                if self._held.get(attempt_id) != (lease, on_beat):
                    continue  # released while the write was in flight
                try:
                    on_beat(*answers.get(attempt_id, (False, False)))
                except Exception:  # one attempt's bug must not stop the others' leases
                    log.exception("heartbeat handler of %s failed", attempt_id)

    async def close(self) -> None:
        """Stop beating (the attempts are gone or being cancelled)."""
        self._held.clear()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
