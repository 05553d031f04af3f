"""The group-commit writer on real SQLite and PostgreSQL: one batch of many queued writes."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable
from typing import Any

import sqlalchemy as sa

from corral.domain import ActionTaken, StoreError
from corral.store import Store
from corral.store.schema import events
from corral.store.store import _row

from .conftest import new_attempt


def _event(aid: str, seq: int) -> ActionTaken:
    return ActionTaken(attempt_id=aid, seq=seq, call_id=f"c{seq}", tool="bash")


async def _one_batch(store: Store, writes: list[Awaitable[Any]]) -> list[Any]:
    """Run `writes` as a single batch: the writer thread is held inside a transaction
    until every one of them is queued."""
    entered, release = threading.Event(), threading.Event()

    def hold(_conn: sa.Connection) -> None:
        entered.set()
        release.wait(30)

    held = asyncio.ensure_future(store.writer.run(hold))
    await asyncio.to_thread(entered.wait, 30)
    tasks = [asyncio.ensure_future(w) for w in writes]
    await asyncio.sleep(0)  # each task runs up to its put on the queue
    assert store.writer._queue.qsize() == len(tasks)
    release.set()
    await held
    return await asyncio.gather(*tasks, return_exceptions=True)


def _count_inserts(store: Store) -> list[int]:
    """Row counts of each execute of the events insert on the writer's connection."""
    seen: list[int] = []

    def before(_c: Any, clause: Any, multiparams: Any, params: Any, _o: Any) -> None:
        if isinstance(clause, sa.Insert) and clause.table is events:
            seen.append(len(multiparams))  # SQLAlchemy 2: the list of parameter dicts

    sa.event.listen(store.writer.engine, "before_execute", before)
    return seen


async def test_a_batch_of_many_writes_inserts_every_row_in_one_execute(store: Store) -> None:
    aids = [await new_attempt(store) for _ in range(4)]
    inserts = _count_inserts(store)
    writes = [store.append_many([_event(aid, s), _event(aid, s + 1)])
              for s in range(0, 100, 2) for aid in aids]  # fmt: skip
    assert await _one_batch(store, writes) == [None] * 200
    assert inserts == [400]
    for aid in aids:
        assert [e.seq for e in await store.events(aid)] == list(range(100))


async def test_a_duplicate_fails_only_its_own_write(store: Store) -> None:
    a, b = await new_attempt(store), await new_attempt(store)
    await store.append(_event(a, 0))
    results = await _one_batch(
        store,
        [
            store.append_many([_event(a, 1), _event(a, 2)]),
            store.append_many([_event(b, 0), _event(a, 0)]),  # a's 0 exists: all of it fails
            store.append_many([_event(b, 1), _event(b, 2)]),
            store.append(_event(a, 3)),
        ],
    )
    assert results[0] is None and results[2] is None and results[3] is None
    assert isinstance(results[1], StoreError) and "already exists" in str(results[1])
    assert [e.seq for e in await store.events(a)] == [0, 1, 2, 3]
    assert [e.seq for e in await store.events(b)] == [1, 2]


async def test_an_op_sees_the_rows_queued_before_it_and_not_after(store: Store) -> None:
    aid = await new_attempt(store)

    def count(conn: sa.Connection) -> int:
        query = sa.select(sa.func.count()).select_from(events).where(events.c.attempt_id == aid)
        return int(conn.execute(query).scalar_one())

    results = await _one_batch(
        store,
        [
            store.append_many([_event(aid, 0), _event(aid, 1)]),
            store.writer.run(count),
            store.append_many([_event(aid, 2), _event(aid, 3), _event(aid, 4)]),
            store.writer.run(count),
        ],
    )
    assert results == [None, 2, None, 5]


async def test_rows_with_other_columns_are_not_bound_as_the_first_ones(store: Store) -> None:
    """One executemany binds the columns of its first row; a write naming more (here the
    id) goes in its own execute instead of losing them."""
    aid = await new_attempt(store)
    plain, with_id = _row(_event(aid, 0)), {**_row(_event(aid, 1)), "id": 987654}
    writes = [store.writer.write([plain]), store.writer.write([with_id])]
    assert await _one_batch(store, writes) == [None, None]
    with store.writer.engine.connect() as conn:
        ids = conn.execute(sa.select(events.c.id).where(events.c.attempt_id == aid)).scalars()
        assert 987654 in set(ids)


async def test_a_batch_wakes_its_loop_once(store: Store, monkeypatch: Any) -> None:
    """Each wake-up of the loop from the writer thread is a syscall that hands the GIL
    back to the loop; a batch of 50 writes must not cost 50 of them."""
    loop = asyncio.get_running_loop()
    hops = 0
    real = loop.call_soon_threadsafe

    def counted(*args: Any, **kw: Any) -> Any:
        nonlocal hops
        if threading.current_thread() is store.writer._thread:
            hops += 1
        return real(*args, **kw)

    aid = await new_attempt(store)
    monkeypatch.setattr(loop, "call_soon_threadsafe", counted)
    results = await _one_batch(store, [store.append(_event(aid, i)) for i in range(50)])
    assert results == [None] * 50
    assert hops == 2  # the holding op's batch, then the 50 writes' batch


async def test_a_closed_loop_does_not_stop_the_writer(store: Store) -> None:
    """A caller whose loop closed before its write settled: the writer goes on."""
    aid = await new_attempt(store)

    def elsewhere() -> None:
        other = asyncio.new_event_loop()
        try:
            queued = other.create_task(store.append(_event(aid, 1)))
            other.run_until_complete(asyncio.sleep(0))  # queued, not yet settled
            assert not queued.done()
            queued.cancel()  # the caller gives up; its write stays queued
            other.run_until_complete(asyncio.gather(queued, return_exceptions=True))
        finally:
            other.close()  # its write settles into a closed loop

    await asyncio.to_thread(elsewhere)
    await store.append(_event(aid, 2))  # served: the writer thread is alive
    assert store.writer._thread.is_alive()


async def test_the_writer_keeps_its_connection_between_writes(store: Store) -> None:
    """A pool checkout per write (its liveness ping, its reset) was a quarter of a small
    write's cost: the writer thread keeps one connection."""
    checkouts = 0

    def counted(*_args: Any) -> None:
        nonlocal checkouts
        checkouts += 1

    aid = await new_attempt(store)
    sa.event.listen(store.writer.engine, "checkout", counted)
    for seq in range(20):
        await store.append(_event(aid, seq))
    assert checkouts == 0
    assert [e.seq for e in await store.events(aid)] == list(range(20))


async def test_a_writer_whose_connection_was_killed_writes_on_a_new_one(
    pg_url: str, tmp_path: Any
) -> None:
    """A server that ends the writer's session (a restart, an admin's kill): the next
    write reconnects instead of failing on the dead connection."""
    store = await Store.open(pg_url, home=tmp_path / ".corral")
    try:
        aid = await new_attempt(store)
        backend = "SELECT pg_backend_pid()"
        before = await store.writer.run(lambda c: c.exec_driver_sql(backend).scalar_one())
        with sa.create_engine(
            pg_url.replace("postgresql://", "postgresql+psycopg://")
        ).connect() as admin:
            admin.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": before})
        await store.append(_event(aid, 0))
        after = await store.writer.run(lambda c: c.exec_driver_sql(backend).scalar_one())
        assert after != before
        assert [e.seq for e in await store.events(aid)] == [0]
    finally:
        await store.close()
