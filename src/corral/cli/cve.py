"""`corral cve ...`: scan repositories, plan upgrades, and run remediation campaigns."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from corral.cli.common import HomeOpt, JsonOpt, StoreOpt, fail, run_async

if TYPE_CHECKING:
    from corral.workflows.cve import FixPlan, ScanReport
    from corral.workflows.cve.campaign import CampaignOptions

cve_app = typer.Typer(
    help="Find vulnerable dependencies and plan minimal upgrades.", no_args_is_help=True
)


async def _scan(
    path: Path, dbs: list[str], plan: bool, pypi: bool
) -> tuple[ScanReport, FixPlan | None]:
    from corral.workflows.cve import PyPIIndex, open_source, plan_fixes, scan_repo

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
    from corral.domain import CorralError
    from corral.workflows.cve import scan_json, scan_table

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


def _dbs(db: list[str] | None) -> list[str]:
    dbs = list(db or [])
    if not dbs and os.environ.get("CORRAL_OSV_DB"):
        dbs = [os.environ["CORRAL_OSV_DB"]]
    if not dbs:
        fail("no advisory database: pass --db DIR (or set CORRAL_OSV_DB)")
    return dbs


async def run_campaign_command(
    repos: list[str],
    opts: CampaignOptions,
    home: Path,
    store_url: str | None,
    as_json: bool,
    resume: str | None = None,
) -> dict[str, Any]:
    """Triage on the host, then run the fleet with a progress bar; returns the report.

    With `resume` (or when an unfinished campaign over exactly these repos is found in
    HOME) the saved triage is reused and the campaign carries on where it stopped.
    """
    from corral.orchestrator.settings import WorkerSettings
    from corral.store import Store
    from corral.workflows.cve import open_source
    from corral.workflows.cve.campaign import resolve_repos, triage
    from corral.workflows.cve.outcome import (
        open_cve_campaign,
        resume_cve_campaign,
        run_cve_campaign,
    )
    from corral.workflows.cve.resume import find_unfinished

    settings = WorkerSettings(home=home, concurrency=opts.concurrency, env=dict(os.environ))
    store = await Store.open(store_url, home=home)
    try:
        if resume is None:
            entries = resolve_repos(repos)
            resume = await find_unfinished(home, store, entries)
            if resume is not None:
                typer.echo(
                    f"resuming unfinished campaign {resume} over the same {len(entries)} repos "
                    "(finished repos are not redone)",
                    err=True,
                )
        if resume is not None:
            cid, saved = await open_cve_campaign(store, resume, home)
            return await _with_progress(
                lambda show: resume_cve_campaign(store, cid, saved, settings, progress=show),
                as_json,
            )
        source = open_source(list(opts.db))
        if not as_json:
            typer.echo(f"scanning {len(entries)} repositories ...", err=True)
        triaged = await triage(entries, source, opts)
        return await _with_progress(
            lambda show: run_cve_campaign(store, triaged, opts, settings, progress=show), as_json
        )
    finally:
        await store.close()


async def _with_progress(
    run: Callable[[Callable[[dict[str, Any]], None] | None], Awaitable[dict[str, Any]]],
    as_json: bool,
) -> dict[str, Any]:
    from corral.cli.render import campaign_progress

    if as_json:
        return await run(None)
    with campaign_progress("cve campaign", "repos") as show:
        return await run(show)


@cve_app.command("campaign")
def campaign(
    repos: Annotated[
        list[str] | None,
        typer.Option("--repos", help="A GLOB of repo dirs, or a FILE listing one per line."),
    ] = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            metavar="CAMPAIGN_ID",
            help="Carry on this campaign after a crash (an id or its unique prefix): "
            "finished repos are not redone, the report covers every repo. Re-running the "
            "same command with the same --repos does this on its own.",
        ),
    ] = None,
    db: Annotated[
        list[str] | None, typer.Option("--db", help="Advisory source (default $CORRAL_OSV_DB).")
    ] = None,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 4,
    budget_usd: Annotated[float | None, typer.Option("--budget-usd", min=0)] = None,
    model: Annotated[
        str, typer.Option("--model", help="playbook:cve (default), optionally ?then=MODEL.")
    ] = "playbook:cve",
    then: Annotated[
        str | None, typer.Option("--then", help="LLM that takes over when verification fails.")
    ] = None,
    test_command: Annotated[
        str | None, typer.Option("--test-command", help="Override test detection for all.")
    ] = None,
    require_approval: Annotated[
        bool, typer.Option("--require-approval", help="Review every PR before it opens.")
    ] = False,
    offline: Annotated[
        bool,
        typer.Option(
            "--offline",
            help="Do not ask PyPI for release lists when planning. File digests for "
            "hash-pinned manifests are still asked of PyPI ($CORRAL_PYPI_URL for a mirror).",
        ),
    ] = False,
    sandbox: Annotated[str, typer.Option("--sandbox")] = "bwrap",
    unsafe_local: Annotated[bool, typer.Option("--unsafe-local")] = False,
    as_json: JsonOpt = False,
    home: HomeOpt = Path(".corral"),
    store: StoreOpt = None,
) -> None:
    """Fix vulnerable dependencies across many repos: one PR per repo. Exit 1 unless all
    vulnerable repos were fixed.

    After a crash, run the same command again (or pass --resume CAMPAIGN_ID): the
    unfinished campaign carries on and finished repos are not redone.
    """
    from corral.workflows.cve.campaign import CampaignOptions
    from corral.workflows.cve.outcome import report_markdown

    if sandbox not in ("bwrap", "local", "docker"):
        fail(f"unknown sandbox {sandbox!r}")
    if bool(repos) == bool(resume):
        fail("pass --repos GLOB|FILE for a new campaign, or --resume CAMPAIGN_ID (not both)")
    opts = CampaignOptions(
        db=tuple(_dbs(db)) if not resume else (), model=model, then=then,
        concurrency=concurrency, budget_usd=budget_usd, sandbox=sandbox,  # type: ignore[arg-type]
        unsafe_local=unsafe_local, require_approval=require_approval,
        test_command=test_command, use_index=not offline,
    )  # fmt: skip
    report = run_async(run_campaign_command(repos or [], opts, home, store, as_json, resume))
    if as_json:
        typer.echo(json.dumps(report, indent=2))
    else:
        typer.echo(report_markdown(report))
        typer.echo(f"report: {report['files']['markdown']}")
    bad = {"failed", "error", "needs review", "rejected", "cancelled"}
    raise typer.Exit(1 if any(r["status"] in bad for r in report["repos"]) else 0)


def register(app: typer.Typer) -> None:
    """Add the `cve` command group to the main CLI (its hooks: `register_hooks`)."""
    app.add_typer(cve_app, name="cve")


def register_hooks() -> None:
    """Plug the cve workflow's `playbook:cve` model and PR delivery into the orchestrator
    (idempotent). The main CLI calls this before any command runs."""
    from corral.orchestrator.hooks import register_workflow

    # Loaded when first needed (the names are checked against the module in the tests).
    register_workflow(
        "corral.workflows.cve.deliver", model_prefixes=["playbook:cve"], kinds=["cve"]
    )
