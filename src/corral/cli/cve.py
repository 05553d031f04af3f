"""`corral cve ...`: scan repositories for vulnerable dependencies and plan the upgrades."""

from __future__ import annotations

import asyncio
import json
import os
from pathlib import Path
from typing import Annotated

import typer

from corral.domain import CorralError
from corral.workflows.cve import (
    FixPlan,
    PyPIIndex,
    ScanReport,
    open_source,
    plan_fixes,
    scan_json,
    scan_repo,
    scan_table,
)

cve_app = typer.Typer(
    help="Find vulnerable dependencies and plan minimal upgrades.", no_args_is_help=True
)


async def _scan(
    path: Path, dbs: list[str], plan: bool, pypi: bool
) -> tuple[ScanReport, FixPlan | None]:
    source = open_source(dbs)
    report = await scan_repo(path, source)
    if not plan:
        return report, None
    if not pypi:
        return report, await plan_fixes(report, source)
    async with PyPIIndex() as index:
        return report, await plan_fixes(report, source, index)


@cve_app.command("scan")
def scan(
    path: Annotated[Path, typer.Argument(help="A repository, or a single manifest file.")],
    db: Annotated[
        list[str] | None,
        typer.Option(
            "--db",
            help="OSV directory, OSV zip export, `api` or `api:URL`; repeat to fail over "
            "in order. Default: $CORRAL_OSV_DB.",
        ),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object.")] = False,
    plan: Annotated[bool, typer.Option("--plan", help="Also plan minimal upgrades.")] = False,
    pypi: Annotated[
        bool, typer.Option("--pypi", help="Ask PyPI for releases when planning (network).")
    ] = False,
) -> None:
    """Scan PATH's manifests against advisories. Exit 1 when something is vulnerable."""
    dbs = list(db or [])
    if not dbs and os.environ.get("CORRAL_OSV_DB"):
        dbs = [os.environ["CORRAL_OSV_DB"]]
    if not dbs:
        typer.echo("error: no advisory database: pass --db DIR (or set CORRAL_OSV_DB)", err=True)
        raise typer.Exit(2)
    if not path.exists():
        typer.echo(f"error: {path} does not exist", err=True)
        raise typer.Exit(2)
    try:
        report, fix_plan = asyncio.run(_scan(path, dbs, plan, pypi))
    except CorralError as e:
        typer.echo(f"error: {str(e).splitlines()[0] if str(e) else type(e).__name__}", err=True)
        raise typer.Exit(2) from None
    if as_json:
        typer.echo(json.dumps(scan_json(report, fix_plan), indent=2))
    else:
        typer.echo(scan_table(report, fix_plan))
    raise typer.Exit(1 if report.findings else 0)


def register(app: typer.Typer) -> None:
    """Add the `cve` command group to the main CLI."""
    app.add_typer(cve_app, name="cve")
