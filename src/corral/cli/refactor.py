"""`corral refactor ...`: cut a codebase-wide migration into dependency-ordered subtasks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from corral.cli.common import HomeOpt, JsonOpt, fail

if TYPE_CHECKING:
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
    from corral.workflows.refactor.campaign import campaign_data, campaign_yaml
    from corral.workflows.refactor.stack import head_commit, lay_out

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
            campaign.write_text(campaign_yaml(data))
    except CorralError as exc:
        fail(str(exc))
    except OSError as exc:
        fail(f"{campaign}: cannot write the campaign file ({exc.strerror})")
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


def register(app: typer.Typer) -> None:
    """Add the `refactor` command group to the main CLI (its hooks: `register_hooks`)."""
    app.add_typer(refactor_app, name="refactor")


def register_hooks() -> None:
    """Plug the refactor workflow's playbook model and delivery into the orchestrator."""
    from corral.workflows.refactor.deliver import register as register_workflow

    register_workflow()
