"""Group commit: the hot write path of every agent and of the scheduler.

Event appends and small fleet writes (claim, heartbeat, finish) from any number of
agents queue up; one writer thread takes whatever is waiting and runs it in a single
transaction, then wakes each caller. A caller still returns only after its write is
committed (the log is never behind the agent), but a thousand agents share commits
instead of queueing for one each.

The thread keeps one connection for as long as it works: a pool checkout per batch
(its liveness ping, its reset on return) cost a quarter of a small write's time. A
connection that fails is dropped, and the next transaction takes a fresh one.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError, SQLAlchemyError

from corral.domain import StoreError
from corral.store.retry import sync_with_retry
from corral.store.schema import events

_STOP = object()
MAX_BATCH = 500
T = TypeVar("T")
Op = Callable[[sa.Connection], Any]


@dataclass
class _Item:
    rows: list[dict[str, Any]]  # event rows to insert
    op: Op | None  # or a small transaction body
    loop: asyncio.AbstractEventLoop
    future: asyncio.Future[Any]


Settled = tuple[_Item, Any, BaseException | None]  # an item, its result, or its error


def _settle(batch: list[Settled]) -> None:
    """Wake a batch's callers: one hop per event loop, not one per item. Why: each hop
    is a syscall that lets the loop take the GIL back, so settling 500 items one by one
    made this thread wait its turn 500 times, and every caller with it."""
    by_loop: dict[asyncio.AbstractEventLoop, list[Settled]] = {}
    for settled in batch:
        by_loop.setdefault(settled[0].loop, []).append(settled)
    for loop, items in by_loop.items():
        with contextlib.suppress(RuntimeError):  # its loop is closed: nobody waits
            loop.call_soon_threadsafe(_resolve, items)


def _resolve(items: list[Settled]) -> None:
    for item, result, error in items:
        if item.future.done():
            continue
        if error is None:
            item.future.set_result(result)
        else:
            item.future.set_exception(error)


class StoreWriter:
    """One thread, one connection, many writes per commit."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._insert = events.insert()
        self._conn: sa.Connection | None = None  # the writer thread's own
        self._thread = threading.Thread(target=self._run, name="corral-store-writer", daemon=True)
        self._thread.start()

    async def write(self, rows: list[dict[str, Any]]) -> None:
        """Insert these event rows together (all or none)."""
        await self._submit(rows, None)

    async def run(self, op: Callable[[sa.Connection], T]) -> T:
        """Run `op(conn)` inside a shared transaction; returns what it returns."""
        result: T = await self._submit([], op)
        return result

    async def _submit(self, rows: list[dict[str, Any]], op: Op | None) -> Any:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[Any] = loop.create_future()
        self._queue.put(_Item(rows, op, loop, fut))
        return await fut

    def close(self) -> None:
        self._queue.put(_STOP)
        self._thread.join(timeout=10)
        self.engine.dispose()

    def _run(self) -> None:
        try:
            self._serve()
        finally:
            self._drop_connection()

    def _serve(self) -> None:
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

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sa.Connection]:
        """The kept connection inside a transaction; dropped if anything fails, so a
        broken one is never reused (the retry then connects afresh)."""
        if self._conn is None:
            self._conn = self.engine.connect()
        try:
            with self._conn.begin():
                yield self._conn
        except BaseException:
            self._drop_connection()
            raise

    def _drop_connection(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()

    def _apply(self, conn: sa.Connection, item: _Item) -> Any:
        if item.rows:
            conn.execute(self._insert, item.rows)
        return item.op(conn) if item.op is not None else None

    def _apply_all(self, conn: sa.Connection, batch: list[_Item]) -> list[Any]:
        """Each item's result, in order. The event rows of neighbouring writes go in one
        executemany (one execute per item was most of a batch's cost); an op flushes the
        rows queued before it first, so it still sees them."""
        results: list[Any] = []
        pending: list[dict[str, Any]] = []

        def flush() -> None:
            if pending:
                conn.execute(self._insert, pending)
                pending.clear()

        for item in batch:
            if item.rows:
                if pending and pending[0].keys() != item.rows[0].keys():
                    flush()  # one executemany binds one set of columns
                pending.extend(item.rows)
            if item.op is not None:
                flush()
            results.append(item.op(conn) if item.op is not None else None)
        flush()
        return results

    def _commit(self, batch: list[_Item]) -> None:
        results: list[Any] = []

        def together() -> None:
            results.clear()
            with self._transaction() as conn:
                results.extend(self._apply_all(conn, batch))

        try:
            sync_with_retry(together, "store write")
        except Exception:
            # One bad write must not fail its neighbours: run each on its own.
            _settle([self._commit_one(item) for item in batch])
            return
        _settle([(item, result, None) for item, result in zip(batch, results, strict=True)])

    def _commit_one(self, item: _Item) -> Settled:
        def alone() -> Any:
            with self._transaction() as conn:
                return self._apply(conn, item)

        try:
            result = sync_with_retry(alone, "store write")
        except IntegrityError as e:
            if item.op is not None:  # the caller's own constraint logic (dedupe) decides
                return item, None, e
            r = item.rows[0] if item.rows else {}
            what = f"event {r.get('seq')} of attempt {r.get('attempt_id')}" if r else "a row"
            return item, None, StoreError(f"{what} already exists")
        except SQLAlchemyError as e:
            return item, None, StoreError(f"cannot write: {e.__class__.__name__}: {e}")
        except Exception as e:  # a bug in an op: report it to its caller
            return item, None, e
        return item, result, None
