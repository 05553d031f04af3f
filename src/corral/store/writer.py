"""Group commit for the event log: the hot write path of every agent.

Appends from any number of agents (and event loops) queue up; one writer thread takes
whatever is waiting and inserts it in a single transaction, then wakes each caller. A
caller still returns only after its event is committed (the log is never behind the
agent), but a thousand agents share commits instead of queueing for one each.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from corral.domain import StoreError
from corral.store.retry import sync_with_retry
from corral.store.schema import events

_STOP = object()
MAX_BATCH = 500


@dataclass
class _Item:
    rows: list[dict[str, Any]]
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[None]


def _settle(item: _Item, error: BaseException | None) -> None:
    def done() -> None:
        if item.future.done():
            return
        if error is None:
            item.future.set_result(None)
        else:
            item.future.set_exception(error)

    item.loop.call_soon_threadsafe(done)


class EventWriter:
    """One thread, one connection, batched inserts into `events`."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._insert = events.insert()
        self._thread = threading.Thread(target=self._run, name="corral-event-writer", daemon=True)
        self._thread.start()

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Commit these rows together (all or none), sharing the commit with other callers."""
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        self._queue.put(_Item(rows, loop, fut))
        await fut

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        self.engine.dispose()

    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is _STOP:
                return
            batch = [first]
            stop = False
            while len(batch) < MAX_BATCH:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is _STOP:
                    stop = True
                    break
                batch.append(nxt)
            self._commit([b for b in batch if isinstance(b, _Item)])
            if stop:
                return

    def _commit(self, batch: list[_Item]) -> None:
        rows = [r for i in batch for r in i.rows]

        def insert() -> None:
            with self.engine.begin() as conn:
                conn.execute(self._insert, rows)

        try:
            sync_with_retry(insert, "event append")
        except SQLAlchemyError:
            # One bad row must not fail its neighbours: retry each on its own.
            for item in batch:
                self._commit_one(item)
            return
        for item in batch:
            _settle(item, None)

    def _commit_one(self, item: _Item) -> None:
        try:
            with self.engine.begin() as conn:
                conn.execute(self._insert, item.rows)
        except IntegrityError:
            r = item.rows[0]
            _settle(
                item, StoreError(f"event {r['seq']} of attempt {r['attempt_id']} already exists")
            )
        except SQLAlchemyError as e:
            _settle(item, StoreError(f"cannot write event: {e.__class__.__name__}: {e}"))
        else:
            _settle(item, None)
