"""`corral sandbox ...`: prepare backends, list and reap sandbox containers."""

from __future__ import annotations

import asyncio
import shutil
from typing import Annotated

import typer

sandbox_app = typer.Typer(help="Sandbox backends: prepare, list, reap.", no_args_is_help=True)


def _fail(message: str) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(2)


@sandbox_app.command()
def prepare(
    kind: Annotated[str, typer.Argument(help="The backend to prepare: docker or bwrap.")],
    force: Annotated[bool, typer.Option("--force", help="Rebuild even if cached.")] = False,
) -> None:
    """Get a backend ready: for docker, build the base image (cached by tag)."""
    from corral.domain import CorralError
    from corral.sandbox import docker_engine
    from corral.sandbox.bwrap import MISSING_BWRAP

    if kind == "bwrap":
        if shutil.which("bwrap", path="/usr/bin:/bin:/usr/local/bin") is None:
            _fail(MISSING_BWRAP)
        typer.echo("bwrap is ready (nothing to prepare)")
        return
    if kind != "docker":
        _fail(f"unknown sandbox kind {kind!r}: prepare docker or bwrap")
    try:
        asyncio.run(docker_engine.prepare_image(say=typer.echo, force=force))
    except CorralError as exc:
        _fail(str(exc))


@sandbox_app.command("ls")
def list_sandboxes() -> None:
    """List corral's Docker sandbox containers (and whether their owner is alive)."""
    from corral.domain import CorralError
    from corral.sandbox import docker_engine

    try:
        found = asyncio.run(docker_engine.list_containers())
    except CorralError as exc:
        _fail(str(exc))
        return
    if not found:
        typer.echo("no sandbox containers")
        return
    typer.echo(f"{'CONTAINER':<14}{'STATUS':<24}{'OWNER':<10}{'ATTEMPT':<28}WORKSPACE")
    for c in found:
        owner = "orphan" if c.orphaned else c.owner.split(":")[0]
        attempt = c.attempt or "(pool)"
        typer.echo(f"{c.id[:12]:<14}{c.status[:22]:<24}{owner:<10}{attempt:<28}{c.root}")


@sandbox_app.command()
def gc(
    everything: Annotated[
        bool, typer.Option("--all", help="Also remove sandboxes of live processes.")
    ] = False,
) -> None:
    """Remove sandbox containers and workspaces whose owning process is gone."""
    from corral.domain import CorralError
    from corral.sandbox import docker_engine
    from corral.sandbox.base import reap_leftovers

    removed: list[str] = []
    if docker_engine.docker_cli() is not None and asyncio.run(docker_engine.engine_ready()):
        try:
            gone = asyncio.run(docker_engine.reap(everything=everything))
        except CorralError as exc:
            _fail(str(exc))
            return
        removed += [f"container {c.id[:12]}" for c in gone]
    removed += reap_leftovers()
    for line in removed:
        typer.echo(f"removed {line}")
    typer.echo(f"{len(removed)} removed")


def register(app: typer.Typer) -> None:
    """Add `corral sandbox ...` to the main app."""
    app.add_typer(sandbox_app, name="sandbox")
