"""Named store operations over SQLAlchemy Core. SQLite (WAL) by default; Postgres by URL."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event as sa_event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from corral.domain import ConfigError, Event, RunStatus, StoreError, event_from_json, event_to_json
from corral.domain.events import utcnow
from corral.store.dependencies import DependencyOps
from corral.store.migrate import upgrade
from corral.store.retry import retry_public_ops
from corral.store.reviews import ReviewOps
from corral.store.rows import aware, from_row
from corral.store.scheduling import SchedulingOps
from corral.store.schema import attempts, events
from corral.store.writer import StoreWriter


@dataclass(frozen=True)
class AttemptRecord:
    id: str
    task: str
    repo: str
    model: str
    sandbox: str
    status: RunStatus
    reason: str
    steps: int
    cost_usd: float
    patch_path: str | None
    created_at: datetime
    ended_at: datetime | None
    task_id: str | None = None  # set when a fleet worker ran it for a campaign task


def database_url(url: str | None, home: Path) -> str:
    """Turn what a user typed (or nothing) into an async SQLAlchemy URL."""
    if not url:
        home.mkdir(parents=True, exist_ok=True)
        return f"sqlite+aiosqlite:///{home / 'corral.db'}"
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+psycopg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url[len("sqlite:///") :]
    if url.startswith(("sqlite+aiosqlite://", "postgresql+psycopg://")):
        return url
    raise ConfigError(f"unsupported store URL {url!r}: use sqlite:///PATH or postgresql://...")


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA busy_timeout=10000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


@retry_public_ops
class Store(SchedulingOps, DependencyOps, ReviewOps):
    """The event log and attempt records. Every write commits before it returns."""

    def __init__(self, engine: AsyncEngine, writer: StoreWriter) -> None:
        self.engine = engine
        self.writer = writer

    @classmethod
    async def open(cls, url: str | None = None, *, home: Path = Path(".corral")) -> Store:
        """Connect, migrate to the newest schema, and start the event writer."""
        full = database_url(url, home)
        # A fleet runs hundreds of attempts on one engine: a wide pool, and waiting for a
        # connection is slow, not broken (it is retried, never a crash).
        engine = create_async_engine(
            full,
            pool_pre_ping=not full.startswith("sqlite"),
            pool_size=10,
            max_overflow=40,
            pool_timeout=120,
        )
        # Event appends and migrations go through a sync engine on their own thread.
        sync_engine = sa.create_engine(full.replace("+aiosqlite", ""), pool_pre_ping=True)
        if full.startswith("sqlite"):
            sa_event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
            sa_event.listen(sync_engine, "connect", _sqlite_pragmas)
        try:
            await asyncio.to_thread(_migrate, sync_engine)
        except SQLAlchemyError as e:
            await engine.dispose()
            sync_engine.dispose()
            raise StoreError(f"cannot open store {url or full}: {e.__class__.__name__}") from e
        return cls(engine, StoreWriter(sync_engine))

    async def close(self) -> None:
        await asyncio.to_thread(self.writer.close)
        await self.engine.dispose()

    async def create_attempt(
        self, attempt_id: str, *, task: str, repo: str, model: str, sandbox: str
    ) -> None:
        row = {
            "id": attempt_id, "task": task, "repo": repo, "model": model, "sandbox": sandbox,
            "status": RunStatus.running.value, "created_at": utcnow(),
        }  # fmt: skip
        await self.writer.run(lambda conn: conn.execute(attempts.insert().values(**row)))

    async def append(self, event: Event) -> None:
        """Persist one event; a duplicate (attempt, seq) is a bug and raises StoreError."""
        await self.writer.write([_row(event)])

    async def append_many(
        self, batch: Sequence[Event], payloads: Sequence[str] | None = None
    ) -> None:
        """Persist several events in one commit: all of them or none. `payloads`: their
        JSON, when the caller has it already."""
        if batch:
            texts = payloads or [event_to_json(e) for e in batch]
            await self.writer.write([_row(e, t) for e, t in zip(batch, texts, strict=True)])

    async def end_attempt(
        self,
        attempt_id: str,
        *,
        status: RunStatus,
        reason: str,
        steps: int,
        cost_usd: float,
        patch_path: str | None,
    ) -> None:
        values = {
            "status": status.value, "reason": reason, "steps": steps, "cost_usd": cost_usd,
            "patch_path": patch_path, "ended_at": utcnow(),
        }  # fmt: skip
        stmt = attempts.update().where(attempts.c.id == attempt_id).values(**values)
        await self.writer.run(lambda conn: conn.execute(stmt))

    async def get_attempt(self, attempt_id: str) -> AttemptRecord | None:
        async with self.engine.connect() as conn:
            row = (await conn.execute(attempts.select().where(attempts.c.id == attempt_id))).first()
        return _record(row._mapping) if row else None

    async def resolve_attempt_id(self, prefix: str) -> str:
        """Accept a unique prefix of an attempt id, like git does for commits."""
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(attempts.c.id).where(attempts.c.id.startswith(prefix)).limit(2)
                )
            ).all()
        if not rows:
            raise ConfigError(f"no attempt with id {prefix!r}")
        if len(rows) > 1:
            raise ConfigError(f"attempt id {prefix!r} is ambiguous; give more characters")
        return str(rows[0][0])

    async def list_attempts(self, limit: int = 50) -> list[AttemptRecord]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    attempts.select().order_by(attempts.c.created_at.desc()).limit(limit)
                )
            ).all()
        return [_record(r._mapping) for r in rows]

    async def events(self, attempt_id: str) -> list[Event]:
        async with self.engine.connect() as conn:
            rows = (
                await conn.execute(
                    sa.select(events.c.payload)
                    .where(events.c.attempt_id == attempt_id)
                    .order_by(events.c.seq)
                )
            ).all()
        return [event_from_json(r[0]) for r in rows]

    async def log_tail(self, attempt_id: str) -> tuple[int, bool]:
        """The attempt's next free seq, and whether its log already holds its end. Read
        through the writer, so after every write queued before it: a run stopped while
        an event was being stored has that event in the log though it never heard back."""
        seq = sa.select(sa.func.max(events.c.seq)).where(events.c.attempt_id == attempt_id)
        ended = sa.select(events.c.id).where(
            events.c.attempt_id == attempt_id, events.c.type == "attempt_ended"
        )

        def go(conn: sa.Connection) -> tuple[int, bool]:
            last = conn.scalar(seq)
            return (-1 if last is None else int(last)) + 1, conn.scalar(ended.limit(1)) is not None

        return await self.writer.run(go)

    async def last_event_at(self, attempt_id: str) -> datetime | None:
        async with self.engine.connect() as conn:
            ts = await conn.scalar(
                sa.select(sa.func.max(events.c.ts)).where(events.c.attempt_id == attempt_id)
            )
        return aware(ts) if isinstance(ts, datetime) else None


def _migrate(engine: sa.Engine) -> None:
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            # Two processes opening a fresh database at once must not both migrate.
            conn.execute(sa.text("SELECT pg_advisory_xact_lock(7262726)"))
        upgrade(conn)


def _row(event: Event, payload: str | None = None) -> dict[str, Any]:
    return {
        "attempt_id": event.attempt_id,
        "seq": event.seq,
        "type": event.type,
        "ts": event.ts,
        "payload": event_to_json(event) if payload is None else payload,
    }


def _record(m: Any) -> AttemptRecord:
    return from_row(AttemptRecord, m, status=RunStatus(m["status"]))
