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
    import shutil

    from corral.domain import CorralError
    from corral.orchestrator.run import check_repo
    from corral.workflows.hostgit import head_commit
    from corral.workflows.refactor import load_spec, make_plan
    from corral.workflows.refactor.campaign import campaign_data, campaign_yaml
    from corral.workflows.refactor.stack import lay_out

    stack = None
    try:
        spec = load_spec(spec_file)
        root = check_repo(repo)
        plan = make_plan(root, spec)
        if campaign is not None:
            if not plan.subtasks:
                raise CorralError(f"no campaign written: nothing in {root} matches `{spec.find}`")
            if head_commit(root) is not None:
                parts = {s.id: s.depends_on for s in plan.subtasks}
                stack = lay_out(home, root, spec.name, parts)
            else:
                typer.echo(f"note: {root} is not a git repo with a commit: parts are not "
                           "stacked (each starts from the repo as it is)", err=True)  # fmt: skip
            data = campaign_data(plan, model=model, sandbox=sandbox, stack=stack)
            try:
                campaign.write_text(campaign_yaml(data))
            except OSError as exc:
                if stack is not None:  # nothing would ever use it
                    shutil.rmtree(stack.root, ignore_errors=True)
                raise CorralError(
                    f"{campaign}: cannot write the campaign file ({exc.strerror})"
                ) from None
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
    import subprocess

    from corral.cli.demo import fresh_run_dir
    from corral.cli.fleet import exit_for, print_status, run_found, worker_settings
    from corral.orchestrator.campaigns import create_from_file
    from corral.sandbox.workspace import git_env
    from corral.workflows.refactor import load_spec, make_plan
    from corral.workflows.refactor.campaign import campaign_data, campaign_yaml
    from corral.workflows.refactor.stack import lay_out

    if sandbox not in ("bwrap", "local", "docker"):
        fail(f"unknown sandbox {sandbox!r}")
    example = Path(__file__).resolve().parent.parent / "examples" / "refactor"
    run = fresh_run_dir(home / "demo" / "refactor").resolve()
    repo = run / "repo"
    shutil.copytree(example / "repo", repo)
    env = git_env(run)
    for args in (["init", "-q"], ["add", "-A"], ["commit", "-qm", "the shop, before"]):
        subprocess.run(["git", "-C", str(repo), *args], env=env, check=True, capture_output=True)
    spec = load_spec(example / "refactor.yaml")
    plan = make_plan(repo, spec)
    stack = lay_out(home, repo, spec.name, {s.id: s.depends_on for s in plan.subtasks})
    data = campaign_data(plan, sandbox=sandbox, stack=stack)
    if unsafe_local:
        data["unsafe_local"] = True
    campaign = run / "campaign.yaml"
    campaign.write_text(campaign_yaml(data))
    if not as_json:
        typer.echo(f"demo: {repo}\n{_table(plan)}\n", err=True)

    async def create(s: Store) -> str:
        return await create_from_file(s, campaign, env=dict(os.environ), home=home)

    status = run_found(create, worker_settings(home, concurrency), as_json, None, home, None)
    branches = subprocess.run(
        ["git", "-C", str(repo), "branch", "--list", f"corral/refactor/{spec.name}/*"],
        env=env, capture_output=True, text=True, check=False,
    ).stdout.split()  # fmt: skip
    if as_json:
        typer.echo(json.dumps(status | {"repo": str(repo), "branches": branches}, indent=2))
    else:
        print_status(status, as_json)
        typer.echo("branches:\n" + "\n".join(f"  {b}" for b in branches))
        typer.echo(f"see it all: git -C {repo} log --oneline --graph "
                   f"corral/refactor/{spec.name}/all")  # fmt: skip
    exit_for(status)


def register(app: typer.Typer) -> None:
    """Add the `refactor` command group to the main CLI (its hooks: `register_hooks`)."""
    app.add_typer(refactor_app, name="refactor")


def register_hooks() -> None:
    """Plug the refactor workflow's playbook model and delivery into the orchestrator."""
    from corral.workflows.refactor.deliver import register as register_workflow

    register_workflow()
