"""Riding out a database restart: transient connection errors are retried, not fatal."""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from corral.domain import StoreError

T = TypeVar("T")
log = logging.getLogger(__name__)
OUTAGE_S = 60.0  # how long a store may be unreachable before callers see StoreError


def transient(exc: BaseException) -> bool:
    if isinstance(exc, OperationalError | PoolTimeout):
        return True
    return isinstance(exc, DBAPIError) and bool(exc.connection_invalidated)


async def with_retry(op: Callable[[], Awaitable[T]], what: str) -> T:
    deadline = time.monotonic() + OUTAGE_S
    delay = 0.05
    while True:
        try:
            return await op()
        except (OperationalError, DBAPIError, PoolTimeout) as e:
            if not transient(e) or time.monotonic() > deadline:
                raise StoreError(f"store failed during {what}: {e.__class__.__name__}") from e
            log.warning("store unavailable during %s, retrying: %s", what, e.__class__.__name__)
            await asyncio.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


def sync_with_retry(op: Callable[[], T], what: str) -> T:
    deadline = time.monotonic() + OUTAGE_S
    delay = 0.05
    while True:
        try:
            return op()
        except (OperationalError, DBAPIError) as e:
            if not transient(e) or time.monotonic() > deadline:
                raise
            log.warning("store unavailable during %s, retrying", what)
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 2.0)


C = TypeVar("C", bound=type)


def retry_public_ops(cls: C) -> C:
    """Wrap every public coroutine method of a store class in `with_retry`.

    Safe because each operation is a read or a conditional (fenced) write: running it
    again after a dropped connection either does the same thing or changes nothing.
    """
    import functools
    import inspect

    for name, fn in list(vars(cls).items()):
        if name.startswith("_") or not inspect.iscoroutinefunction(fn):
            continue

        def wrap(f: Any, op: str) -> Any:
            @functools.wraps(f)
            async def retried(*args: Any, **kwargs: Any) -> Any:
                return await with_retry(lambda: f(*args, **kwargs), op)

            return retried

        setattr(cls, name, wrap(fn, name))
    return cls
