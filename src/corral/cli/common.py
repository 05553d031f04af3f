"""What every command shares: one-line errors, the async edge, common options."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, NoReturn, TypeVar

import typer

if TYPE_CHECKING:
    from corral.store import Store

T = TypeVar("T")

HomeOpt = Annotated[
    Path,
    typer.Option("--home", envvar="CORRAL_HOME", help="Where the store and patches live."),
]
StoreOpt = Annotated[
    str | None,
    typer.Option(
        "--store",
        envvar="CORRAL_STORE",
        help="Database URL (postgresql://...); default: SQLite in --home.",
    ),
]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object.")]


def fail(message: str) -> NoReturn:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """The sync edge: run a coroutine; a CorralError becomes one line and exit code 2."""
    from corral.domain import CorralError

    try:
        return asyncio.run(coro)
    except CorralError as e:
        fail(str(e).splitlines()[0] if str(e) else e.__class__.__name__)


def with_store(url: str | None, home: Path, fn: Callable[[Store], Awaitable[T]]) -> T:
    from corral.store import Store

    async def go() -> T:
        store = await Store.open(url, home=home)
        try:
            return await fn(store)
        finally:
            await store.close()

    return run_async(go())
