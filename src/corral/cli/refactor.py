"""`corral refactor ...`: cut a codebase-wide migration into dependency-ordered subtasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from corral.cli.common import HomeOpt, JsonOpt, fail

if TYPE_CHECKING:
    from corral.store import Store
    from corral.workflows.refactor import RefactorPlan

refactor_app = typer.Typer(
    help="Large refactors: one migration as PR-sized, dependency-ordered subtasks.",
    no_args_is_help=True,
)


def _table(plan: RefactorPlan) -> str:
    lines = [
        f"{plan.spec.name}: {plan.sites} sites in {plan.files} files "
        f"({plan.searched} searched) -> {len(plan.subtasks)} subtasks",
    ]
    for sub in plan.subtasks:
        after = f"  after {', '.join(sub.depends_on)}" if sub.depends_on else ""
        lines.append(
            f"  {sub.id}  level {sub.level}  {len(sub.files)} files  {sub.sites} sites{after}"
        )
        if sub.note:
            lines.append(f"      oversize: {sub.note}")
        for f in sub.files:
            lines.append(f"      {f.path} ({len(f.sites)})")
    for path, why in sorted(plan.skipped.items()):
        lines.append(f"  skipped {path}: {why}")
    return "\n".join(lines)


@refactor_app.command("plan")
def plan_cmd(
    spec_file: Annotated[Path, typer.Argument(help="The refactor file (YAML).")],
    repo: Annotated[Path, typer.Option("--repo", help="The repository to migrate.")] = Path("."),
    campaign: Annotated[
        Path | None,
        typer.Option("--campaign", help="Also write the plan as a campaign file here."),
    ] = None,
    model: Annotated[
        str | None,
        typer.Option("--model", help="Default: playbook:refactor when `replace` is set."),
    ] = None,
    sandbox: Annotated[str, typer.Option("--sandbox", help="bwrap, docker or local.")] = "bwrap",
    home: HomeOpt = Path(".corral"),
    as_json: JsonOpt = False,
) -> None:
    """Find every site, then show the subtasks (`--campaign`: write them to run)."""
    from corral.domain import CorralError
    from corral.orchestrator.run import check_repo
    from corral.workflows.refactor import load_spec, make_plan
    from corral.workflows.refactor.campaign import write_campaign

    stack = None
    try:
        spec = load_spec(spec_file)
        plan = make_plan(check_repo(repo), spec)
        if campaign is not None:
            stack = write_campaign(plan, campaign, home=home, model=model, sandbox=sandbox)
            if stack is None:
                typer.echo(f"note: {plan.repo} is not a git repo with a commit: parts are not "
                           "stacked (each starts from the repo as it is)", err=True)  # fmt: skip
    except CorralError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{exc.filename or home}: {exc.strerror}")
    if as_json:
        out = plan.to_json() | {
            "campaign": str(campaign) if campaign else None,
            "stack": str(stack.root) if stack else None,
        }
        typer.echo(json.dumps(out, indent=2))
    else:
        typer.echo(_table(plan))
        if campaign is not None:
            typer.echo(f"campaign written to {campaign}: corral campaign run {campaign}")
            if stack is not None:
                typer.echo(f"parts stack in {stack.root}; branches corral/refactor/{spec.name}/*")


@refactor_app.command("demo")
def demo_cmd(
    sandbox: Annotated[str, typer.Option("--sandbox", help="bwrap, docker or local.")] = "bwrap",
    unsafe_local: Annotated[bool, typer.Option("--unsafe-local")] = False,
    concurrency: Annotated[int, typer.Option("--concurrency", min=1)] = 4,
    home: HomeOpt = Path(".corral"),
    as_json: JsonOpt = False,
) -> None:
    """A stacked migration over a small bundled repo: plan, run, branches. No API key."""
    import os
    import shutil

    from corral.cli.demo import fresh_run_dir
    from corral.cli.fleet import exit_for, print_status, run_found, worker_settings
    from corral.orchestrator.campaigns import create_from_file
    from corral.workflows.hostgit import git
    from corral.workflows.refactor import load_spec, make_plan
    from corral.workflows.refactor.campaign import write_campaign

    if sandbox not in ("bwrap", "local", "docker"):
        fail(f"unknown sandbox {sandbox!r}")
    example = Path(__file__).resolve().parent.parent / "examples" / "refactor"
    run = fresh_run_dir(home / "demo" / "refactor").resolve()
    repo = run / "repo"
    shutil.copytree(example / "repo", repo)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "the shop, before"]):
        git(repo, *args)
    spec = load_spec(example / "refactor.yaml")
    plan = make_plan(repo, spec)
    campaign = run / "campaign.yaml"
    write_campaign(plan, campaign, home=home, sandbox=sandbox, unsafe_local=unsafe_local)
    if not as_json:
        typer.echo(f"demo: {repo}\n{_table(plan)}\n", err=True)

    async def create(s: Store) -> str:
        return await create_from_file(s, campaign, env=dict(os.environ), home=home)

    status = run_found(create, worker_settings(home, concurrency), as_json, None, home, None)
    prefix = f"corral/refactor/{spec.name}"
    branches = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{prefix}/")
    if as_json:
        out = status | {"repo": str(repo), "branches": branches.split()}
        typer.echo(json.dumps(out, indent=2))
    else:
        print_status(status, as_json)
        typer.echo("branches:\n" + "\n".join(f"  {b}" for b in branches.split()))
        typer.echo(f"see it all: git -C {repo} log --oneline --graph {prefix}/all")
    exit_for(status)


def register(app: typer.Typer) -> None:
    """Add the `refactor` command group to the main CLI (its hooks: `register_hooks`)."""
    app.add_typer(refactor_app, name="refactor")


def register_hooks() -> None:
    """Plug the refactor workflow's playbook model and delivery into the orchestrator."""
    from corral.orchestrator.hooks import register_workflow

    # Loaded when first needed (the names are checked against the module in the tests).
    register_workflow(
        "corral.workflows.refactor.deliver",
        model_prefixes=["playbook:refactor"],
        kinds=["refactor"],
    )
